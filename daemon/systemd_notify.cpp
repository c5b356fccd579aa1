#include "systemd_notify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <systemd/sd-daemon.h>

#include <sys/socket.h>

#include <ctime>
#include <stdexcept>
#include <string>

namespace fxd::daemon::systemd {

bool notify(std::string_view state)
{
    const std::string message(state);
    return ::sd_notify(0, message.c_str()) > 0;
}

void notify_ready(std::string_view status)
{
    notify("READY=1\nSTATUS=" + std::string(status));
}

void notify_reloading()
{
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
    notify("RELOADING=1\nSTATUS=reloading the config\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notify_stopping(std::string_view status)
{
    notify("STOPPING=1\nSTATUS=" + std::string(status));
}

std::optional<std::chrono::microseconds> watchdog_interval()
{
    std::uint64_t usec = 0;
    if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return std::nullopt;
    return std::chrono::microseconds(usec / 2);
}

boost::asio::awaitable<void> keep_alive(boost::asio::steady_timer& timer, std::chrono::microseconds interval)
{
    for (;;) {
        notify("WATCHDOG=1");
        timer.expires_after(interval);
        auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec)
            co_return; // cancelled: the server has stopped
    }
}

passed_sockets take_listen_fds()
{
    passed_sockets passed;
    // Unset LISTEN_FDS/LISTEN_PID so nothing the daemon might start inherits them.
    const int n = ::sd_listen_fds(1);
    if (n < 0)
        throw std::runtime_error("cannot read the sockets passed by systemd (LISTEN_FDS)");
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
        const bool ipv6 = ::sd_is_socket_inet(fd, AF_INET6, 0, -1, 0) > 0;
        if (::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0) {
            if (passed.tcp.fd >= 0)
                throw std::runtime_error("systemd passed more than one TCP socket; fxd serves one");
            passed.tcp = {fd, ipv6};
        } else if (::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0) {
            if (passed.udp.fd >= 0)
                throw std::runtime_error("systemd passed more than one UDP socket; fxd serves one");
            passed.udp = {fd, ipv6};
        } else {
            throw std::runtime_error("systemd passed socket " + std::to_string(fd) +
                                     ", which is neither a listening TCP socket nor a UDP socket");
        }
    }
    return passed;
}

} // namespace fxd::daemon::systemd
