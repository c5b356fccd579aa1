#include <fxd/services/login_limiter.hpp>

namespace fxd::services {

std::string login_limiter::pair_key(std::string_view user, std::string_view address)
{
    std::string key;
    key.reserve(user.size() + address.size() + 1);
    key.append(user).append(1, '\n').append(address); // '\n' appears in neither
    return key;
}

login_limiter::window* login_limiter::current(table& t, const std::string& key, clock::time_point now)
{
    const auto it = t.find(key);
    if (it == t.end())
        return nullptr;
    if (now - it->second.started >= limits_.window) {
        if (it->second.in_flight == 0) {
            t.erase(it);
            return nullptr;
        }
        // Its failures are forgotten; the attempts in flight still count.
        it->second = window{now, 0, it->second.in_flight};
    }
    return &it->second;
}

bool login_limiter::over(table& t, const std::string& key, std::uint32_t limit, clock::time_point now)
{
    const auto* w = current(t, key, now);
    return w && w->failures >= limit;
}

bool login_limiter::over_with_in_flight(table& t, const std::string& key, std::uint32_t limit, clock::time_point now)
{
    const auto* w = current(t, key, now);
    return w && w->failures + w->in_flight >= limit;
}

void login_limiter::count(table& t, const std::string& key, clock::time_point now)
{
    auto [it, fresh] = t.try_emplace(key, window{now, 0, 0});
    if (!fresh && now - it->second.started >= limits_.window)
        it->second = window{now, 0, it->second.in_flight};
    ++it->second.failures;
}

void login_limiter::prune(clock::time_point now)
{
    for (auto* t : {&by_pair_, &by_address_}) {
        std::erase_if(*t, [&](const auto& entry) {
            return entry.second.in_flight == 0 && now - entry.second.started >= limits_.window;
        });
    }
    if (tracked() >= limits_.max_tracked) {
        // Still full of live entries: forget the per-pair detail first, and the
        // per-address counts too when a flood of addresses alone fills the table.
        // An attempt in flight whose entry goes is simply not taken back.
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
    const auto it = by_pair_.find(pair_key(user, address));
    if (it == by_pair_.end())
        return;
    if (it->second.in_flight == 0)
        by_pair_.erase(it);
    else
        it->second.failures = 0;
}

login_limiter::verdict login_limiter::begin_attempt(std::string_view user, std::string_view address,
                                                    clock::time_point now)
{
    if (blocked(user, address, now))
        return verdict::refuse;
    const std::string addr(address);
    const std::string pair = pair_key(user, address);
    if (over_with_in_flight(by_address_, addr, limits_.max_failures_per_address, now) ||
        over_with_in_flight(by_pair_, pair, limits_.max_failures, now))
        return verdict::wait;
    if (tracked() >= limits_.max_tracked)
        prune(now);
    ++by_address_.try_emplace(addr, window{now, 0, 0}).first->second.in_flight;
    ++by_pair_.try_emplace(pair, window{now, 0, 0}).first->second.in_flight;
    return verdict::check;
}

void login_limiter::end_attempt(std::string_view user, std::string_view address, result how, clock::time_point now)
{
    // The entry may be gone (dropped by a prune when full): nothing to take back then.
    const auto land = [](table& t, const std::string& key) {
        if (const auto it = t.find(key); it != t.end() && it->second.in_flight > 0)
            --it->second.in_flight;
    };
    land(by_address_, std::string(address));
    land(by_pair_, pair_key(user, address));
    if (how == result::failed)
        record_failure(user, address, now);
    else if (how == result::succeeded)
        record_success(user, address);
}

} // namespace fxd::services
