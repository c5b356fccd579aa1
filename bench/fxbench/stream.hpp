#pragma once
/// One connection's byte stream for the fxbench loops: plain TCP (recv/send)
/// or TLS through OpenSSL on the same non-blocking socket. A TLS operation
/// may need the socket readable when writing, or writable when reading
/// (handshake, key updates), so each call says which readiness to wait for
/// instead of failing. OpenSSL's types are only named here; its headers stay
/// in stream.cpp.

#include <fxd/util/net.hpp>
#include <fxd/util/unique_fd.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ssl_st;
struct ssl_ctx_st;

namespace fxd::bench {

/// What a non-blocking stream operation came to.
enum class io {
    ok,         ///< done (read/write: some bytes moved)
    want_read,  ///< retry when the socket is readable
    want_write, ///< retry when the socket is writable
    closed,     ///< the peer closed the connection (read only)
};

/// The client side of TLS shared by every connection of a run: TLS 1.2 or
/// 1.3, no session reuse (every handshake is a full one). Without a CA file
/// the server's certificate is not verified, which is fine for measuring.
class tls_client {
public:
    /// cafile empty: no verification; otherwise the certificate must chain to
    /// it and name host (a DNS name or an IP address). Throws bench_error.
    tls_client(std::string cafile, std::string host);
    ~tls_client();
    tls_client(const tls_client&) = delete;
    tls_client& operator=(const tls_client&) = delete;

    bool verifies() const noexcept { return !cafile_.empty(); }
    const std::string& host() const noexcept { return host_; }
    ssl_ctx_st* native() const noexcept { return ctx_; }

private:
    ssl_ctx_st* ctx_ = nullptr;
    std::string cafile_;
    std::string host_;
};

class stream {
public:
    stream() = default;
    /// Takes a connected non-blocking socket; with tls, a TLS client on it
    /// whose handshake() has still to be driven to io::ok.
    stream(util::unique_fd fd, const tls_client* tls);
    stream(stream&&) noexcept = default;
    stream& operator=(stream&&) noexcept = default;
    ~stream();

    int fd() const noexcept { return fd_.get(); }
    bool is_tls() const noexcept { return ssl_ != nullptr; }

    /// Advances the TLS handshake (io::ok at once for plain TCP). Throws
    /// bench_error when it fails, naming OpenSSL's reason.
    io handshake();
    /// Reads up to len bytes into p; got is set when io::ok. Throws bench_error.
    io read(char* p, std::size_t len, std::size_t& got);
    /// Writes up to len bytes from p; put is set when io::ok. After
    /// want_read/want_write, retry with the same bytes (or more of them).
    io write(const char* p, std::size_t len, std::size_t& put);
    /// Decrypted bytes OpenSSL holds that a read would return without
    /// touching the socket: epoll cannot report these.
    bool pending() const noexcept;
    /// Sends a TLS close_notify when it fits in the socket now (best effort:
    /// the socket is closed right after anyway).
    void close_notify() noexcept;

    /// Blocking helpers for set-up steps (poll until deadline, a now_ns() time).
    void finish_handshake(std::int64_t deadline);
    void write_all(std::string_view bytes, std::int64_t deadline);
    /// Waits until the socket is ready for what io asks.
    void wait(io what, std::int64_t deadline) const;

private:
    struct ssl_free {
        void operator()(ssl_st* s) const noexcept;
    };
    util::unique_fd fd_;
    std::unique_ptr<ssl_st, ssl_free> ssl_;
};

/// Opens n connections (connect_many), then with tls drives every TLS
/// handshake at once in one epoll loop, all within timeout_s. Throws
/// connect_error or bench_error.
std::vector<stream> open_streams(const util::endpoint& ep, int n, double timeout_s, const tls_client* tls);

} // namespace fxd::bench
