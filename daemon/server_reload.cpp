// server::reload: what SIGHUP changes in a running server.

#include "logging.hpp"
#include "server.hpp"

#include <spdlog/logger.h>

#include <string_view>
#include <vector>

namespace fxd::daemon {

namespace {

/// A setting fixed at start keeps its running value; its name is noted.
template <class T>
void keep_running(std::string_view name, const T& running, T& next, std::vector<std::string_view>& kept)
{
    if (next == running)
        return;
    next = running;
    kept.push_back(name);
}

} // namespace

void server::reload(const config& next)
{
    config applied = next;
    std::vector<std::string_view> kept;
    // Sockets, storage, the worker pool and the accounts database are set up
    // once in start(); changing them means a restart.
    keep_running("tcp", cfg_.tcp, applied.tcp, kept);
    keep_running("udp.bind", cfg_.udp.bind, applied.udp.bind, kept);
    keep_running("udp.port", cfg_.udp.port, applied.udp.port, kept);
    keep_running("storage.dir", cfg_.storage.dir, applied.storage.dir, kept);
    keep_running("workers", cfg_.workers, applied.workers, kept);
    keep_running("auth.db_path", cfg_.auth.db_path, applied.auth.db_path, kept);
    keep_running("database", cfg_.database, applied.database, kept);
    keep_running("auth.hash_passes", cfg_.auth.hash_passes, applied.auth.hash_passes, kept);
    keep_running("auth.hash_memory_bytes", cfg_.auth.hash_memory_bytes, applied.auth.hash_memory_bytes, kept);
    keep_running("tls.bind", cfg_.tls.bind, applied.tls.bind, kept);
    keep_running("tls.port", cfg_.tls.port, applied.tls.port, kept);
    keep_running("process.user", cfg_.process.user, applied.process.user, kept); // privileges are gone by then
    keep_running("admin", cfg_.admin, applied.admin, kept);
    if (cfg_.tls.enabled() != applied.tls.enabled()) {
        // The listener opens (or closes) only at start.
        applied.tls = cfg_.tls;
        kept.push_back("tls.cert and tls.key (TLS on or off)");
    }
    for (const auto name : kept)
        log_.warn("reload: '{}' changed, which needs a restart; keeping the running value", name);

    // The files may have changed while the keys did not (a renewed certificate).
    reload_tls(applied);
    if (applied == cfg_) {
        log_.info("reload: no setting that can change live has changed");
        return;
    }
    configure_logger(log_, applied.log.level, applied.log.format);
    cfg_ = applied;
    trusted_ = trusted_proxies(cfg_.proxy.trusted); // for new connections; open ones keep what they began with
    dispatcher_.apply_config();
    udp_limiter_.configure(cfg_.udp.rate_per_source, cfg_.udp.burst);
    log_.info("reload: applied (log.level={} log.format={})", cfg_.log.level, cfg_.log.format);
}

} // namespace fxd::daemon
