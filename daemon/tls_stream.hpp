#pragma once
/// TLS over a TCP connection, as a session drives it: the same members as
/// plain_stream. OpenSSL runs on the non-blocking socket itself, so an
/// attempt that would block says so and the session waits for readiness,
/// exactly as over plain TCP: replies keep flowing while requests are read,
/// and an idle connection holds no buffer (SSL_MODE_RELEASE_BUFFERS).
/// Asio's ssl::stream is not used because its synchronous calls cannot run on
/// a non-blocking socket without losing a partly written record, and its
/// asynchronous reads hold a buffer for as long as a connection is idle.

#include "plain_stream.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

struct ssl_st;
struct ssl_ctx_st;

namespace fxd::daemon {

struct config;

/// The server's TLS settings: certificate chain, key, optional client CA and
/// protocol floor. Immutable once made; a reload makes a new one, which new
/// connections use while open ones keep theirs.
class tls_settings {
public:
    /// Loads the files named by cfg.tls. Throws std::runtime_error naming the
    /// file and OpenSSL's reason when one does not load.
    explicit tls_settings(const config& cfg);
    ~tls_settings();
    tls_settings(const tls_settings&) = delete;
    tls_settings& operator=(const tls_settings&) = delete;

    ssl_ctx_st* native() const noexcept { return ctx_; }
    bool requires_client_certificate() const noexcept { return client_ca_; }

private:
    ssl_ctx_st* ctx_ = nullptr;
    bool client_ca_ = false;
};

class tls_stream {
public:
    static constexpr bool encrypted = true;

    /// Throws std::runtime_error when OpenSSL cannot make the connection state.
    tls_stream(boost::asio::ip::tcp::socket socket, std::shared_ptr<const tls_settings> settings);

    /// The handshake. On failure, failure() says why.
    boost::asio::awaitable<boost::system::error_code> start();
    std::string failure() const { return failure_; }
    /// The verified client certificate's subject (RFC 2253), or empty.
    std::string peer_subject() const;

    io_attempt read_now(std::span<char> into);
    io_attempt write_now(std::span<const char> from);
    /// Reads a piece of the file and encrypts it: sendfile cannot go through TLS.
    io_attempt send_file_now(int fd, std::uint64_t& offset, std::uint64_t count);

    boost::asio::awaitable<wait_result> wait_readable();
    boost::asio::awaitable<wait_result> wait_writable() { return socket_.wait(write_wants_read_); }

    /// Sends the TLS close, then ends our sending side.
    bool shutdown_send() noexcept;
    void cancel() noexcept { socket_.cancel(); }
    /// The socket itself, for what comes before the stream starts (a PROXY header).
    stream_socket& socket() noexcept { return socket_; }
    void close() noexcept { socket_.close(); }

private:
    struct ssl_free {
        void operator()(ssl_st* ssl) const noexcept;
    };
    /// Maps a failed OpenSSL call to would_block (recording which readiness
    /// it waits for) or closed.
    io_attempt after_failure(int ret, bool reading);

    stream_socket socket_;
    std::shared_ptr<const tls_settings> settings_;
    std::unique_ptr<ssl_st, ssl_free> ssl_;
    bool read_wants_write_ = false; ///< the last read needs the socket writable first
    bool write_wants_read_ = false; ///< the last write needs the socket readable first
    std::string failure_;
};

} // namespace fxd::daemon
