// echo: C connections, P requests outstanding on each at all times, one
// epoll loop on one thread. With --batch a connection sends P requests and
// waits for all P replies before sending the next P, as redis-benchmark -P
// does, so its latency figures compare with redis-benchmark's. Every request is the same frame, so a
// connection's unsent bytes are just a count into a buffer of P + 1 copies.
// With --tls the same loop runs through OpenSSL on each socket (stream.hpp).

#include "common.hpp"
#include "frames.hpp"
#include "stream.hpp"

#include <fxd/client/client.hpp>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace fxd::bench {

namespace {

struct tcp_conn {
    stream s;
    std::vector<char> in;
    std::size_t have = 0;
    std::uint64_t unsent = 0;    // bytes of queued requests not yet written
    std::uint64_t written = 0;   // bytes written so far (the offset into the pattern)
    std::vector<std::int64_t> stamps; // ring of the outstanding requests' send times
    std::size_t head = 0;
    std::size_t outstanding = 0;
    bool want_out = false;
    bool read_wants_out = false; // TLS: a read stopped until the socket is writable
    bool answered = false;       // has had a reply (the warm-up waits for every connection's first)
};

class echo_run {
public:
    echo_run(const options& o) : o_(o)
    {
        body_.resize(o.size);
        for (std::size_t i = 0; i < body_.size(); ++i)
            body_[i] = static_cast<char>('a' + i % 26);
        expected_ = body_;
        for (auto& ch : expected_)
            ch = static_cast<char>(ch - 'a' + 'A');
        const std::string frame = client::make_frame({{"op", "echo"}}, body_);
        frame_len_ = frame.size();
        for (int i = 0; i <= o.pipeline; ++i)
            pattern_ += frame;
    }

    int run(report& r)
    {
        const auto ep = resolve(o_.host, o_.port, SOCK_STREAM);
        std::optional<tls_client> tls;
        if (o_.tls)
            tls.emplace(o_.cacert, o_.host);
        auto streams = open_streams(ep, o_.connections, 30, tls ? &*tls : nullptr);
        epfd_.reset(::epoll_create1(EPOLL_CLOEXEC));
        conns_.resize(streams.size());
        // A read can hold at most P replies; leave room for twice that.
        const std::size_t reply_len = 4 + 64 + o_.size;
        const std::size_t cap = std::max<std::size_t>(4096, 2 * static_cast<std::size_t>(o_.pipeline) * reply_len);
        for (std::size_t i = 0; i < streams.size(); ++i) {
            auto& c = conns_[i];
            c.s = std::move(streams[i]);
            c.in.resize(cap);
            c.stamps.resize(static_cast<std::size_t>(o_.pipeline));
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = i;
            ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, c.s.fd(), &ev);
        }
        const auto start = now_ns();
        for (auto& c : conns_) {
            queue(c, static_cast<std::size_t>(o_.pipeline), start);
            flush(c);
        }
        // The warm-up lasts --warmup seconds and until every connection has had
        // a reply (with 10,000 connections the first round takes a while),
        // but no more than 30 seconds.
        const auto warm_end = start + static_cast<std::int64_t>(o_.warmup * 1e9);
        const auto warm_limit = warm_end + 30'000'000'000LL;
        const auto measured = static_cast<std::int64_t>(o_.seconds * 1e9);
        std::int64_t end = warm_limit + measured;
        std::int64_t measure_start = 0;
        std::vector<epoll_event> events(1024);
        std::int64_t now = start;
        while (now < end) {
            if (!measuring_ && now >= warm_end &&
                (answered_ == conns_.size() || now >= warm_limit)) {
                measuring_ = true;
                measure_start = now;
                end = now + measured;
                hist_.reset();
                replies_ = 0;
            }
            const auto next = measuring_ ? end : std::max(warm_end, now + 1'000'000);
            const int wait_ms = static_cast<int>(std::clamp<std::int64_t>((next - now) / 1'000'000, 0, 100));
            const int got = ::epoll_wait(epfd_.get(), events.data(), static_cast<int>(events.size()), wait_ms);
            if (got < 0 && errno != EINTR)
                throw bench_error(std::string("epoll_wait: ") + std::strerror(errno));
            for (int i = 0; i < got; ++i) {
                auto& c = conns_[events[static_cast<std::size_t>(i)].data.u64];
                const auto what = events[static_cast<std::size_t>(i)].events;
                if (what & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    on_readable(c);
                if (what & EPOLLOUT) {
                    if (c.read_wants_out)
                        on_readable(c);
                    flush(c);
                }
            }
            now = now_ns();
        }
        const double elapsed = measuring_ ? seconds_between(measure_start, now) : 0.0;
        conns_.clear();
        epfd_.reset();

        r.count("connections", static_cast<std::uint64_t>(o_.connections), "connections");
        r.count("pipeline", static_cast<std::uint64_t>(o_.pipeline), "pipeline");
        r.set("batch", o_.batch);
        r.count("size", o_.size, "body bytes");
        r.figure("seconds", elapsed, "measured", "s", 2);
        r.count("requests", replies_, "requests");
        const double rps = elapsed > 0 ? static_cast<double>(replies_) / elapsed : 0.0;
        r.figure("requests_per_s", rps, "requests/s", "", 0);
        r.figure("mb_per_s", rps * static_cast<double>(o_.size) / 1e6, "body MB/s each way", "MB/s", 2);
        r.latency(hist_);
        return 0;
    }

private:
    void queue(tcp_conn& c, std::size_t n, std::int64_t t)
    {
        for (std::size_t k = 0; k < n; ++k) {
            c.stamps[(c.head + c.outstanding) % c.stamps.size()] = t;
            ++c.outstanding;
        }
        c.unsent += n * frame_len_;
    }

