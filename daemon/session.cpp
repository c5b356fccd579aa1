// The TCP session, step by step. Each member is one step of one turn:
// decode and serve what is buffered, write the replies, then read more or wait.
// An awaited result is named before it is tested: GCC 12 miscompiles a
// co_await used directly as a condition (the coroutine traps with SIGILL).

#include "session.hpp"

#include "peer_key.hpp"
#include "plain_stream.hpp"
#include "proxy_intake.hpp"
#include "tls_stream.hpp"

#include <fxd/protocol/proxy_header.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/logger.h>

#include <array>

namespace fxd::daemon {

namespace asio = boost::asio;
using protocol::errc;
using io_result = io_attempt::result;

namespace {

/// Free space offered to a read: small for a connection that sends little (it
/// is what an idle connection last held), doubled while reads fill it.
constexpr std::size_t min_read_chunk = 2 * 1024;
constexpr std::size_t max_read_chunk = 64 * 1024;
/// Reads while an upload streams: large, so a fast client costs few syscalls per byte.
constexpr std::size_t upload_read_chunk = 256 * 1024;
/// A buffer grown past this (a large echo's body or reply) is freed as soon as
/// it is empty, so the memory bound counts, and the daemon holds, only what is in use.
constexpr std::size_t max_kept_buffer = 2 * upload_read_chunk;
/// Room for an echo reply's header, beyond its body.
constexpr std::size_t echo_reply_header = 1024;
/// How long a closing connection may keep sending before it is cut.
constexpr auto linger_time = std::chrono::seconds(2);

std::string_view frame_error_message(errc code)
{
    switch (code) {
    case errc::bad_frame: return "header length is zero";
    case errc::header_too_large: return "header exceeds limits.max_header_bytes";
    default: return "header is not a JSON object with a valid size";
    }
}

} // namespace

template <class Stream>
session<Stream>::session(Stream stream, asio::ip::address peer, bool proxied, session_env& env)
    : connection(peer),
      stream_(std::move(stream)),
      env_(env),
      decoder_({env.cfg.limits.max_header_bytes}),
      proxied_(proxied),
      read_chunk_(min_read_chunk)
{
    context_.encrypted = Stream::encrypted;
    set_client(peer);
}

/// Who the client is, for the limits, the login backoff and the logs.
template <class Stream>
void session<Stream>::set_client(const asio::ip::address& client)
{
    set_peer(client);
    context_.peer_address = client.to_string();
    context_.address_key = per_address_key(client).to_string();
    context_.loopback = client.is_loopback() ||
                        (client.is_v6() && client.to_v6().is_v4_mapped() &&
                         asio::ip::make_address_v4(asio::ip::v4_mapped, client.to_v6()).is_loopback());
}

/// What comes before the first frame, within timeouts.header_s: a trusted
/// balancer's PROXY header, then the stream's own start (the TLS handshake).
template <class Stream>
asio::awaitable<bool> session<Stream>::start()
{
    set_deadline(seconds(env_.cfg.timeouts.header_s));
    if (proxied_) {
        const bool taken = co_await take_proxy();
        if (!taken)
            co_return false;
    } else if constexpr (Stream::encrypted) {
        const bool refused = co_await refused_proxy_before_tls();
        if (refused)
            co_return false;
    }
    const auto began = clock::now();
    const auto ec = co_await stream_.start();
    if (!ec) {
        if constexpr (Stream::encrypted) {
            ++env_.stats.tls_handshakes;
            env_.timing.tls_handshake_seconds.observe(clock::now() - began);
            context_.certificate_subject = stream_.peer_subject();
        }
        co_return true;
    }
    if (!stopping()) {
        ++env_.stats.tls_handshake_failures;
        env_.log.debug("tls handshake with {} failed: {}", context_.peer_address, stream_.failure());
    }
    co_return false;
}

template <class Stream>
asio::awaitable<bool> session<Stream>::take_proxy()
{
    const auto balancer = context_.peer_address;
    const auto got = co_await take_proxy_header(stream_.socket());
    switch (got.result) {
    case proxy_intake::outcome::client:
        ++env_.stats.proxy_accepted;
        set_client(got.client);
        named_client_ = true;
        env_.log.debug("connection from {} relays client {} (PROXY v{})", balancer, context_.peer_address, got.version);
        co_return true;
    case proxy_intake::outcome::keep_peer:
        ++env_.stats.proxy_accepted;
        env_.log.debug("connection from {} speaks for itself (PROXY v{} LOCAL or UNKNOWN)", balancer, got.version);
        co_return true;
    case proxy_intake::outcome::bad_header:
        ++env_.stats.proxy_bad_header;
        env_.log.info("connection from {} (proxy.trusted) closed: {}", balancer, got.why);
        co_return false;
    case proxy_intake::outcome::closed:
        // A balancer's bare TCP health check: nothing to count.
        env_.log.debug("connection from {} (proxy.trusted) closed before a PROXY header", balancer);
        co_return false;
    case proxy_intake::outcome::cancelled:
        if (expired() && !stopping()) {
            ++env_.stats.proxy_bad_header;
            ++env_.stats.timeouts;
            env_.log.info("connection from {} (proxy.trusted) closed: no PROXY header within timeouts.header_s",
                          balancer);
        }
        co_return false;
    }
    co_return false;
}

template <class Stream>
asio::awaitable<bool> session<Stream>::refused_proxy_before_tls()
{
    const auto looks = co_await peeks_like_proxy_header(stream_.socket());
    if (!looks) {
        // Not a byte before the deadline (or the drain): the handshake never began.
        if (expired() && !stopping()) {
            ++env_.stats.tls_handshake_failures;
            env_.log.debug("tls handshake with {} failed: nothing received within timeouts.header_s",
                           context_.peer_address);
        }
        co_return true;
    }
    if (!*looks)
        co_return false;
    ++env_.stats.proxy_refused_untrusted;
    env_.log.info("connection from {} closed: a PROXY protocol header, but the peer is not in proxy.trusted",
                  context_.peer_address);
    co_return true;
}

template <class Stream>
bool session<Stream>::refused_proxy_frame()
{
    if (framed_ || decoder_.error() != errc::header_too_large)
        return false;
    std::array<unsigned char, protocol::prefix_bytes> prefix{};
    protocol::store_u32_be(prefix.data(), decoder_.declared_header_length());
    if (!protocol::proxy::starts_like_header({reinterpret_cast<const char*>(prefix.data()), prefix.size()}))
        return false;
    ++env_.stats.proxy_refused_untrusted;
    const std::string_view why = proxied_ ? "a second PROXY protocol header"
                                          : "a PROXY protocol header, but the peer is not in proxy.trusted";
    env_.log.info("connection from {} closed: {}", context_.peer_address, why);
    env_.dispatch.reply_error(out_, nullptr, errc::bad_request, why);
    return true;
}

template <class Stream>
asio::awaitable<void> session<Stream>::run()
{
    try {
        bool more = co_await start();
        if (more && named_client_ && !env_.admit_client(*this)) {
            co_await answer_busy(); // the client it named has limits.max_connections_per_address open
            more = false;
        }
        while (more) {
            const auto next = co_await turn();
            account_memory(); // may cut this very connection
            if (stopping())
                break;
            if (next == next_step::wait_for_input) {
                prepare_input_wait();
                const auto [ec] = co_await stream_.wait_readable();
                more = input_wait_ended(ec);
            } else {
                more = next == next_step::turn_again;
            }
        }
    } catch (const std::exception& e) {
        // A broken invariant or an allocation failure ends this connection only.
        env_.log.error("connection from {} ended by an internal error: {}", context_.peer_address, e.what());
    }
    co_await leave();
}

template <class Stream>
asio::awaitable<void> session<Stream>::refuse_busy()
{
    try {
        const bool started = co_await start();
        if (started)
            co_await answer_busy();
    } catch (const std::exception& e) {
        env_.log.error("refusing a connection failed: {}", e.what());
    }
    stream_.close();
}

template <class Stream>
asio::awaitable<void> session<Stream>::answer_busy()
{
    env_.dispatch.reply_error(out_, nullptr, errc::busy, "too many connections; try again later");
    set_deadline(linger_time);
    const bool sent = co_await flush_all();
    if (sent)
        co_await linger_close();
}

/// One turn: serve what is buffered, write, then read more, or say that input is awaited.
template <class Stream>
auto session<Stream>::turn() -> asio::awaitable<next_step>
{
    // A client that keeps the stream full never makes this session wait: give
    // every other connection its turn before taking more of its input.
    if (!waited_)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    waited_ = false;

    const bool need_more = co_await serve_buffered();
    if (phase_ == phase::broken || !flush_now())
        co_return next_step::stop;
    if (pending() > 0) {
        const bool more = co_await while_replies_wait(need_more);
        co_return more ? next_step::turn_again : next_step::stop;
    }
    if (phase_ == phase::closing) {
        co_await linger_close();
        co_return next_step::stop;
    }
    if (stopping())
        co_return next_step::stop;
    if (!need_more)
        co_return next_step::turn_again; // replies were flushed mid-batch: decode the rest
    if (!drained_) {
        // More may have arrived already (pipelining): read again before waiting.
        if (const auto got = read_now(); got != read_result::would_block)
            co_return got == read_result::got ? next_step::turn_again : next_step::stop;
    }
    co_return next_step::wait_for_input;
}

/// Decodes and serves every whole frame buffered; true when it needs more bytes.
template <class Stream>
asio::awaitable<bool> session<Stream>::serve_buffered()
{
    using event = protocol::decoder::event;
    while (phase_ == phase::serving && pending() < env_.cfg.limits.max_pending_reply_bytes) {
        switch (decoder_.next()) {
        case event::need_more:
            observe_batch();
            co_return true;
        case event::error: on_frame_error(); break;
        case event::header: co_await on_header(); break;
        case event::frame:
            env_.dispatch.serve(decoder_.header(), decoder_.body(), &context_, out_);
            end_request();
            observe_later(decoder_.header().operation);
            break;
        case event::body_chunk: co_await on_body_chunk(); break;
        case event::body_end: co_await on_body_end(); break;
        }
    }
    observe_batch();
    co_return false;
}

template <class Stream>
void session<Stream>::on_frame_error()
{
    if (!refused_proxy_frame())
        env_.dispatch.reply_error(out_, nullptr, decoder_.error(), frame_error_message(decoder_.error()));
    phase_ = phase::closing; // the stream cannot be resynchronised
}

template <class Stream>
asio::awaitable<void> session<Stream>::on_header()
{
    header_clock_ = false;
    framed_ = true;
    request_began_ = arrived_;
    const auto& request = decoder_.header();
    decoder_.set_body_length(protocol::request_body_length(request));
    const admission plan = env_.dispatch.admit(request, transport::tcp, env_.requests.draining(), &context_);
    const auto plan_op = request.operation; // `request` is the decoder's: awaiting below may move on
    switch (plan.action) {
    case admission::kind::refuse: refuse(request, plan.code, plan.message); break;
    case admission::kind::serve_now:
        env_.dispatch.serve(request, {}, &context_, out_);
        decoder_.skip_body();
        break;
    case admission::kind::buffer:
        if (!memory_admits(decoder_.body_remaining())) {
            refuse(request, errc::busy,
                   "too many bytes are buffered for all connections (limits.max_buffered_bytes); try again later");
            break;
        }
        decoder_.buffer_body();
        begin_request();
        co_return; // answered once the body is in (event::frame)
    case admission::kind::work: co_await serve_work(); break;
    case admission::kind::upload:
        co_await start_upload();
        if (upload_)
            co_return; // answered once the body is in (on_body_end) or breaks (on_body_chunk)
        break;
    case admission::kind::download: co_await serve_download(); break;
    }
    if (plan.action == admission::kind::refuse || plan.action == admission::kind::serve_now)
        observe_later(plan_op);
    else
        observe_request(plan_op);
}

/// The discard rule, for every refusal: a body small enough is read and
/// dropped so the connection stays usable; a larger one closes it after the reply.
template <class Stream>
void session<Stream>::discard_or_close(std::uint64_t body_left)
{
    if (body_left <= env_.cfg.limits.max_discard_bytes)
        decoder_.skip_body();
    else
        phase_ = phase::closing;
}

template <class Stream>
void session<Stream>::refuse(const protocol::request_header& request, errc code, std::string_view message)
{
    env_.dispatch.reply_error(out_, &request, code, message);
    discard_or_close(protocol::request_body_length(request));
}

template <class Stream>
void session<Stream>::account_memory()
{
    if (cut_)
        return;
    if (pending() == 0 && out_.capacity() > max_kept_buffer) {
        std::string().swap(out_);
        out_sent_ = 0;
    }
    if (decoder_.at_frame_boundary() && decoder_.capacity() > max_kept_buffer)
        decoder_.release_memory();
    // Capacities, not sizes: what the connection really holds.
    const std::size_t now = decoder_.capacity() + out_.capacity() + (upload_ ? upload_->up.held_bytes() : 0);
    env_.memory.update(held_, now);
    held_ = now;
    if (env_.memory.held() > env_.cfg.limits.max_buffered_bytes)
        env_.memory.relieve(0, nullptr);
}

template <class Stream>
bool session<Stream>::memory_admits(std::uint64_t body_length)
{
    // The body is gathered whole, then its reply (as large) is queued: both are
    // held at once. Room the buffers already have is counted already, and so
    // is what of the body (or past it) the read buffer holds.
    account_memory();
    const auto beyond = [](std::uint64_t need, std::uint64_t have) { return need > have ? need - have : 0; };
    const std::uint64_t body_in = std::max<std::uint64_t>(decoder_.buffered(), body_length);
    const std::uint64_t wanted = beyond(body_in, decoder_.capacity()) +
                                 beyond(pending() + body_length + echo_reply_header, out_.capacity());
    const auto fits = [&] { return env_.memory.held() + wanted <= env_.cfg.limits.max_buffered_bytes; };
    if (fits() || stopping())
        return fits();
    // A client pinning unread replies is cut before one that asks is refused.
    env_.memory.relieve(static_cast<std::size_t>(wanted), this);
    return fits();
}

template <class Stream>
bool session<Stream>::memory_admits_held(std::uint64_t bytes)
{
    account_memory();
    const auto fits = [&] { return env_.memory.held() + bytes <= env_.cfg.limits.max_buffered_bytes; };
    if (fits() || stopping())
        return fits();
    env_.memory.relieve(static_cast<std::size_t>(bytes), this);
    return fits();
}

template <class Stream>
void session<Stream>::cut_for_memory() noexcept
{
    env_.memory.update(held_, 0);
    held_ = 0;
    cut_ = true;
    stop();
}

template <class Stream>
void session<Stream>::begin_request()
{
    ++requests_open_;
    env_.requests.started();
}

template <class Stream>
void session<Stream>::end_request()
{
    --requests_open_;
    env_.requests.finished();
}

template <class Stream>
void session<Stream>::observe_request(std::optional<protocol::op> op)
{
    observe_batch(); // the earlier ones of the batch first, with their own end
    env_.timing.observe_request(op, clock::now() - request_began_);
}

template <class Stream>
void session<Stream>::observe_later(std::optional<protocol::op> op)
{
    served_now_.emplace_back(op, request_began_);
}

template <class Stream>
void session<Stream>::observe_batch()
{
    if (served_now_.empty())
        return;
    const auto now = clock::now();
    for (const auto& [op, began] : served_now_)
        env_.timing.observe_request(op, now - began);
    served_now_.clear();
}

/// Slow work off the loop; this connection waits (its replies stay in order)
/// while every other one is served.
template <class Stream>
asio::awaitable<void> session<Stream>::serve_work()
{
    const held_request request(decoder_.header());
    decoder_.skip_body();
    begin_request();
    clear_deadline();
    co_await env_.dispatch.serve_work(request.header(), context_, out_);
    end_request();
}

template <class Stream>
asio::awaitable<void> session<Stream>::start_upload()
{
    auto request = std::make_unique<held_request>(decoder_.header());
    if (env_.cfg.storage.backend == "s3" &&
        !memory_admits_held(std::min<std::uint64_t>(env_.cfg.s3.part_bytes, request->header().size))) {
        refuse(request->header(), errc::busy,
               "too many bytes are buffered for all uploads (limits.max_buffered_bytes); try again later");
        co_return;
    }
    begin_request();
    clear_deadline();
    auto up = co_await env_.dispatch.begin_upload(request->header(), context_, out_);
    if (!up) {
        end_request();
        discard_or_close(protocol::request_body_length(request->header()));
        co_return;
    }
    upload_.emplace(streaming_upload{std::move(request), std::move(up), clock::now()});
    decoder_.stream_body();
}

template <class Stream>
asio::awaitable<void> session<Stream>::on_body_chunk()
{
    if (!upload_)
        co_return;
    if (upload_->up.object) {
        std::optional<std::string> failure;
        try {
            co_await upload_->up.object->write(decoder_.body());
        } catch (const store_failure& e) {
            failure = e.what();
        }
        account_memory();
        if (failure) {
            auto failed = std::move(*upload_);
            upload_.reset();
            co_await env_.dispatch.fail_object_upload(failed.request->header(), std::move(failed.up.object),
                                                      *failure, out_);
            end_request();
            observe_request(protocol::op::upload);
            discard_or_close(decoder_.body_remaining());
        }
        co_return;
    }
    if (const auto ec = upload_->up.local->write(decoder_.body())) {
        auto failed = std::move(*upload_);
        upload_.reset();
        co_await env_.dispatch.fail_upload(failed.request->header(), std::move(failed.up), ec, out_);
        end_request();
        observe_request(protocol::op::upload);
        discard_or_close(decoder_.body_remaining());
    }
}

template <class Stream>
asio::awaitable<void> session<Stream>::on_body_end()
{
    if (!upload_)
        co_return;
    auto done = std::move(*upload_);
    upload_.reset();
    clear_deadline();
    const auto bytes = protocol::request_body_length(done.request->header());
    co_await env_.dispatch.finish_upload(done.request->header(), context_, std::move(done.up), done.started, out_);
    end_request();
    observe_request(protocol::op::upload);
    env_.timing.upload_bytes.observe(static_cast<double>(bytes));
    env_.timing.upload_seconds.observe(clock::now() - done.started);
}

template <class Stream>
asio::awaitable<void> session<Stream>::serve_download()
{
    const held_request request(decoder_.header());
    decoder_.skip_body();
    begin_request();
    clear_deadline();
    auto file = co_await env_.dispatch.begin_download(request.header(), context_, out_);
    if (file) {
        // The replies queued before it and its header go out first, then the bytes.
        set_deadline(seconds(env_.cfg.timeouts.body_s));
        const auto started = clock::now();
        bool sent = co_await flush_all();
        if (sent && file->stream)
            sent = co_await send_stream(*file->stream, file->count);
        else if (sent)
            sent = co_await send_file(file->fd.get(), file->offset, file->count);
        const auto took = clock::now() - started;
        env_.dispatch.end_download(request.header(), context_, *file, sent, std::chrono::duration<double>(took).count());
        if (sent) {
            env_.timing.download_bytes.observe(static_cast<double>(file->count));
            env_.timing.download_seconds.observe(took);
        }
        if (!sent)
            phase_ = phase::broken; // a transfer cut short: the stream cannot be followed
    }
    end_request();
}

template <class Stream>
asio::awaitable<bool> session<Stream>::send_file(int fd, std::uint64_t offset, std::uint64_t count)
{
    while (count > 0) {
        if (stopping())
            co_return false;
        set_deadline(seconds(env_.cfg.timeouts.body_s));
        const auto sent = stream_.send_file_now(fd, offset, count);
        if (sent.state == io_result::done) {
            count -= sent.bytes;
            env_.stats.bytes_out += sent.bytes;
            continue;
        }
        if (sent.state == io_result::closed) {
            if (sent.error && !stopping())
                env_.log.debug("sending a file failed: {}", sent.error.message());
            co_return false;
        }
        const auto [ec] = co_await stream_.wait_writable();
        if (ec)
            co_return false;
    }
    co_return true;
}

template <class Stream>
asio::awaitable<bool> session<Stream>::send_stream(s3::object_stream& body, std::uint64_t count)
{
    // One chunk from the store, then wait until the client has taken it: a
    // slow client slows the reads from the store and never grows memory.
    while (count > 0) {
        if (stopping())
            co_return false;
        set_deadline(seconds(env_.cfg.timeouts.body_s));
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(count, upload_read_chunk));
        const std::size_t at = out_.size();
        out_.resize(at + want);
        std::size_t got = 0;
        try {
            got = co_await body.read_some({out_.data() + at, want});
        } catch (const std::exception& e) {
            env_.log.warn("a download from the object store stopped: {}", e.what());
        }
        out_.resize(at + got);
        if (got == 0)
            co_return false; // the store ended early or failed: the client sees a cut transfer
        count -= got;
        const bool flushed = co_await flush_all();
        if (!flushed)
            co_return false;
    }
    co_return true;
}

