#pragma once
/// fxd::client: a blocking client for the fxd protocol, shared by fxc, the
/// integration tests and the benchmark tool. Every call has a deadline.

#include <fxd/util/unique_fd.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fxd::client {

using namespace std::chrono_literals;

/// Could not connect, or the connection broke or timed out.
class connection_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What answered is not an fxd server (an HTTP server, say): its first reply
/// is not a frame. what() says so, naming the protocol when it is recognised.
class not_fxd_error : public connection_error {
public:
    using connection_error::connection_error;
};

/// The caller stopped a call (fxc's shell on Ctrl-C, from a progress
/// callback): the connection is left out of step, so the session drops it and
/// the next call reconnects. An upload cut short this way is a partial the
/// server keeps; a download's .part stays: both resume.
class cancelled_error : public connection_error {
public:
    using connection_error::connection_error;
};

/// A TLS handshake, certificate check or TLS record failed; what() names the
/// reason, e.g. "TLS: certificate verify failed: self-signed certificate".
class tls_error : public connection_error {
public:
    using connection_error::connection_error;
};

/// How to speak TLS on a connection. The server's certificate is always
/// verified: against ca_file, or the system's store when it is empty.
struct tls_options {
    bool enabled = false;
    std::string ca_file;     ///< PEM bundle of trusted CAs; empty: the system store
    std::string cert_file;   ///< client certificate (PEM, chain allowed) for mutual TLS; needs key_file
    std::string key_file;    ///< its private key (PEM)
    std::string server_name; ///< name (or IP) the certificate must carry, sent as SNI; empty: the host connected to
};

struct reply {
    boost::json::object header;
    std::string body;

    bool ok() const;
    /// The error code ("" for an ok reply).
    std::string code() const;
};

namespace detail {
struct io_step;
}

/// A TCP connection speaking frames, in the clear or inside TLS.
class connection {
public:
    /// Connects to host:port (numeric address or name) within the timeout.
    /// source_address, when given, is the local address to connect from (e.g. 127.0.0.2).
    connection(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout = 5s,
               const std::string& source_address = {});
    /// Connects, then (when tls.enabled) completes a TLS handshake, each wait
    /// within the timeout; a failed one throws tls_error saying why.
    connection(const std::string& host, std::uint16_t port, const tls_options& tls,
               std::chrono::milliseconds timeout = 5s, const std::string& source_address = {});
    ~connection();
    connection(connection&&) noexcept;
    connection& operator=(connection&&) noexcept;

    void set_timeout(std::chrono::milliseconds t) noexcept { timeout_ = t; }

    /// Sends one request; header gets "size" set from the body.
    void send(boost::json::object header, std::span<const char> body = {});
    void send(boost::json::object header, std::string_view body) { send(std::move(header), std::span(body.data(), body.size())); }
    /// Reads one whole reply (header and body).
    reply receive();
    /// send() then receive().
    reply call(boost::json::object header, std::string_view body = {});

    /// Sends only a request's prefix and header with "size" set to `size`;
    /// the caller then sends the body (send_raw() or send_file()): `size`
    /// bytes, or for a resumed upload, whose `size` is the whole file's,
    /// `size` - `offset` bytes.
    void send_header(boost::json::object header, std::uint64_t size);
    /// Sends n bytes of the open file fd from offset as (part of) a body;
    /// on_chunk sees each piece once it is on its way. Returns false, with
    /// the rest unsent, when the server starts answering first (it refused
    /// the request, or failed while storing it): receive the reply then, and
    /// treat the connection as finished, since the body was cut short.
    bool send_file(int fd, std::uint64_t offset, std::uint64_t n,
                   const std::function<void(std::span<const char>)>& on_chunk = {});
    /// Reads one reply's header only, and not a byte further; body left unread,
    /// reply.body empty. A broken header throws connection_error saying why.
    reply receive_header();
    /// Reads n body bytes in pieces, handing each to on_chunk.
    void receive_body(std::uint64_t n, const std::function<void(std::span<const char>)>& on_chunk);

    /// Raw bytes, for tests of malformed frames.
    void send_raw(std::string_view bytes);
    /// Reads exactly n bytes.
    std::string receive_exact(std::size_t n);
    /// True when the server closed the connection (reads EOF) within the timeout.
    bool closed_by_peer();
    /// Half-closes the sending side (after a TLS close_notify over TLS).
    void shutdown_send();

    /// The socket; over TLS, bytes written to it directly break the TLS stream.
    int native_handle() const noexcept { return fd_.get(); }
    std::chrono::milliseconds timeout() const noexcept { return timeout_; }
    /// The TLS version negotiated ("TLSv1.3"), or "" on a plain connection.
    std::string tls_version() const;

private:
    struct tls_state; // OpenSSL's objects, kept out of this header

    void handshake(const std::string& host, const tls_options& tls);
    /// Waits for events within the timeout; returns the events that fired.
    short wait(short events);
    /// Reads what is there (at least one byte, waiting within the timeout);
    /// 0 when the server closed the connection.
    std::size_t read_some(std::span<char> into);
    /// One non-blocking write attempt.
    detail::io_step write_step(std::span<const char> bytes);
    /// Writes at least one byte, waiting within the timeout; 0 when the
    /// server closed or reset the connection (reading may still show why).
    std::size_t write_some(std::span<const char> bytes);
    /// True when a reply has begun to arrive (or the server closed), without waiting or consuming it.
    bool reply_started();
    /// Reads at least one byte into `into` (waiting within the timeout); the
    /// server closing first fails with closed_message.
    std::size_t receive_some(std::span<char> into, const char* closed_message);
    util::unique_fd fd_;
    std::unique_ptr<tls_state> tls_; // after fd_: destroyed before the socket closes
    std::chrono::milliseconds timeout_;
};

/// One UDP request and its reply; nullopt when nothing came back within the timeout.
std::optional<std::string> udp_exchange(const std::string& host, std::uint16_t port, std::string_view datagram,
                                        std::chrono::milliseconds timeout = 2s);

/// Builds a datagram or TCP frame from a header object and body ("size" is set).
std::string make_frame(boost::json::object header, std::string_view body = {});

/// Splits a datagram into its reply (protocol::decode_reply); throws
/// connection_error, saying what is wrong, when it is not one whole reply frame.
reply parse_frame(std::string_view frame);

/// One request over UDP (header and body in one datagram) and its reply;
/// throws connection_error when nothing valid comes back within the timeout.
reply udp_call(const std::string& host, std::uint16_t port, boost::json::object header, std::string_view body = {},
               std::chrono::milliseconds timeout = 2s);

} // namespace fxd::client
