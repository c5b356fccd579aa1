// idle: N connections, one ping on each (with --raw-idle nothing, or the
// --raw-ping bytes, for servers that do not speak the protocol), then held
// still. The server's RSS
// and CPU time come from /proc.

#include "common.hpp"
#include "frames.hpp"

#include <fxd/client/client.hpp>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace fxd::bench {

namespace {

/// Sends one ping on every connection and waits for every reply. With
/// raw_ping, sends those bytes instead and waits for any bytes back.
void ping_all(const std::vector<util::unique_fd>& fds, double timeout_s, const std::string& raw_ping)
{
    const std::string ping = raw_ping.empty() ? client::make_frame({{"op", "ping"}}) : raw_ping;
    const util::unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    std::vector<std::string> in(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (::send(fds[i].get(), ping.data(), ping.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(ping.size()))
            throw bench_error(std::string("send: ") + std::strerror(errno));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fds[i].get(), &ev);
    }
    std::size_t left = fds.size();
    const auto deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
    std::vector<epoll_event> events(1024);
    char buf[4096];
    while (left > 0) {
        if (now_ns() > deadline)
            throw bench_error(std::to_string(left) + " pings were not answered in time");
        const int got = ::epoll_wait(epfd.get(), events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < got; ++k) {
            const auto i = events[static_cast<std::size_t>(k)].data.u64;
            const ssize_t n = ::recv(fds[i].get(), buf, sizeof buf, 0);
            if (n == 0)
                throw bench_error("the server closed a connection before answering its ping");
            if (n < 0)
                continue;
            in[i].append(buf, static_cast<std::size_t>(n));
            if (!raw_ping.empty() || complete_reply(in[i]) != 0) {
                ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, fds[i].get(), nullptr);
                --left;
            }
        }
    }
}

} // namespace

int run_idle(const options& o, report& r)
{
    const pid_t pid = server_pid(o);
    const auto rss0 = process_rss_bytes(pid);
    const auto ep = resolve(o.host, o.port, SOCK_STREAM);
    const auto t0 = now_ns();
    auto fds = connect_many(ep, o.connections, 60);
    if (!o.raw_idle || !o.raw_ping.empty())
        ping_all(fds, 30, o.raw_idle ? o.raw_ping : std::string());
    const double setup = seconds_between(t0, now_ns());
    const auto rss1 = process_rss_bytes(pid);
    const double cpu0 = process_cpu_seconds(pid);
    const auto h0 = now_ns();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.hold));
    const double cpu1 = process_cpu_seconds(pid);
    const double held = seconds_between(h0, now_ns());
    const auto rss2 = process_rss_bytes(pid);
    std::uint64_t closed = 0;
    for (const auto& fd : fds) {
        char c;
        if (::recv(fd.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            ++closed;
    }
    const std::size_t connections = fds.size();
    fds.clear();
    const double n = static_cast<double>(connections);
    r.count("connections", connections, "connections");
    r.set("raw_idle", o.raw_idle);
    r.set("raw_ping", !o.raw_ping.empty());
    r.set("pid", pid);
    r.figure("setup_s", setup, o.raw_idle && o.raw_ping.empty() ? "connect time" : "connect + ping time", "s", 2);
    r.figure("rss_before_kib", static_cast<double>(rss0) / 1024, "RSS before", "KiB", 0);
    r.figure("rss_loaded_kib", static_cast<double>(rss1) / 1024, "RSS after connecting", "KiB", 0);
    r.figure("rss_held_kib", static_cast<double>(rss2) / 1024, "RSS after the hold", "KiB", 0);
    r.figure("rss_per_conn_bytes", (static_cast<double>(rss2) - static_cast<double>(rss0)) / n,
             "RSS per connection (after the hold)", "bytes", 0);
    r.figure("rss_per_conn_peak_bytes", (static_cast<double>(rss1) - static_cast<double>(rss0)) / n,
             "RSS per connection (just after connecting)", "bytes", 0);
    r.figure("hold_s", held, "held", "s", 2);
    r.figure("cpu_s", cpu1 - cpu0, "server CPU while held", "s", 3);
    r.figure("cpu_percent", held > 0 ? 100.0 * (cpu1 - cpu0) / held : 0.0, "server CPU while held", "% of a core", 2);
    r.count("closed", closed, "closed by the server during the hold");
    return 0;
}

} // namespace fxd::bench