/// Writes what the stream takes now; false when the connection broke.
template <class Stream>
bool session<Stream>::flush_now()
{
    while (pending() > 0) {
        const auto wrote = stream_.write_now({out_.data() + out_sent_, pending()});
        if (wrote.state == io_result::would_block)
            return true;
        if (wrote.state == io_result::closed) {
            if (!stopping())
                env_.log.debug("write failed: {}", wrote.error.message());
            return false;
        }
        out_sent_ += wrote.bytes;
        env_.stats.bytes_out += wrote.bytes;
    }
    out_.clear();
    out_sent_ = 0;
    return true;
}

/// Writes everything queued, waiting for the client under the deadline already set.
template <class Stream>
asio::awaitable<bool> session<Stream>::flush_all()
{
    for (;;) {
        if (!flush_now())
            co_return false;
        if (pending() == 0)
            co_return true;
        const auto [ec] = co_await stream_.wait_writable();
        if (ec)
            co_return false;
    }
}

/// Reads what the stream holds now, without waiting.
template <class Stream>
auto session<Stream>::read_now() -> read_result
{
    // A body gathered whole gets room for all of it (bounded by the echo limit at admission).
    std::size_t wanted = read_chunk_;
    if (upload_)
        wanted = upload_read_chunk;
    else if (decoder_.buffering_body())
        wanted = std::max<std::size_t>(read_chunk_, decoder_.body_remaining() -
                                                        std::min<std::uint64_t>(decoder_.body_remaining(), decoder_.buffered()));
    const bool between_frames = decoder_.at_frame_boundary();
    const auto space = decoder_.prepare(wanted);
    const auto got = stream_.read_now(space);
    if (got.state == io_result::would_block) {
        drained_ = true;
        return read_result::would_block;
    }
    if (got.state == io_result::closed) {
        if (got.error && !stopping())
            env_.log.debug("read failed: {}", got.error.message());
        return read_result::closed;
    }
    decoder_.commit(got.bytes);
    env_.stats.bytes_in += got.bytes;
    drained_ = got.bytes < space.size();
    if (!drained_)
        read_chunk_ = std::min(read_chunk_ * 2, max_read_chunk);
    arrived_ = clock::now();
    if (between_frames) {
        header_clock_ = true;
        header_started_ = arrived_;
    }
    return read_result::got;
}

