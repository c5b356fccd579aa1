// udp: W datagrams in flight on one connected socket, sent and received in
// batches (sendmmsg/recvmmsg). Slot i sends sequence numbers i, i+W, i+2W...
// written as 16 decimal digits at the start of the body (digits survive the
// upper-casing), so a reply names its slot and a late reply is recognised.

#include "common.hpp"

#include <fxd/client/client.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace fxd::bench {

namespace {

constexpr std::size_t seq_digits = 16;
constexpr std::size_t max_datagram = 65536;

struct slot {
    std::string datagram;
    std::uint64_t seq = 0;
    std::int64_t sent_at = 0;
    bool outstanding = false;
};

void write_seq(std::string& datagram, std::size_t at, std::uint64_t seq)
{
    for (std::size_t i = 0; i < seq_digits; ++i) {
        datagram[at + seq_digits - 1 - i] = static_cast<char>('0' + seq % 10);
        seq /= 10;
    }
}

bool read_seq(const char* p, std::uint64_t& seq)
{
    return std::from_chars(p, p + seq_digits, seq).ec == std::errc();
}

} // namespace

int run_udp(const options& o, report& r)
{
    if (o.size < seq_digits)
        throw bench_error("udp needs --size of at least 16 bytes (the sequence number travels in the body)");
    const auto ep = resolve(o.host, o.udp_port, SOCK_DGRAM);
    const util::unique_fd socket(::socket(ep.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int fd = socket.get();
    if (!socket || ::connect(fd, ep.address(), ep.length) != 0)
        throw connect_error(std::string("udp socket: ") + std::strerror(errno));
    const int buf = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);

    std::string body(o.size, 'x');
    for (std::size_t i = 0; i < body.size(); ++i)
        body[i] = static_cast<char>('a' + i % 26);
    const std::string templ = client::make_frame({{"op", "echo"}}, body);
    const std::size_t body_at = templ.size() - o.size;
    const auto W = static_cast<std::size_t>(o.window);
    std::vector<slot> slots(W);
    for (std::size_t i = 0; i < W; ++i) {
        slots[i].datagram = templ;
        slots[i].seq = i;
    }

    std::vector<mmsghdr> out_msgs(W), in_msgs(W);
    std::vector<iovec> out_iov(W), in_iov(W);
    std::vector<char> in_buf(W * max_datagram);
    for (std::size_t i = 0; i < W; ++i) {
        in_iov[i] = {in_buf.data() + i * max_datagram, max_datagram};
        in_msgs[i].msg_hdr = {};
        in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
        in_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    std::vector<std::size_t> to_send;
    to_send.reserve(W);

    histogram hist;
    bool measuring = false;
    std::uint64_t sent = 0, replies = 0, lost = 0, late = 0, checked = 0;
    const auto timeout_ns = static_cast<std::int64_t>(o.udp_timeout_ms * 1e6);

    auto send_batch = [&](std::int64_t t) {
        std::size_t n = 0;
        for (const auto i : to_send) {
            auto& s = slots[i];
            write_seq(s.datagram, body_at, s.seq);
            s.sent_at = t;
            s.outstanding = true;
            out_iov[n] = {s.datagram.data(), s.datagram.size()};
            out_msgs[n].msg_hdr = {};
            out_msgs[n].msg_hdr.msg_iov = &out_iov[n];
            out_msgs[n].msg_hdr.msg_iovlen = 1;
            ++n;
        }
        std::size_t done = 0;
        while (done < n) {
            const int k = ::sendmmsg(fd, out_msgs.data() + done, static_cast<unsigned>(n - done), 0);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                break; // the rest time out and go again
            }
            done += static_cast<std::size_t>(k);
        }
        if (measuring)
            sent += n;
        to_send.clear();
    };

    const auto start = now_ns();
    for (std::size_t i = 0; i < W; ++i)
        to_send.push_back(i);
    send_batch(start);
    const auto warm_end = start + static_cast<std::int64_t>(o.warmup * 1e9);
    const auto end = warm_end + static_cast<std::int64_t>(o.seconds * 1e9);
    std::int64_t measure_start = 0, next_scan = start + 5'000'000;
    std::int64_t now = start;
    while (now < end) {
        if (!measuring && now >= warm_end) {
            measuring = true;
            measure_start = now;
            hist.reset();
            replies = lost = late = 0;
            sent = 0;
        }
        int got = ::recvmmsg(fd, in_msgs.data(), static_cast<unsigned>(W), MSG_DONTWAIT, nullptr);
        if (got <= 0) {
            pollfd p{fd, POLLIN, 0};
            ::poll(&p, 1, 2);
            got = ::recvmmsg(fd, in_msgs.data(), static_cast<unsigned>(W), MSG_DONTWAIT, nullptr);
        }
        now = now_ns();
        for (int k = 0; k < got; ++k) {
            const char* d = static_cast<const char*>(in_iov[static_cast<std::size_t>(k)].iov_base);
            const std::size_t len = in_msgs[static_cast<std::size_t>(k)].msg_len;
            std::uint64_t seq = 0;
            if (len < o.size || !read_seq(d + len - o.size, seq))
                throw bench_error("a reply datagram does not end with the request's body");
            auto& s = slots[seq % W];
            if (!s.outstanding || s.seq != seq) {
                ++late;
                continue;
            }
            if (++checked % 1024 == 1) {
                const std::string_view got_dgram(d, len);
                if (o.raw) {
                    if (got_dgram != s.datagram)
                        throw bench_error("the reference did not echo the datagram unchanged");
                } else {
                    const auto rep = client::parse_frame(got_dgram);
                    std::string expected = s.datagram.substr(body_at);
                    for (auto& ch : expected)
                        if (ch >= 'a' && ch <= 'z')
                            ch = static_cast<char>(ch - 'a' + 'A');
                    if (!rep.ok())
                        throw bench_error("the server answered " + rep.code());
                    if (rep.body != expected)
                        throw bench_error("a UDP echo reply does not carry the expected body");
                }
            }
            if (measuring) {
                hist.record(static_cast<std::uint64_t>(now - s.sent_at));
                ++replies;
            }
            s.outstanding = false;
            s.seq += W;
            to_send.push_back(seq % W);
        }
        if (now >= next_scan) {
            for (std::size_t i = 0; i < W; ++i) {
                auto& s = slots[i];
                if (s.outstanding && now - s.sent_at > timeout_ns) {
                    if (measuring)
                        ++lost;
                    s.outstanding = false;
                    s.seq += W;
                    to_send.push_back(i);
                }
            }
            next_scan = now + 5'000'000;
        }
        if (!to_send.empty())
            send_batch(now);
    }
    const double elapsed = measuring ? seconds_between(measure_start, now) : 0.0;
    r.count("window", W, "in flight");
    r.count("size", o.size, "body bytes");
    r.set("raw", o.raw);
    r.figure("seconds", elapsed, "measured", "s", 2);
    r.count("datagrams", replies, "replies");
    r.count("sent", sent, "sent");
    r.count("lost", lost, "timed out (resent)");
    r.count("late", late, "late replies");
    const double dps = elapsed > 0 ? static_cast<double>(replies) / elapsed : 0.0;
    r.figure("datagrams_per_s", dps, "datagrams/s", "", 0);
    r.figure("loss_percent", sent ? 100.0 * static_cast<double>(lost) / static_cast<double>(sent) : 0.0, "loss", "%", 3);
    r.latency(hist);
    return 0;
}

} // namespace fxd::bench
