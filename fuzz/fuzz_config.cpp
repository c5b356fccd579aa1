// fuzz_config: the config loader on arbitrary text (JSON with comments and
// trailing commas). Bad text must be refused with config_error and nothing
// else; a config it accepts must keep every bound and must load again, equal,
// from the JSON written back out of it.
//
// Input: the config text, whole.

#include "fuzz_support.hpp"

#include "config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <arpa/inet.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

namespace json = boost::json;
using fxd::daemon::config;

bool is_address(const std::string& s)
{
    std::array<unsigned char, 16> buf{};
    return inet_pton(AF_INET, s.c_str(), buf.data()) == 1 || inet_pton(AF_INET6, s.c_str(), buf.data()) == 1;
}

/// Boost.JSON's default number parsing may land one unit in the last place
/// away from the nearest double, so numbers compare within a relative 1e-15;
/// everything else compares exactly. Walks the whole written-out config, so a
/// key added to the daemon is covered without touching this file.
bool same_within_last_digit(const json::value& a, const json::value& b)
{
    if (a.is_double() || b.is_double()) {
        if (!a.is_number() || !b.is_number())
            return false;
        const double x = a.to_number<double>();
        const double y = b.to_number<double>();
        return x == y || std::fabs(x - y) <= 1e-15 * std::fabs(y);
    }
    if (a.is_object() && b.is_object()) {
        const auto& ao = a.get_object();
        const auto& bo = b.get_object();
        if (ao.size() != bo.size())
            return false;
        for (const auto& [key, value] : ao) {
            const auto* other = bo.if_contains(key);
            if (!other || !same_within_last_digit(value, *other))
                return false;
        }
        return true;
    }
    return a == b;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    config cfg;
    try {
        cfg = fxd::daemon::load_config_text(text, "fuzz input");
    } catch (const fxd::daemon::config_error& e) {
        FXD_FUZZ_CHECK(std::string_view(e.what()).size() != 0);
        return 0;
    }

    // The bounds the daemon relies on once a config is accepted.
    FXD_FUZZ_CHECK(is_address(cfg.tcp.bind) && is_address(cfg.udp.bind));
    FXD_FUZZ_CHECK(!cfg.storage.dir.empty());
    FXD_FUZZ_CHECK(cfg.log.level == "trace" || cfg.log.level == "debug" || cfg.log.level == "info" ||
                   cfg.log.level == "warn" || cfg.log.level == "error");
    FXD_FUZZ_CHECK(cfg.log.format == "text" || cfg.log.format == "json");
    FXD_FUZZ_CHECK(cfg.limits.max_header_bytes >= 64);
    FXD_FUZZ_CHECK(cfg.limits.max_pending_reply_bytes >= cfg.limits.max_echo_bytes + 1024);
    FXD_FUZZ_CHECK(cfg.limits.max_connections >= 1 && cfg.limits.max_connections_per_address >= 1);
    FXD_FUZZ_CHECK(cfg.timeouts.idle_s > 0 && cfg.timeouts.header_s > 0 && cfg.timeouts.body_s > 0);
    FXD_FUZZ_CHECK(cfg.timeouts.drain_s >= 0 && cfg.auth.lockout_s > 0 && cfg.storage.partial_ttl_s >= 1);
    FXD_FUZZ_CHECK(cfg.udp.rate_per_source >= 0 && cfg.udp.burst >= 1);
    FXD_FUZZ_CHECK(cfg.auth.hash_passes >= 1 && cfg.auth.hash_memory_bytes >= 8192);
    FXD_FUZZ_CHECK(cfg.workers.threads >= 1 && cfg.workers.threads <= 64 && cfg.workers.queue_limit >= 1);

    // Written back out and read again, it is the same config.
    const std::string again = fxd::daemon::config_to_json(cfg);
    try {
        const auto back = fxd::daemon::load_config_text(again, "fuzz round trip");
        if (!(back == cfg)) {
            const bool near = same_within_last_digit(json::parse(fxd::daemon::config_to_json(back)), json::parse(again));
            if (!near)
                std::fprintf(stderr, "round trip changed the config:\n%s\n%s\n", again.c_str(),
                             fxd::daemon::config_to_json(back).c_str());
            FXD_FUZZ_CHECK(near);
        }
    } catch (const fxd::daemon::config_error& e) {
        std::fprintf(stderr, "round trip refused: %s\n%s\n", e.what(), again.c_str());
        FXD_FUZZ_CHECK(false);
    }
    return 0;
}