/// Replies are queued but the client is not reading as fast as it asks: keep
/// serving what is buffered, read more, and wait only when there is nothing new.
template <class Stream>
asio::awaitable<bool> session<Stream>::while_replies_wait(bool need_more)
{
    if (pending() >= env_.cfg.limits.max_pending_reply_bytes) {
        ++env_.stats.connections_cut_unread;
        env_.log.info("connection from {} cut: {} reply bytes left unread (limits.max_pending_reply_bytes)",
                      context_.peer_address, pending());
        co_return false;
    }
    if (stopping())
        co_return false;
    if (!need_more && phase_ == phase::serving)
        co_return true; // more whole frames are buffered: serve them while the replies wait
    const auto got = phase_ == phase::closing ? read_result::would_block : read_now();
    if (got == read_result::closed)
        phase_ = phase::closing; // the client stopped sending; it may still read
    if (got == read_result::got)
        co_return true;
    account_memory(); // what it leaves unread counts while it waits
    if (stopping())
        co_return false; // cut: its share is released, it must not wait
    set_deadline(seconds(env_.cfg.timeouts.body_s));
    const auto [ec] = co_await stream_.wait_writable();
    waited_ = true;
    if (ec && expired() && !stopping())
        ++env_.stats.timeouts;
    co_return !ec;
}

