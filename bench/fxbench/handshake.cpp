// handshake and connect: new connections per second. C slots, each in a
// loop of connect, TLS handshake (with --tls; a full one, as no session is
// reused), one request and its reply, close. handshake sends a ping: without
// --tls it measures what TCP set-up alone costs, for comparison. connect
// sends one -s byte echo and checks its reply whole: the "connect, one echo,
// close" pattern of clients that open a connection per exchange, which also
// runs against tcp_reference. When the server's pid is known (--pid, or the
// listener on --port), its CPU time per connection is reported too: on a
// machine where client and server share the cores, that is the server's own
// cost, which the rate (a figure of the pair) hides.

#include "common.hpp"
#include "frames.hpp"
#include "stream.hpp"

#include <fxd/client/client.hpp>

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace fxd::bench {

namespace {

enum class phase { connecting, handshaking, sending, reading };

struct slot {
    stream s;
    phase at = phase::connecting;
    std::size_t sent = 0;
    std::string in;
    std::int64_t started = 0;
};

/// What each connection sends: a ping (handshake) or one echo (connect).
struct exchange {
    std::string request;
    std::string expected_body; ///< connect: the upper-cased echo body
    bool echo = false;
};

exchange ping_exchange()
{
    return {client::make_frame({{"op", "ping"}}), {}, false};
}

exchange echo_exchange(std::uint64_t size)
{
    std::string body(size, '\0');
    for (std::size_t i = 0; i < body.size(); ++i)
        body[i] = static_cast<char>('a' + i % 26);
    std::string expected = body;
    for (auto& ch : expected)
        ch = static_cast<char>(ch - 'a' + 'A');
    return {client::make_frame({{"op", "echo"}}, body), std::move(expected), true};
}

class handshake_run {
public:
    handshake_run(const options& o, exchange x) : o_(o), x_(std::move(x)) {}

    int run(report& r)
    {
        ep_ = resolve(o_.host, o_.port, SOCK_STREAM);
        if (o_.tls)
            tls_.emplace(o_.cacert, o_.host);
        epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
        slots_.resize(static_cast<std::size_t>(o_.connections));
        const auto start = now_ns();
        const auto measure_start = start + static_cast<std::int64_t>(o_.warmup * 1e9);
        const auto end = measure_start + static_cast<std::int64_t>(o_.seconds * 1e9);
        const pid_t pid = o_.pid > 0 ? o_.pid : find_listener_pid(o_.port);
        double cpu0 = 0;
        for (std::size_t i = 0; i < slots_.size(); ++i)
            begin(i);
        std::vector<epoll_event> events(1024);
        std::int64_t now = start;
        while (now < end) {
            if (!measuring_ && now >= measure_start) {
                measuring_ = true;
                hist_.reset();
                done_ = 0;
                if (pid > 0)
                    cpu0 = process_cpu_seconds(pid);
            }
            const auto next = measuring_ ? end : measure_start;
            const int wait_ms = static_cast<int>(std::clamp<std::int64_t>((next - now) / 1'000'000, 0, 100));
            const int got = ::epoll_wait(epfd_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
            if (got < 0 && errno != EINTR)
                throw bench_error(std::string("epoll_wait: ") + std::strerror(errno));
            for (int k = 0; k < got; ++k)
                advance(events[static_cast<std::size_t>(k)].data.u64);
            now = now_ns();
        }
        const double elapsed = seconds_between(measure_start, now);
        const double cpu = pid > 0 ? process_cpu_seconds(pid) - cpu0 : 0.0;
        slots_.clear();
        r.set("tls", o_.tls);
        r.count("connections", static_cast<std::uint64_t>(o_.connections), "connections at a time");
        r.figure("seconds", elapsed, "measured", "s", 2);
        if (x_.echo) {
            r.count("size", o_.size, "echo body bytes");
            r.count("requests", done_, o_.tls ? "TLS connections (connect, handshake, one echo, close)"
                                              : "TCP connections (connect, one echo, close)");
        } else {
            r.count("handshakes", done_, o_.tls ? "TLS connections (connect, handshake, ping, close)"
                                               : "TCP connections (connect, ping, close)");
        }
        r.figure("connections_per_s", elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0,
                 "new connections/s", "", 0);
        r.latency(hist_);
        if (pid > 0 && done_ > 0) {
            r.set("pid", pid);
            r.figure("server_cpu_us_per_conn", cpu / static_cast<double>(done_) * 1e6, "server CPU per connection",
                     "us", 1);
        }
        return 0;
    }

private:
    /// Starts slot i on a new connection.
    void begin(std::size_t i)
    {
        auto& sl = slots_[i];
        util::unique_fd fd(::socket(ep_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!fd)
            throw connect_error(std::string("socket: ") + std::strerror(errno));
        if (::connect(fd.get(), ep_.address(), ep_.length) != 0 && errno != EINPROGRESS)
            throw connect_error(std::string("connect: ") + std::strerror(errno));
        sl.s = stream(std::move(fd), tls_ ? &*tls_ : nullptr);
        sl.at = phase::connecting;
        sl.sent = 0;
        sl.in.clear();
        sl.started = now_ns();
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = i;
        ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, sl.s.fd(), &ev);
    }

    void wait_for(std::size_t i, io what)
    {
        epoll_event ev{};
        ev.events = what == io::want_write ? EPOLLOUT : EPOLLIN;
        ev.data.u64 = i;
        ::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, slots_[i].s.fd(), &ev);
    }

    /// Moves slot i on as far as its socket allows.
    void advance(std::size_t i)
    {
        auto& sl = slots_[i];
        if (sl.at == phase::connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(sl.s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0)
                throw connect_error(std::string("connect: ") + std::strerror(err) + " after " +
                                    std::to_string(total_) + " connections");
            set_nodelay(sl.s.fd());
            sl.at = phase::handshaking;
        }
        if (sl.at == phase::handshaking) {
            const auto r = sl.s.handshake();
            if (r != io::ok)
                return wait_for(i, r);
            sl.at = phase::sending;
        }
        if (sl.at == phase::sending) {
            const auto& request = x_.request;
            while (sl.sent < request.size()) {
                std::size_t put = 0;
                const auto r = sl.s.write(request.data() + sl.sent, request.size() - sl.sent, put);
                if (r != io::ok)
                    return wait_for(i, r);
                sl.sent += put;
            }
            sl.at = phase::reading;
            wait_for(i, io::want_read);
        }
        char buf[4096];
        while (true) {
            std::size_t got = 0;
            const auto r = sl.s.read(buf, sizeof buf, got);
            if (r == io::closed)
                throw bench_error("the server closed a connection before answering its request");
            if (r != io::ok)
                return wait_for(i, r);
            sl.in.append(buf, got);
            const auto length = complete_reply(sl.in);
            if (length == 0)
                continue;
            if (x_.echo)
                check_echo_reply(std::string_view(sl.in).substr(0, length), x_.expected_body);
            break;
        }
        // The request is answered: count the connection, close it, start the next.
        const auto t = now_ns();
        ++total_;
        if (measuring_) {
            hist_.record(static_cast<std::uint64_t>(t - sl.started));
            ++done_;
        }
        sl.s.close_notify();
        sl.s = stream();
        begin(i);
    }

    const options& o_;
    const exchange x_;
    util::endpoint ep_{};
    std::optional<tls_client> tls_;
    util::unique_fd epfd_;
    std::vector<slot> slots_;
    bool measuring_ = false;
    histogram hist_;
    std::uint64_t done_ = 0;
    std::uint64_t total_ = 0;
};

} // namespace

int run_handshake(const options& o, report& r)
{
    handshake_run run(o, ping_exchange());
    return run.run(r);
}

int run_connect(const options& o, report& r)
{
    handshake_run run(o, echo_exchange(o.size));
    return run.run(r);
}

} // namespace fxd::bench
