// The TCP session: read what the socket holds, decode every whole frame in
// it, queue the replies, write them in one go, repeat.

#include "connection.hpp"
#include "server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/logger.h>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;
using protocol::errc;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// Least free space offered to each read; large reads keep syscalls per byte low.
constexpr std::size_t read_chunk = 16 * 1024;
/// Replies queued past this are written before decoding more, bounding memory.
constexpr std::size_t max_queued_reply_bytes = 256 * 1024;

} // namespace

asio::awaitable<void> server::session(connection_list::iterator self)
{
    connection& c = *self;
    ++sessions_;
    ++stats_.connections_open;
    protocol::decoder decoder({cfg_.limits.max_header_bytes});
    std::string out;
    c.decoder = &decoder;
    c.output = &out;

    bool close_after_flush = false; // a contract error ends the connection once its reply is out
    bool in_flight = false;         // a buffered request whose body is still arriving
    bool header_clock = false;      // header_s runs from a frame's first byte to its header's end
    clock::time_point header_started;

    auto refuse = [&](const protocol::request_header& request, errc code, std::string_view message) {
        dispatcher_.reply_error(out, &request, code, message);
        if (request.size <= cfg_.limits.max_discard_bytes)
            decoder.skip_body();
        else
            close_after_flush = true; // too much to read through: reply and close
    };

    for (;;) {
        // Decode every whole frame already received.
        bool need_more = false;
        while (!need_more && !close_after_flush && out.size() < max_queued_reply_bytes) {
            switch (decoder.next()) {
            case protocol::decoder::event::need_more:
                need_more = true;
                break;
            case protocol::decoder::event::error:
                dispatcher_.reply_error(out, nullptr, decoder.error(),
                                        decoder.error() == errc::bad_frame          ? "header length is zero"
                                        : decoder.error() == errc::header_too_large ? "header exceeds limits.max_header_bytes"
                                                                                    : "header is not a JSON object with a valid size");
                close_after_flush = true;
                break;
            case protocol::decoder::event::header: {
                header_clock = false;
                const auto& request = decoder.header();
                const admission plan = dispatcher_.admit(request, transport::tcp, draining_);
                switch (plan.action) {
                case admission::kind::refuse:
                    refuse(request, plan.code, plan.message);
                    break;
                case admission::kind::serve_now:
                    dispatcher_.serve(request, {}, out);
                    decoder.skip_body();
                    break;
                case admission::kind::buffer:
                    decoder.buffer_body();
                    in_flight = true;
                    request_started();
                    break;
                }
                break;
            }
            case protocol::decoder::event::frame:
                dispatcher_.serve(decoder.header(), decoder.body(), out);
                in_flight = false;
                request_finished();
                break;
            case protocol::decoder::event::body_chunk:
            case protocol::decoder::event::body_end:
                break; // no streaming op is served yet
            }
        }

        if (!out.empty()) {
            c.set_deadline(seconds(cfg_.timeouts.body_s));
            bool ok = false;
            co_await write_all(c, out, ok);
            if (!ok)
                break;
            out.clear();
        }
        if (close_after_flush) {
            co_await linger_close(c);
            break;
        }
        if (c.stopping)
            break;
        if (!need_more)
            continue; // replies were flushed mid-batch: decode the rest

        // Wait for more bytes, under the deadline that fits where we are in the frame.
        const bool between_frames = decoder.at_frame_boundary();
        if (between_frames) {
            c.set_deadline(seconds(cfg_.timeouts.idle_s));
            c.parked = true;
            c.parked_since = clock::now();
            auto [ec] = co_await c.socket.async_wait(tcp::socket::wait_read, use_tuple);
            c.parked = false;
            if (ec) {
                if (c.expired && !c.stopping) {
                    ++stats_.timeouts;
                    dispatcher_.reply_error(out, nullptr, errc::timeout, "idle for longer than timeouts.idle_s");
                    close_after_flush = true;
                    continue; // flush the timeout reply, then linger and close
                }
                break;
            }
        } else if (decoder.in_header()) {
            if (!header_clock) {
                header_clock = true;
                header_started = clock::now();
            }
            c.deadline = header_started + seconds(cfg_.timeouts.header_s);
            c.expired = false;
        } else {
            c.set_deadline(seconds(cfg_.timeouts.body_s));
        }

        // A body gathered whole gets room for all of it (bounded by the echo limit at admission).
        const std::size_t wanted = decoder.buffering_body()
                                       ? std::max<std::size_t>(read_chunk, decoder.body_remaining() - std::min<std::uint64_t>(decoder.body_remaining(), decoder.buffered()))
                                       : read_chunk;
        const auto space = decoder.prepare(wanted);
        auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(space.data(), space.size()), use_tuple);
        if (ec) {
            if (c.expired && !c.stopping) {
                ++stats_.timeouts;
                log_.debug("connection timed out mid-frame");
            } else if (ec != asio::error::eof && !c.stopping) {
                log_.debug("read failed: {}", ec.message());
            }
            break;
        }
        decoder.commit(n);
        stats_.bytes_in += n;
        if (between_frames) {
            header_clock = true;
            header_started = clock::now();
        }
    }

    // The one way out.
    if (in_flight)
        request_finished();
    boost::system::error_code ignored;
    c.socket.close(ignored);
    --sessions_;
    --stats_.connections_open;
    connections_.erase(self);
}

} // namespace fxd::daemon
