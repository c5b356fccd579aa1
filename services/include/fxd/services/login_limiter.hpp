#pragma once
/// Brute-force backoff: failed logins counted per (user, source address) and
/// per source address inside a window. Past either limit, further logins of
/// that user from that address (or from that address) are refused until the
/// window passes. A user is never locked out everywhere by a stranger.
/// Touched from the event loop only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fxd::services {

class login_limiter {
public:
    using clock = std::chrono::steady_clock;

    struct limits {
        std::uint32_t max_failures = 5;              ///< per (user, address)
        std::uint32_t max_failures_per_address = 50; ///< per address, any user
        clock::duration window = std::chrono::seconds(60);
        std::size_t max_tracked = 100000;            ///< bounds memory under a flood of names
    };

    explicit login_limiter(limits l) : limits_(l) {}

    void set_limits(limits l) { limits_ = l; }

    /// True when a login of user from address must be refused now.
    bool blocked(std::string_view user, std::string_view address, clock::time_point now);
    void record_failure(std::string_view user, std::string_view address, clock::time_point now);
    /// A successful login clears that pair's count.
    void record_success(std::string_view user, std::string_view address);

    std::size_t tracked() const noexcept { return by_pair_.size() + by_address_.size(); }

private:
    struct window {
        clock::time_point started;
        std::uint32_t failures = 0;
    };
    using table = std::unordered_map<std::string, window>;

    static std::string pair_key(std::string_view user, std::string_view address);
    bool over(table& t, const std::string& key, std::uint32_t limit, clock::time_point now);
    void count(table& t, const std::string& key, clock::time_point now);
    void prune(clock::time_point now);

    limits limits_;
    table by_pair_;
    table by_address_;
};

} // namespace fxd::services
