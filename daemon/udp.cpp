// The UDP side: one datagram, one frame, one reply at most.

#include "server.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/udp.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/logger.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::udp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// Datagrams taken per system call, and handled before yielding to TCP sessions.
constexpr std::size_t batch = 64;
/// Room for the largest UDP payload, so no datagram is ever truncated.
constexpr std::size_t slot_bytes = 65536;
/// Kernel receive buffer asked for: bursts queue there instead of being lost.
constexpr int receive_buffer_bytes = 4 << 20;

asio::ip::address address_of(const sockaddr_storage& from)
{
    if (from.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(from);
        asio::ip::address_v6::bytes_type bytes;
        std::memcpy(bytes.data(), &in6.sin6_addr, bytes.size());
        return asio::ip::address_v6(bytes);
    }
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(from);
    return asio::ip::address_v4(ntohl(in4.sin_addr.s_addr));
}

} // namespace

/// Everything one batch needs, allocated once per loop. The datagram slots are
/// not zeroed, so only the pages datagrams land in become resident.
struct server::udp_batch {
    std::unique_ptr<char[]> slots = std::make_unique_for_overwrite<char[]>(batch * slot_bytes);
    std::array<mmsghdr, batch> in{};
    std::array<iovec, batch> in_iov{};
    std::array<sockaddr_storage, batch> from{};
    std::array<mmsghdr, batch> out{};
    std::array<iovec, batch> out_iov{};
    std::string replies;       ///< every reply of the batch, one after another
    std::size_t reply_count = 0;

    void arm_receive()
    {
        for (std::size_t i = 0; i < batch; ++i) {
            in_iov[i] = {slots.get() + i * slot_bytes, slot_bytes};
            in[i].msg_hdr = {};
            in[i].msg_hdr.msg_iov = &in_iov[i];
            in[i].msg_hdr.msg_iovlen = 1;
            in[i].msg_hdr.msg_name = &from[i];
            in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
            in[i].msg_len = 0;
        }
    }

    std::array<std::size_t, batch> reply_at{};  ///< offset of reply r in `replies`
    std::array<std::size_t, batch> reply_len{};
    std::array<std::size_t, batch> reply_to{};  ///< which received datagram reply r answers

    void add_reply(std::size_t at, std::size_t length, std::size_t datagram)
    {
        reply_at[reply_count] = at;
        reply_len[reply_count] = length;
        reply_to[reply_count] = datagram;
        ++reply_count;
    }

    /// Points one message header per reply at its bytes and its source.
    void arm_send()
    {
        for (std::size_t r = 0; r < reply_count; ++r) {
            out_iov[r] = {replies.data() + reply_at[r], reply_len[r]};
            out[r].msg_hdr = {};
            out[r].msg_hdr.msg_iov = &out_iov[r];
            out[r].msg_hdr.msg_iovlen = 1;
            out[r].msg_hdr.msg_name = &from[reply_to[r]];
            out[r].msg_hdr.msg_namelen = in[reply_to[r]].msg_hdr.msg_namelen;
        }
    }
};

asio::awaitable<void> server::udp_loop()
{
    auto buffers = std::make_unique<udp_batch>();
    {
        boost::system::error_code ignored; // capped by net.core.rmem_max; a smaller buffer still works
        udp_.set_option(asio::socket_base::receive_buffer_size(receive_buffer_bytes), ignored);
    }
    while (udp_.is_open()) {
        buffers->arm_receive();
        const int got = ::recvmmsg(udp_.native_handle(), buffers->in.data(), batch, MSG_DONTWAIT, nullptr);
        if (got <= 0) {
            if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_.debug("udp receive failed: {}", std::strerror(errno));
            // The queue is empty: sleep until a datagram comes (or the socket closes).
            co_await udp_.async_wait(udp::socket::wait_read, use_tuple);
            continue;
        }
        answer_batch(*buffers, static_cast<std::size_t>(got));
        send_replies(*buffers);
        if (static_cast<std::size_t>(got) == batch)
            co_await asio::post(io_, asio::use_awaitable); // more may be queued: let TCP sessions run first
    }
}

