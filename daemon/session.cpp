// The TCP session: read what the socket holds, decode every whole frame in
// it, queue the replies, write them in one go, repeat.

#include "connection.hpp"
#include "server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/logger.h>

#include <sys/sendfile.h>

#include <cstring>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;
using protocol::errc;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// Free space offered to a read: small for a connection that sends little (it
/// is what an idle connection last held), doubled while reads fill it.
constexpr std::size_t min_read_chunk = 2 * 1024;
constexpr std::size_t max_read_chunk = 64 * 1024;
/// Reads while an upload streams: large, so a fast client costs few syscalls per byte.
constexpr std::size_t upload_read_chunk = 256 * 1024;

} // namespace

asio::awaitable<void> server::session(connection_list::iterator self)
{
    connection& c = *self;
    ++sessions_;
    ++stats_.connections_open;
    protocol::decoder decoder({cfg_.limits.max_header_bytes});
    std::string out;        // replies queued for the client
    std::size_t out_sent = 0; // of which the socket already took this many
    c.decoder = &decoder;
    c.output = &out;
    session_context context;
    context.peer_address = c.peer.to_string();

    bool close_after_flush = false; // a contract error ends the connection once its reply is out
    bool broken = false;            // the connection failed mid-reply: end it now
    // Requests of this connection admitted and not yet answered (each also
    // counts in the server's in_flight_, which the drain waits for).
    std::size_t requests_open = 0;
    auto begin_request = [&] {
        ++requests_open;
        request_started();
    };
    auto end_request = [&] {
        --requests_open;
        request_finished();
    };
    std::unique_ptr<services::upload> upload; // an upload whose body is streaming to storage
    clock::time_point upload_started;
    bool header_clock = false;      // header_s runs from a frame's first byte to its header's end
    clock::time_point header_started;
    // The last read found the socket empty, so the next step is a wait; after a
    // full read, another read is tried first (pipelined bytes are likely there).
    // It starts false: a client usually sends at once, so the first read skips a wait.
    bool socket_drained = false;
    std::size_t read_chunk = min_read_chunk;
    bool waited = true; // the last turn ended in a wait for the socket (or this one just began)
    c.socket.non_blocking(true);    // reads and writes are tried at once; Asio waits only when they would block

    auto pending = [&] { return out.size() - out_sent; };
    // Writes what the socket takes now; false when the connection broke.
    auto send_now = [&] {
        while (out_sent < out.size()) {
            boost::system::error_code ec;
            const auto n = c.socket.write_some(asio::buffer(out.data() + out_sent, out.size() - out_sent), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again)
                return true;
            if (ec == asio::error::interrupted)
                continue;
            if (ec) {
                if (!c.stopping)
                    log_.debug("write failed: {}", ec.message());
                return false;
            }
            out_sent += n;
            stats_.bytes_out += n;
        }
        out.clear();
        out_sent = 0;
        return true;
    };
    enum class read_result { got, would_block, closed };
    // Reads what the socket holds now, without waiting.
    auto try_read = [&] {
        // A body gathered whole gets room for all of it (bounded by the echo limit at admission).
        const std::size_t wanted = upload ? upload_read_chunk
                                   : decoder.buffering_body()
                                       ? std::max<std::size_t>(read_chunk, decoder.body_remaining() - std::min<std::uint64_t>(decoder.body_remaining(), decoder.buffered()))
                                       : read_chunk;
        const bool between_frames = decoder.at_frame_boundary();
        const auto space = decoder.prepare(wanted);
        boost::system::error_code ec;
        const auto n = c.socket.read_some(asio::buffer(space.data(), space.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::interrupted) {
            socket_drained = true;
            return read_result::would_block;
        }
        if (ec) {
            if (ec != asio::error::eof && !c.stopping)
                log_.debug("read failed: {}", ec.message());
            return read_result::closed;
        }
        decoder.commit(n);
        stats_.bytes_in += n;
        socket_drained = n < space.size();
        if (!socket_drained)
            read_chunk = std::min(read_chunk * 2, max_read_chunk);
        if (between_frames) {
            header_clock = true;
            header_started = clock::now();
        }
        return read_result::got;
    };

    auto refuse = [&](const protocol::request_header& request, errc code, std::string_view message) {
        dispatcher_.reply_error(out, &request, code, message);
        if (body_length(request) <= cfg_.limits.max_discard_bytes)
            decoder.skip_body();
        else
            close_after_flush = true; // too much to read through: reply and close
    };

    try {
        for (;;) {
            // A client that keeps the socket full never makes this session wait:
            // give every other connection its turn before taking more of its input.
            if (!waited) {
                co_await asio::post(io_, asio::use_awaitable);
            }
            waited = false;

            // Decode every whole frame already received.
            bool need_more = false;
            while (!need_more && !close_after_flush && !broken && pending() < cfg_.limits.max_pending_reply_bytes) {
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
                    decoder.set_body_length(body_length(request));
                    const admission plan = dispatcher_.admit(request, transport::tcp, draining_, &context);
                    switch (plan.action) {
                    case admission::kind::refuse:
                        refuse(request, plan.code, plan.message);
                        break;
                    case admission::kind::serve_now:
                        dispatcher_.serve(request, {}, &context, out);
                        decoder.skip_body();
                        break;
                    case admission::kind::work:
                        // Slow work off the loop; this connection waits (replies stay in order),
                        // every other one is served meanwhile.
                        decoder.skip_body();
                        begin_request();
                        c.deadline = clock::time_point::max();
                        co_await dispatcher_.serve_work(request, context, out);
                        end_request();
                        break;
                    case admission::kind::buffer:
                        decoder.buffer_body();
                        begin_request();
                        break;
                    case admission::kind::upload:
                        begin_request();
                        c.deadline = clock::time_point::max();
                        upload = co_await dispatcher_.begin_upload(request, context, out);
                        if (!upload) {
                            end_request();
                            if (body_length(request) <= cfg_.limits.max_discard_bytes)
                                decoder.skip_body();
                            else
                                close_after_flush = true;
                            break;
                        }
                        upload_started = clock::now();
                        decoder.stream_body();
                        break;
                    case admission::kind::download: {
                        decoder.skip_body();
                        begin_request();
                        c.deadline = clock::time_point::max();
                        auto file = co_await dispatcher_.begin_download(request, context, out);
                        if (file) {
                            // The reply header (and replies queued before it) go out first, then the bytes.
                            c.set_deadline(seconds(cfg_.timeouts.body_s));
                            bool ok = false;
                            co_await write_all(c, std::string_view(out).substr(out_sent), ok);
                            out.clear();
                            out_sent = 0;
                            const auto started = clock::now();
                            const bool sent = ok && co_await send_file(c, file->fd.get(), file->offset, file->count);
                            dispatcher_.end_download(request, context, *file, sent,
                                                     std::chrono::duration<double>(clock::now() - started).count());
                            broken = !sent;
                        }
                        end_request();
                        break;
                    }
                    }
                    break;
                }
                case protocol::decoder::event::frame:
                    dispatcher_.serve(decoder.header(), decoder.body(), &context, out);
                    end_request();
                    break;
                case protocol::decoder::event::body_chunk:
                    if (!upload)
                        break;
                    if (const auto ec = upload->write(decoder.body())) {
                        co_await dispatcher_.fail_upload(decoder.header(), std::move(upload), ec, out);
                        end_request();
                        if (decoder.body_remaining() <= cfg_.limits.max_discard_bytes)
                            decoder.skip_body();
                        else
                            close_after_flush = true;
                    }
                    break;
                case protocol::decoder::event::body_end:
                    if (!upload)
                        break;
                    c.deadline = clock::time_point::max();
                    co_await dispatcher_.finish_upload(decoder.header(), context, std::move(upload), upload_started, out);
                    end_request();
                    break;
                }
            }

            if (broken)
                break;
            if (!out.empty()) {
                if (!send_now())
                    break;
                if (!out.empty()) {
                    // The client is not reading as fast as it asks.
                    if (pending() >= cfg_.limits.max_pending_reply_bytes) {
                        ++stats_.connections_cut_unread;
                        log_.info("connection from {} cut: {} reply bytes left unread (limits.max_pending_reply_bytes)",
                                  context.peer_address, pending());
                        break;
                    }
                    if (c.stopping)
                        break;
                    if (!need_more && !close_after_flush)
                        continue; // more whole frames are buffered: serve them while the replies wait
                    const auto got = close_after_flush ? read_result::would_block : try_read();
                    if (got == read_result::closed)
                        close_after_flush = true; // the client stopped sending; it may still read
                    if (got != read_result::got) {
                        // Nothing new to serve: wait for the client to take its replies.
                        c.set_deadline(seconds(cfg_.timeouts.body_s));
                        auto [ec] = co_await c.socket.async_wait(tcp::socket::wait_write, use_tuple);
                        waited = true;
                        if (ec) {
                            if (c.expired && !c.stopping)
                                ++stats_.timeouts;
                            break;
                        }
                    }
                    continue;
                }
            }
            if (close_after_flush) {
                co_await linger_close(c);
                break;
            }
            if (c.stopping)
                break;
            if (!need_more)
                continue; // replies were flushed mid-batch: decode the rest
            if (!socket_drained) {
                const auto got = try_read(); // more may have arrived already (pipelining): no wait
                if (got == read_result::closed)
                    break;
                if (got == read_result::got)
                    continue;
            }

            // Wait for more bytes, under the deadline that fits where we are in the frame.
            if (decoder.at_frame_boundary()) {
                c.set_deadline(seconds(cfg_.timeouts.idle_s));
                c.parked = true;
                c.parked_since = clock::now();
                read_chunk = min_read_chunk; // a busy burst is over
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
            auto [ec] = co_await c.socket.async_wait(tcp::socket::wait_read, use_tuple);
            waited = true;
            c.parked = false;
            if (ec) {
                if (c.expired && !c.stopping) {
                    ++stats_.timeouts;
                    if (decoder.at_frame_boundary()) {
                        dispatcher_.reply_error(out, nullptr, errc::timeout, "idle for longer than timeouts.idle_s");
                        close_after_flush = true;
                        continue; // flush the timeout reply, then linger and close
                    }
                    log_.debug("connection timed out mid-frame");
                }
                break;
            }
            if (try_read() == read_result::closed)
                break;
        }
    } catch (const std::exception& e) {
        // A broken invariant or an allocation failure ends this connection
        // only; without the catch the coroutine would vanish holding it.
        log_.error("connection from {} ended by an internal error: {}", context.peer_address, e.what());
    }
    // The one way out.
    if (upload) {
        // The body stopped mid-way: what arrived stays as a resumable partial.
        co_await dispatcher_.keep_partial(std::move(upload));
    }
    while (requests_open > 0)
        end_request(); // cut off mid-request, or ended by an internal error
    boost::system::error_code ignored;
    c.socket.close(ignored);
    if (const auto counted = per_address_.find(c.peer); counted != per_address_.end() && --counted->second == 0)
        per_address_.erase(counted);
    --sessions_;
    --stats_.connections_open;
    connections_.erase(self);
}