/// Before waiting for more bytes: the deadline that fits where the frame is.
template <class Stream>
void session<Stream>::prepare_input_wait()
{
    if (decoder_.at_frame_boundary()) {
        set_deadline(seconds(env_.cfg.timeouts.idle_s));
        park();
        read_chunk_ = min_read_chunk; // a busy burst is over
    } else if (decoder_.in_header()) {
        if (!header_clock_) {
            header_clock_ = true;
            header_started_ = clock::now();
        }
        set_deadline_at(header_started_ + seconds(env_.cfg.timeouts.header_s));
    } else {
        set_deadline(seconds(env_.cfg.timeouts.body_s));
    }
}

/// The wait for input is over: read what came, or handle its timeout. False: the connection ends.
template <class Stream>
bool session<Stream>::input_wait_ended(const boost::system::error_code& ec)
{
    waited_ = true;
    unpark();
    if (!ec)
        return read_now() != read_result::closed;
    if (!expired() || stopping())
        return false;
    ++env_.stats.timeouts;
    if (!decoder_.at_frame_boundary()) {
        env_.log.debug("connection from {} timed out mid-frame", context_.peer_address);
        return false;
    }
    env_.dispatch.reply_error(out_, nullptr, errc::timeout, "idle for longer than timeouts.idle_s");
    phase_ = phase::closing; // flush the timeout reply, then linger and close
    return true;
}

