#include <fxd/services/login_limiter.hpp>

namespace fxd::services {

std::string login_limiter::pair_key(std::string_view user, std::string_view address)
{
    std::string key;
    key.reserve(user.size() + address.size() + 1);
    key.append(user).append(1, '\n').append(address); // '\n' appears in neither
    return key;
}

bool login_limiter::over(table& t, const std::string& key, std::uint32_t limit, clock::time_point now)
{
    const auto it = t.find(key);
    if (it == t.end())
        return false;
    if (now - it->second.started >= limits_.window) {
        t.erase(it);
        return false;
    }
    return it->second.failures >= limit;
}

void login_limiter::count(table& t, const std::string& key, clock::time_point now)
{
    auto [it, fresh] = t.try_emplace(key, window{now, 0});
    if (!fresh && now - it->second.started >= limits_.window)
        it->second = window{now, 0};
    ++it->second.failures;
}

void login_limiter::prune(clock::time_point now)
{
    for (auto* t : {&by_pair_, &by_address_}) {
        std::erase_if(*t, [&](const auto& entry) { return now - entry.second.started >= limits_.window; });
    }
    if (tracked() >= limits_.max_tracked) {
        // Still full of live entries: forget the per-pair detail first, and the
        // per-address counts too when a flood of addresses alone fills the table.
        by_pair_.clear();
        if (by_address_.size() >= limits_.max_tracked)
            by_address_.clear();
    }
}

bool login_limiter::blocked(std::string_view user, std::string_view address, clock::time_point now)
{
    const std::string addr(address);
    return over(by_address_, addr, limits_.max_failures_per_address, now) ||
           over(by_pair_, pair_key(user, address), limits_.max_failures, now);
}

void login_limiter::record_failure(std::string_view user, std::string_view address, clock::time_point now)
{
    if (tracked() >= limits_.max_tracked)
        prune(now);
    count(by_address_, std::string(address), now);
    count(by_pair_, pair_key(user, address), now);
}

void login_limiter::record_success(std::string_view user, std::string_view address)
{
    by_pair_.erase(pair_key(user, address));
}

} // namespace fxd::services
