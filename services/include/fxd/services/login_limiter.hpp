#pragma once
/// Brute-force backoff: failed logins counted per (user, source address) and
/// per source address inside a window. Past either limit, further logins of
/// that user from that address (or from that address) are refused until the
/// window passes. A user is never locked out everywhere by a stranger.
///
/// Attempts whose password is still being checked count too: a new attempt
/// is let through only while the failures so far plus the attempts in flight
/// stay below each limit, so guesses sent all at once get no more password
/// checks than guesses sent one after another. Touched from the event loop only.

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

    /// What begin_attempt() decides.
    enum class verdict {
        check,  ///< check the password, then call end_attempt()
        wait,   ///< attempts in flight could reach a limit: retry once one of them ends
        refuse, ///< a limit is reached: rate_limited
    };
    /// How an attempt that got `check` ended.
    enum class result { failed, succeeded, abandoned };

    explicit login_limiter(limits l) : limits_(l) {}

    void set_limits(limits l) { limits_ = l; }

    /// True when a login of user from address must be refused now.
    bool blocked(std::string_view user, std::string_view address, clock::time_point now);
    void record_failure(std::string_view user, std::string_view address, clock::time_point now);
    /// A successful login clears that pair's count.
    void record_success(std::string_view user, std::string_view address);

    /// Admits a login attempt before its password is checked; a `check` is in
    /// flight until its end_attempt().
    verdict begin_attempt(std::string_view user, std::string_view address, clock::time_point now);
    void end_attempt(std::string_view user, std::string_view address, result how, clock::time_point now);

    std::size_t tracked() const noexcept { return by_pair_.size() + by_address_.size(); }

private:
    struct window {
        clock::time_point started;
        std::uint32_t failures = 0;
        std::uint32_t in_flight = 0; ///< attempts admitted and not yet ended
    };
    using table = std::unordered_map<std::string, window>;

    static std::string pair_key(std::string_view user, std::string_view address);
    /// The key's entry with its window brought up to date, or null.
    window* current(table& t, const std::string& key, clock::time_point now);
    bool over(table& t, const std::string& key, std::uint32_t limit, clock::time_point now);
    bool over_with_in_flight(table& t, const std::string& key, std::uint32_t limit, clock::time_point now);
    void count(table& t, const std::string& key, clock::time_point now);
    void prune(clock::time_point now);

    limits limits_;
    table by_pair_;
    table by_address_;
};

} // namespace fxd::services
