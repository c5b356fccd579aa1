// fuzz_config: the config loader on arbitrary text (JSON with comments and
// trailing commas). Bad text must be refused with config_error and nothing
// else; a config it accepts must keep every bound and must load again, equal,
// from the JSON written back out of it.
//
// Input: the config text, whole.

#include "fuzz_support.hpp"

#include "config.hpp"

#include <boost/json/serialize.hpp>
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

/// Every key of cfg as config-file JSON.
std::string to_json(const config& c)
{
    json::object root;
    root["tcp"] = {{"bind", c.tcp.bind}, {"port", c.tcp.port}};
    root["udp"] = {{"bind", c.udp.bind}, {"port", c.udp.port}, {"rate_per_source", c.udp.rate_per_source},
                   {"burst", c.udp.burst}};
    root["storage"] = {{"dir", c.storage.dir.string()}, {"partial_ttl_s", c.storage.partial_ttl_s},
                       {"quota_bytes", c.storage.quota_bytes}};
    root["log"] = {{"level", c.log.level}, {"format", c.log.format}};
    root["limits"] = {{"max_header_bytes", c.limits.max_header_bytes},
                      {"max_echo_bytes", c.limits.max_echo_bytes},
                      {"max_upload_bytes", c.limits.max_upload_bytes},
                      {"max_discard_bytes", c.limits.max_discard_bytes},
                      {"max_connections", c.limits.max_connections},
                      {"max_connections_per_address", c.limits.max_connections_per_address},
                      {"max_pending_reply_bytes", c.limits.max_pending_reply_bytes}};
    root["timeouts"] = {{"idle_s", c.timeouts.idle_s}, {"header_s", c.timeouts.header_s}, {"body_s", c.timeouts.body_s},
                        {"drain_s", c.timeouts.drain_s}};
    root["auth"] = {{"db_path", c.auth.db_path.string()},
                    {"allow_register", c.auth.allow_register},
                    {"max_failures", c.auth.max_failures},
                    {"max_failures_per_address", c.auth.max_failures_per_address},
                    {"lockout_s", c.auth.lockout_s},
                    {"hash_passes", c.auth.hash_passes},
                    {"hash_memory_bytes", c.auth.hash_memory_bytes}};
    root["workers"] = {{"threads", c.workers.threads}, {"queue_limit", c.workers.queue_limit}};
    return json::serialize(root);
}

/// Boost.JSON's default number parsing may land one unit in the last place
/// away from the nearest double, so doubles compare within a relative 1e-15.
void forgive_last_digit(config& back, const config& want)
{
    auto near = [](double& b, double w) {
        if (b != w && std::fabs(b - w) <= 1e-15 * std::fabs(w))
            b = w;
    };
    near(back.udp.rate_per_source, want.udp.rate_per_source);
    near(back.storage.partial_ttl_s, want.storage.partial_ttl_s);
    near(back.timeouts.idle_s, want.timeouts.idle_s);
    near(back.timeouts.header_s, want.timeouts.header_s);
    near(back.timeouts.body_s, want.timeouts.body_s);
    near(back.timeouts.drain_s, want.timeouts.drain_s);
    near(back.auth.lockout_s, want.auth.lockout_s);
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
    const std::string again = to_json(cfg);
    try {
        auto back = fxd::daemon::load_config_text(again, "fuzz round trip");
        forgive_last_digit(back, cfg);
        FXD_FUZZ_CHECK(back == cfg);
    } catch (const fxd::daemon::config_error& e) {
        std::fprintf(stderr, "round trip refused: %s\n%s\n", e.what(), again.c_str());
        FXD_FUZZ_CHECK(false);
    }
    return 0;
}