asio::awaitable<bool> server::send_file(connection& c, int fd, std::uint64_t offset, std::uint64_t count)
{
    // sendfile(2) moves the bytes from the page cache to the socket without a
    // copy through the daemon; a plain read/write loop covers where it cannot.
    const int sock = c.socket.native_handle();
    c.socket.native_non_blocking(true);
    auto position = static_cast<off_t>(offset);
    std::uint64_t left = count;
    bool use_sendfile = true;
    std::vector<char> chunk;
    while (left > 0) {
        if (c.stopping)
            co_return false;
        c.set_deadline(seconds(cfg_.timeouts.body_s));
        ssize_t n = 0;
        if (use_sendfile) {
            n = ::sendfile(sock, fd, &position, static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 22)));
            if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
                use_sendfile = false;
                continue;
            }
        } else {
            chunk.resize(256 * 1024);
            const ssize_t got = ::pread(fd, chunk.data(), std::min<std::uint64_t>(left, chunk.size()), position);
            if (got <= 0)
                co_return false;
            auto [ec, written] = co_await asio::async_write(c.socket, asio::buffer(chunk.data(), static_cast<std::size_t>(got)), use_tuple);
            if (ec)
                co_return false;
            n = static_cast<ssize_t>(written);
            position += n;
        }
        if (n > 0) {
            left -= static_cast<std::uint64_t>(n);
            stats_.bytes_out += static_cast<std::uint64_t>(n);
            continue;
        }
        if (n == 0)
            co_return false; // the file is shorter than its record: cut rather than send garbage
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_.debug("sendfile failed: {}", std::strerror(errno));
            co_return false;
        }
        auto [ec] = co_await c.socket.async_wait(tcp::socket::wait_write, use_tuple);
        if (ec)
            co_return false;
    }
    co_return true;
}

} // namespace fxd::daemon
