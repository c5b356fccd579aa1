#pragma once
/// One TCP connection: read what the stream holds, decode every whole frame
/// in it, serve each request by its admission, queue the replies and write
/// them in one go, repeat. Generic over its stream (plain_stream today; a TLS
/// stream offers the same members).

#include "connection.hpp"
#include "dispatcher.hpp"
#include "held_request.hpp"
#include "metrics.hpp"

#include <fxd/protocol/decoder.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace spdlog {
class logger;
}

namespace fxd::daemon {

/// What every session shares with its server.
struct session_env {
    const config& cfg;   ///< the server's live config (reload replaces its contents)
    dispatcher& dispatch;
    services::counters& stats;
    spdlog::logger& log;
    request_gate& requests;
    memory_budget& memory; ///< limits.max_buffered_bytes, over every connection
    timings& timing;       ///< the histograms of /metrics
    /// A trusted balancer's PROXY header named the client: counts the
    /// connection under it (limits.max_connections_per_address); false when
    /// that client has no room left, and the session answers busy.
    std::function<bool(connection&)> admit_client;
};

template <class Stream>
class session final : public connection {
public:
    /// proxied: the peer is in proxy.trusted, so the connection starts with a PROXY header.
    session(Stream stream, boost::asio::ip::address peer, bool proxied, session_env& env);

    /// Serves the connection until it ends; never throws.
    boost::asio::awaitable<void> run();
    /// Tells the client busy (too many connections) and closes; never throws.
    boost::asio::awaitable<void> refuse_busy();

    void cancel_io() noexcept override { stream_.cancel(); }
    std::size_t release_idle_memory() noexcept override;
    std::size_t unread_bytes() const noexcept override { return pending(); }
    void cut_for_memory() noexcept override;

private:
    enum class phase {
        serving,
        closing, ///< a reply ends the connection: flush what is queued, linger, close
        broken,  ///< the stream can no longer be followed: close now
    };
    enum class read_result { got, would_block, closed };
    /// What run() does after a turn. The wait for input is run()'s own, so an
    /// idle connection holds only run()'s coroutine frame and the wait.
    enum class next_step { turn_again, wait_for_input, stop };
    struct streaming_upload {
        std::unique_ptr<held_request> request;
        upload_handle up;
        clock::time_point started;
    };

    boost::asio::awaitable<bool> start();
    /// A trusted peer's PROXY header; false: the connection closes (counted, logged).
    boost::asio::awaitable<bool> take_proxy();
    /// On the TLS port, from a peer not trusted: true when it sent a PROXY header (refused, counted, logged).
    boost::asio::awaitable<bool> refused_proxy_before_tls();
    /// The frame error at the very start is a PROXY header from a peer not trusted: say so.
    bool refused_proxy_frame();
    void set_client(const boost::asio::ip::address& client);
    boost::asio::awaitable<void> answer_busy();
    boost::asio::awaitable<next_step> turn();
    boost::asio::awaitable<bool> serve_buffered();
    boost::asio::awaitable<void> on_header();
    void on_frame_error();
    boost::asio::awaitable<void> on_body_chunk();
    boost::asio::awaitable<void> on_body_end();
    boost::asio::awaitable<void> serve_work();
    boost::asio::awaitable<void> start_upload();
    boost::asio::awaitable<void> serve_download();
    boost::asio::awaitable<bool> send_file(int fd, std::uint64_t offset, std::uint64_t count);
    /// A download's bytes from the object store, a chunk at a time.
    boost::asio::awaitable<bool> send_stream(s3::object_stream& body, std::uint64_t count);
    /// False when `bytes` more (an object upload's part buffer) would pass limits.max_buffered_bytes.
    bool memory_admits_held(std::uint64_t bytes);

    void refuse(const protocol::request_header& request, protocol::errc code, std::string_view message);
    void discard_or_close(std::uint64_t body_left);
    void begin_request();
    void end_request();
    /// The request whose header came last is answered: its duration goes to /metrics.
    /// A request that awaited (worker, store, transfer): its duration now.
    void observe_request(std::optional<protocol::op> op);
    /// A request served on the spot: timed with the others of its batch, at
    /// the batch's end (one clock read per batch, not two per request).
    void observe_later(std::optional<protocol::op> op);
    void observe_batch();
    /// Reports this connection's share of the memory budget; when the total
    /// has passed limits.max_buffered_bytes, has the server relieve it.
    void account_memory();
    /// A body to gather whole (echo): admitted only if it and its reply fit the budget.
    bool memory_admits(std::uint64_t body_length);

    std::size_t pending() const noexcept { return out_.size() - out_sent_; }
    bool flush_now();
    boost::asio::awaitable<bool> flush_all();
    read_result read_now();
    boost::asio::awaitable<bool> while_replies_wait(bool need_more);
    void prepare_input_wait();
    bool input_wait_ended(const boost::system::error_code& ec);
    boost::asio::awaitable<void> linger_close();
    boost::asio::awaitable<void> leave();

    Stream stream_;
    session_env& env_;
    protocol::decoder decoder_;
    std::string out_;         ///< replies queued for the client
    std::size_t out_sent_ = 0; ///< of which the stream already took this many
    session_context context_;
    const bool proxied_;
    bool named_client_ = false; ///< a PROXY header named the client (not LOCAL or UNKNOWN)
    bool framed_ = false;       ///< a frame's header was read: a PROXY header is no longer expected
    phase phase_ = phase::serving;
    std::size_t requests_open_ = 0; ///< admitted and not yet answered (each also counts in the gate)
    std::optional<streaming_upload> upload_;
    clock::time_point header_started_; ///< timeouts.header_s runs from a frame's first byte
    clock::time_point request_began_;  ///< the current request's bytes arrived (its duration histogram)
    /// When the last read brought bytes (set at start too: bytes may come
    /// before the first read_now, a PROXY header's leftovers).
    clock::time_point arrived_ = clock::now();
    /// Requests served on the spot in this batch, for observe_batch().
    std::vector<std::pair<std::optional<protocol::op>, clock::time_point>> served_now_;
    bool header_clock_ = false;
    /// The last read found the stream empty: the next step is a wait. After a
    /// full read another read is tried first (pipelined bytes are likely there).
    bool drained_ = false;
    bool waited_ = true; ///< the last turn ended in a wait (or this one just began)
    std::size_t read_chunk_;
    /// Bytes counted in env_.memory for this connection: gathered body and unread replies.
    std::size_t held_ = 0;
    bool cut_ = false; ///< cut by the memory bound: its share is already released
};

} // namespace fxd::daemon
