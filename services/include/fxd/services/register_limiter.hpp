#pragma once
/// Registration flood guard: registrations per source (an IPv4 address or an
/// IPv6 /64, as the caller keys it) inside a window. Past the limit further
/// registrations from there are refused until the window of the first one
/// passes. The caller records each attempt when it admits it, taken or not,
/// since each costs a password hash. Touched from the event loop only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fxd::services {

class register_limiter {
public:
    using clock = std::chrono::steady_clock;

    struct limits {
        std::uint32_t max_per_address = 20;
        clock::duration window = std::chrono::hours(1);
        std::size_t max_tracked = 100000; ///< bounds memory under a flood of sources
    };

    explicit register_limiter(limits l) : limits_(l) {}

    void set_limits(limits l) { limits_ = l; }

    /// True when source has used up its registrations for now.
    bool blocked(std::string_view source, clock::time_point now) const;
    void record(std::string_view source, clock::time_point now);

    std::size_t tracked() const noexcept { return by_source_.size(); }

private:
    struct window {
        clock::time_point started;
        std::uint32_t count = 0;
    };

    void prune(clock::time_point now);

    limits limits_;
    std::unordered_map<std::string, window> by_source_;
};

} // namespace fxd::services