void server::answer_batch(udp_batch& b, std::size_t received)
{
    const auto now = source_limiter::clock::now(); // one reading per batch is precise enough
    b.replies.clear();
    b.reply_count = 0;
    for (std::size_t i = 0; i < received; ++i) {
        const std::size_t n = b.in[i].msg_len;
        if (!udp_limiter_.allow(address_of(b.from[i]), now)) {
            ++stats_.udp_in;
            stats_.bytes_in += n;
            ++stats_.udp_rate_limited;
            continue;
        }
        const std::size_t at = b.replies.size();
        try {
            handle_datagram({b.slots.get() + i * slot_bytes, n}, b.replies);
        } catch (const std::exception& e) {
            // One datagram's failure must not end the UDP loop.
            b.replies.resize(at);
            stats_.count_udp_drop(services::udp_drop::internal);
            log_.error("udp datagram from {} failed: {}", address_of(b.from[i]).to_string(), e.what());
            continue;
        }
        if (const std::size_t length = b.replies.size() - at; length != 0)
            b.add_reply(at, length, i); // none: dropped and counted by handle_datagram
    }
}

void server::send_replies(udp_batch& b)
{
    // All replies of the batch in as few system calls as the kernel allows.
    b.arm_send();
    for (std::size_t r = 0; r < b.reply_count;) {
        const int sent = ::sendmmsg(udp_.native_handle(), b.out.data() + r, static_cast<unsigned>(b.reply_count - r),
                                    MSG_DONTWAIT);
        if (sent > 0) {
            for (int k = 0; k < sent; ++k)
                stats_.bytes_out += b.reply_len[r + static_cast<std::size_t>(k)];
            stats_.udp_out += static_cast<std::uint64_t>(sent);
            r += static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR)
            continue;
        // A full send buffer or an unreachable source: UDP may lose this reply.
        stats_.count_udp_drop(services::udp_drop::send_failed);
        ++r;
    }
}

void server::handle_datagram(std::span<const char> datagram, std::string& out)
{
    ++stats_.udp_in;
    stats_.bytes_in += datagram.size();
    using services::udp_drop;
    if (datagram.empty())
        return stats_.count_udp_drop(udp_drop::empty);
    if (datagram.size() < protocol::prefix_bytes)
        return stats_.count_udp_drop(udp_drop::malformed);
    const auto header_len = protocol::load_u32_be(reinterpret_cast<const unsigned char*>(datagram.data()));
    if (header_len == 0 || header_len > cfg_.limits.max_header_bytes ||
        header_len > datagram.size() - protocol::prefix_bytes)
        return stats_.count_udp_drop(udp_drop::malformed);
    protocol::request_header request;
    protocol::errc error{};
    if (!udp_parser_.parse({datagram.data() + protocol::prefix_bytes, header_len}, request, error))
        return stats_.count_udp_drop(udp_drop::malformed);
    if (protocol::is_reply_shaped(request))
        return stats_.count_udp_drop(udp_drop::reply_shaped);
    const auto body = datagram.subspan(protocol::prefix_bytes + header_len);
    if (protocol::has_field(request, "size") && request.size != body.size())
        return stats_.count_udp_drop(udp_drop::malformed);
    request.size = body.size();

    const std::size_t mark = out.size();
    const auto began = clock::now();
    const admission plan = dispatcher_.admit(request, transport::udp, requests_.draining(), nullptr);
    if (plan.action == admission::kind::refuse)
        dispatcher_.reply_error(out, &request, plan.code, plan.message);
    else
        dispatcher_.serve(request, body, nullptr, out);
    timings_.observe_request(request.operation, clock::now() - began);
    if (!protocol::udp_reply_within_bound(datagram.size(), out.size() - mark)) {
        out.resize(mark); // never amplify, whatever the reply
        stats_.count_udp_drop(udp_drop::oversize_reply);
    }
}

} // namespace fxd::daemon
