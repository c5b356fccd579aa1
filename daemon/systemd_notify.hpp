#pragma once
/// The daemon's side of systemd's protocols: readiness and status (sd_notify),
/// the watchdog keep-alive, and the sockets handed over by socket activation.
/// Where there is no systemd (no NOTIFY_SOCKET, no LISTEN_FDS, no
/// WATCHDOG_USEC) every call here does nothing and the daemon runs as before.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace fxd::daemon::systemd {

/// Sends one notification, e.g. "READY=1\nSTATUS=...". False when no service
/// manager listens or the message could not be sent; never throws.
bool notify(std::string_view state);

/// READY=1 with a STATUS= line: start-up or a reload is complete.
void notify_ready(std::string_view status);

/// RELOADING=1 with MONOTONIC_USEC= (newer systemd wants the timestamp).
void notify_reloading();

/// STOPPING=1 with a STATUS= line: the drain has begun.
void notify_stopping(std::string_view status);

/// How often to send WATCHDOG=1: half of WATCHDOG_USEC, or nothing when the
/// service manager expects no keep-alives from this process.
std::optional<std::chrono::microseconds> watchdog_interval();

/// Sends WATCHDOG=1 now and then every `interval` until `timer` is cancelled.
/// Spawn it on the io_context that serves clients: when that loop wedges, the
/// keep-alives stop and systemd restarts the daemon.
boost::asio::awaitable<void> keep_alive(boost::asio::steady_timer& timer, std::chrono::microseconds interval);

/// A socket systemd passed, or fd -1.
struct passed_socket {
    int fd = -1;
    bool ipv6 = false;
};

struct passed_sockets {
    passed_socket tcp; ///< a listening TCP socket (ListenStream=)
    passed_socket udp; ///< a UDP socket (ListenDatagram=)
};

/// Takes over the sockets passed by socket activation (sd_listen_fds) and
/// tells them apart by type. Throws std::runtime_error for a socket that is
/// neither a listening TCP socket nor a UDP socket, or a second one of a kind.
passed_sockets take_listen_fds();

} // namespace fxd::daemon::systemd
