#pragma once
/// Running as root: say so, or switch to process.user once the sockets are
/// bound and storage is open.

namespace spdlog {
class logger;
}

namespace fxd::daemon {

struct config;

/// With process.user set: hands storage.dir (and the database files) to that
/// user, then setgroups, setgid and setuid to it, and checks that root cannot
/// be regained. Throws std::runtime_error saying why when it cannot switch.
/// Without it: a warning when the daemon runs as root. Call it after
/// server::start() and before anything is served.
void settle_privileges(const config& cfg, spdlog::logger& log);

} // namespace fxd::daemon