    void flush(tcp_conn& c)
    {
        while (c.unsent > 0) {
            const auto off = c.written % frame_len_;
            const auto len = std::min<std::uint64_t>(c.unsent, pattern_.size() - off);
            std::size_t n = 0;
            // A TLS write that wants the socket readable is retried from on_readable,
            // which runs on EPOLLIN anyway.
            if (c.s.write(pattern_.data() + off, static_cast<std::size_t>(len), n) != io::ok)
                break;
            c.written += n;
            c.unsent -= n;
        }
        update_interest(c);
    }

    void update_interest(tcp_conn& c)
    {
        const bool want = c.unsent > 0 || c.read_wants_out;
        if (want != c.want_out) {
            epoll_event ev{};
            ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
            ev.data.u64 = static_cast<std::uint64_t>(&c - conns_.data());
            ::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, c.s.fd(), &ev);
            c.want_out = want;
        }
    }

    void on_readable(tcp_conn& c)
    {
        // Plain TCP reads once per readiness, as epoll reports what is left.
        // TLS reads on while OpenSSL holds decrypted bytes epoll cannot see.
        do
            read_once(c);
        while (c.s.pending());
        if (c.s.is_tls() && c.unsent > 0)
            flush(c); // the write may have been waiting for this readiness
    }

    void read_once(tcp_conn& c)
    {
        std::size_t n = 0;
        const auto r = c.s.read(c.in.data() + c.have, c.in.size() - c.have, n);
        if (r == io::closed)
            throw bench_error("the server closed a connection");
        if (c.read_wants_out != (r == io::want_write)) {
            c.read_wants_out = r == io::want_write;
            update_interest(c);
        }
        if (r != io::ok)
            return;
        c.have += n;
        const auto t = now_ns();
        std::size_t pos = 0;
        std::size_t done = 0;
        while (true) {
            const auto len = complete_reply(std::string_view(c.in.data() + pos, c.have - pos));
            if (len == 0)
                break;
            const std::string_view frame(c.in.data() + pos, len);
            if (++checked_ % 1024 == 1)
                check_echo_reply(frame, expected_);
            if (measuring_) {
                hist_.record(static_cast<std::uint64_t>(t - c.stamps[c.head]));
                ++replies_;
            }
            if (!c.answered) {
                c.answered = true;
                ++answered_;
            }
            c.head = (c.head + 1) % c.stamps.size();
            --c.outstanding;
            ++done;
            pos += len;
        }
        if (pos > 0) {
            std::memmove(c.in.data(), c.in.data() + pos, c.have - pos);
            c.have -= pos;
        }
        if (c.have == c.in.size())
            c.in.resize(c.in.size() * 2);
        const bool refill = o_.batch ? (done > 0 && c.outstanding == 0) : done > 0;
        if (refill) {
            queue(c, o_.batch ? static_cast<std::size_t>(o_.pipeline) : done, t);
            flush(c);
        }
    }

    const options& o_;
    std::string body_;
    std::string expected_;
    std::string pattern_;
    std::size_t frame_len_ = 0;
    std::vector<tcp_conn> conns_;
    util::unique_fd epfd_;
    bool measuring_ = false;
    histogram hist_;
    std::uint64_t replies_ = 0;
    std::uint64_t checked_ = 0;
    std::size_t answered_ = 0;
};

} // namespace

int run_echo(const options& o, report& r)
{
    echo_run run(o);
    return run.run(r);
}

} // namespace fxd::bench
