#include <fxd/services/register_limiter.hpp>

namespace fxd::services {

bool register_limiter::blocked(std::string_view source, clock::time_point now) const
{
    const auto it = by_source_.find(std::string(source));
    return it != by_source_.end() && now - it->second.started < limits_.window &&
           it->second.count >= limits_.max_per_address;
}

void register_limiter::prune(clock::time_point now)
{
    std::erase_if(by_source_, [&](const auto& entry) { return now - entry.second.started >= limits_.window; });
    // Still full of live sources: start over rather than grow without bound.
    // Reaching this takes max_tracked distinct IPv4 addresses or IPv6 /64s.
    if (by_source_.size() >= limits_.max_tracked)
        by_source_.clear();
}

void register_limiter::record(std::string_view source, clock::time_point now)
{
    if (by_source_.size() >= limits_.max_tracked)
        prune(now);
    auto [it, fresh] = by_source_.try_emplace(std::string(source), window{now, 0});
    if (!fresh && now - it->second.started >= limits_.window)
        it->second = window{now, 0};
    ++it->second.count;
}

} // namespace fxd::services