/// Half-closes and reads what the client still sends, so it reads our last
/// reply instead of a reset.
template <class Stream>
asio::awaitable<void> session<Stream>::linger_close()
{
    if (!stream_.shutdown_send())
        co_return;
    set_deadline(linger_time);
    std::array<char, 2048> sink{};
    std::uint64_t discarded = 0;
    while (!stopping() && discarded <= env_.cfg.limits.max_discard_bytes) {
        const auto got = stream_.read_now(sink);
        if (got.state == io_result::closed)
            break;
        if (got.state == io_result::would_block) {
            const auto [ec] = co_await stream_.wait_readable();
            if (ec)
                break;
            continue;
        }
        discarded += got.bytes;
        env_.stats.bytes_in += got.bytes;
    }
}

/// The one way out, whatever ended the connection.
template <class Stream>
asio::awaitable<void> session<Stream>::leave()
{
    env_.memory.update(held_, 0); // the memory goes with the session
    held_ = 0;
    cut_ = true;
    if (upload_) {
        // The body stopped mid-way: what arrived stays as a resumable partial.
        auto cut = std::move(*upload_);
        upload_.reset();
        co_await env_.dispatch.keep_partial(std::move(cut.up));
    }
    while (requests_open_ > 0)
        end_request(); // cut off mid-request, or ended by an internal error
    stream_.close();
}

template <class Stream>
std::size_t session<Stream>::release_idle_memory() noexcept
{
    std::size_t released = decoder_.capacity();
    decoder_.release_memory();
    if (out_.capacity() > std::string().capacity()) {
        released += out_.capacity();
        std::string().swap(out_);
    }
    if (!cut_) {
        const std::size_t now = decoder_.capacity() + out_.capacity();
        env_.memory.update(held_, now);
        held_ = now;
    }
    return released;
}

template class session<plain_stream>;
template class session<tls_stream>;

} // namespace fxd::daemon
