// The UDP side: one datagram, one frame, one reply at most.

#include "server.hpp"

#include <fxd/protocol/decoder.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/logger.h>

#include <array>
#include <vector>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::udp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// A reply may exceed its request by at most this much (no amplification).
constexpr std::size_t max_reply_growth = 128;
/// Datagrams handled per wake-up before yielding to TCP sessions.
constexpr int batch = 64;

} // namespace

asio::awaitable<void> server::udp_loop()
{
    std::vector<char> datagram(65536);
    std::string out;
    udp::endpoint from;
    for (;;) {
        auto [ec, n] = co_await udp_.async_receive_from(asio::buffer(datagram), from, use_tuple);
        if (!udp_.is_open())
            co_return;
        const auto now = source_limiter::clock::now(); // one reading per batch is precise enough
        for (int handled = 0;; ++handled) {
            if (ec) {
                if (ec != asio::error::would_block)
                    log_.debug("udp receive failed: {}", ec.message());
                break;
            }
            if (!udp_limiter_.allow(from.address(), now)) {
                ++stats_.udp_in;
                stats_.bytes_in += n;
                ++stats_.udp_rate_limited;
            } else {
                out.clear();
                handle_datagram({datagram.data(), n}, out);
                if (out.size() > n + max_reply_growth) {
                    ++stats_.udp_dropped; // never amplify, whatever a handler produced
                } else if (out.size() != 0 || n == 0) {
                    boost::system::error_code send_ec;
                    udp_.send_to(asio::buffer(out), from, 0, send_ec);
                    if (send_ec) {
                        ++stats_.udp_dropped;
                    } else {
                        ++stats_.udp_out;
                        stats_.bytes_out += out.size();
                    }
                }
            }
            if (handled + 1 == batch)
                break;
            n = udp_.receive_from(asio::buffer(datagram), from, 0, ec);
        }
    }
}

void server::handle_datagram(std::span<const char> datagram, std::string& out)
{
    ++stats_.udp_in;
    stats_.bytes_in += datagram.size();
    if (datagram.empty())
        return; // answered with an empty datagram
    auto drop = [&] { ++stats_.udp_dropped; };
    if (datagram.size() < protocol::prefix_bytes)
        return drop();
    const auto header_len = protocol::load_u32_be(reinterpret_cast<const unsigned char*>(datagram.data()));
    if (header_len == 0 || header_len > cfg_.limits.max_header_bytes ||
        header_len > datagram.size() - protocol::prefix_bytes)
        return drop();
    protocol::request_header request;
    protocol::errc error{};
    if (!udp_parser_.parse({datagram.data() + protocol::prefix_bytes, header_len}, request, error))
        return drop();
    const auto body = datagram.subspan(protocol::prefix_bytes + header_len);
    if (protocol::has_field(request, "size") && request.size != body.size())
        return drop();
    request.size = body.size();

    const admission plan = dispatcher_.admit(request, transport::udp, draining_, nullptr);
    if (plan.action == admission::kind::refuse)
        dispatcher_.reply_error(out, &request, plan.code, plan.message);
    else
        dispatcher_.serve(request, body, nullptr, out);
}

} // namespace fxd::daemon
