#include <fxd/client/client.hpp>

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/reply.hpp>
#include <fxd/util/net.hpp>

#include <boost/json/serialize.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

namespace fxd::client {

namespace detail {

/// What a non-blocking read or write step achieved: bytes moved, or the
/// events to wait for before trying again, or the end of the connection.
struct io_step {
    std::size_t bytes = 0;
    short wait_for = 0;
    bool closed = false;
};

} // namespace detail

namespace {

[[noreturn]] void fail(const std::string& what)
{
    throw connection_error(what);
}

[[noreturn]] void tls_fail(const std::string& what)
{
    throw tls_error(what);
}

/// The reason OpenSSL queued for the call that just failed ("unknown
/// error" when it queued none); empties the queue.
std::string openssl_reason()
{
    const unsigned long code = ERR_peek_error();
    const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
    ERR_clear_error();
    return reason ? reason : "unknown error";
}

/// OpenSSL writes to the socket with write(), which raises SIGPIPE when the
/// server has gone; that would kill the program. This blocks SIGPIPE for the
/// calling thread while it lives, and swallows one raised meanwhile, so the
/// write fails with EPIPE instead (the way plain sends use MSG_NOSIGNAL).
/// Held around every TLS write: handshake, send_raw, send_file, close_notify.
/// (Reads write only for renegotiation or key updates, which fxd never asks for.)
class sigpipe_blocked {
public:
    sigpipe_blocked()
    {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~sigpipe_blocked()
    {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
            const timespec now{};
            sigtimedwait(&pipe_, nullptr, &now);
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    sigpipe_blocked(const sigpipe_blocked&) = delete;
    sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

private:
    sigset_t pipe_{};
    sigset_t old_{};
    bool was_pending_ = false;
};

bool is_ip_address(const std::string& text)
{
    in6_addr any{};
    return ::inet_pton(AF_INET, text.c_str(), &any) == 1 || ::inet_pton(AF_INET6, text.c_str(), &any) == 1;
}

template <auto free_fn>
struct openssl_deleter {
    void operator()(auto* p) const noexcept { free_fn(p); }
};

using detail::io_step;

/// A reply that is no frame: when it starts like text, the peer speaks
/// another protocol (an HTTP server answers "HTTP/1.1 400 ..."), so say that
/// rather than quote a length read from its letters.
[[noreturn]] void not_a_frame(std::string_view start, const std::string& why)
{
    const bool text = start.size() >= 4 && std::all_of(start.begin(), start.begin() + 4, [](char c) {
        return c >= 0x20 && c < 0x7f;
    });
    if (start.starts_with("HTTP"))
        throw not_fxd_error("this is not an fxd server: it answered in HTTP");
    if (start.starts_with("SSH-"))
        throw not_fxd_error("this is not an fxd server: it answered in SSH");
    if (text)
        throw not_fxd_error("this is not an fxd server: it answered with text, not fxd's frames");
    fail(why);
}

std::vector<util::endpoint> resolve(const std::string& host, std::uint16_t port, int socktype)
{
    try {
        return util::resolve(host, port, socktype);
    } catch (const util::resolve_error& e) {
        fail(e.what());
    }
}

} // namespace

bool reply::ok() const
{
    const auto* status = header.if_contains("status");
    return status && status->is_string() && status->get_string() == "ok";
}

std::string reply::code() const
{
    const auto* code = header.if_contains("code");
    return code && code->is_string() ? std::string(code->get_string()) : std::string();
}

struct connection::tls_state {
    std::unique_ptr<SSL_CTX, openssl_deleter<SSL_CTX_free>> ctx;
    std::unique_ptr<SSL, openssl_deleter<SSL_free>> ssl;
    /// After a fatal error OpenSSL must not touch the stream again, not even to say goodbye.
    bool failed = false;
    /// Whether any application data came back yet: a server refusing the
    /// client's certificate (TLS 1.3) closes right after the handshake.
    bool received = false;

    /// Throws when the server closed before its first reply, saying what that likely means.
    void check_early_close() const
    {
        if (!received)
            tls_fail("TLS: the server closed the connection before its first reply "
                     "(does it want a client certificate it trusts?)");
    }

    /// Turns SSL_get_error's verdict on a failed call into a step, or throws.
    io_step step_after(int rc, const char* what)
    {
        const int saved_errno = errno;
        switch (SSL_get_error(ssl.get(), rc)) {
        case SSL_ERROR_WANT_READ:
            return {.wait_for = POLLIN};
        case SSL_ERROR_WANT_WRITE:
            return {.wait_for = POLLOUT};
        case SSL_ERROR_ZERO_RETURN:
            return {.closed = true};
        case SSL_ERROR_SYSCALL:
            if (saved_errno == EINTR)
                return {};
            failed = true;
            ERR_clear_error();
            if (saved_errno == 0 || saved_errno == EPIPE || saved_errno == ECONNRESET)
                return {.closed = true};
            fail(std::string(what) + ": " + std::strerror(saved_errno));
        default:
            failed = true;
            tls_fail("TLS: " + openssl_reason());
        }
    }
};

connection::connection(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                       const std::string& source_address)
    : connection(host, port, tls_options{}, timeout, source_address)
{
}

connection::connection(const std::string& host, std::uint16_t port, const tls_options& tls,
                       std::chrono::milliseconds timeout, const std::string& source_address)
    : timeout_(timeout)
{
    std::string last_error = "no address";
    for (const auto& ep : resolve(host, port, SOCK_STREAM)) {
        // fd_ holds each attempt's socket (wait() polls it); the next attempt's reset closes a failed one.
        fd_.reset(::socket(ep.family, ep.socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ep.protocol));
        if (!fd_)
            continue;
        if (!source_address.empty()) {
            const auto local = resolve(source_address, 0, SOCK_STREAM).front();
            if (::bind(fd_.get(), local.address(), local.length) != 0) {
                last_error = std::string("bind ") + source_address + ": " + std::strerror(errno);
                continue;
            }
        }
        if (::connect(fd_.get(), ep.address(), ep.length) != 0) {
            if (errno != EINPROGRESS) {
                last_error = std::strerror(errno);
                continue;
            }
            try {
                wait(POLLOUT);
            } catch (const connection_error& e) {
                last_error = e.what();
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                last_error = std::strerror(err);
                continue;
            }
        }
        const int one = 1;
        ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (tls.enabled)
            handshake(host, tls);
        return;
    }
    fail("cannot connect to " + host + ":" + std::to_string(port) + ": " + last_error);
}

connection::~connection()
{
    if (tls_ && !tls_->failed && fd_) {
        // A polite close_notify when the socket takes it at once; never waits.
        const sigpipe_blocked quiet;
        SSL_shutdown(tls_->ssl.get());
        ERR_clear_error();
    }
}

connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&&) noexcept = default;

void connection::handshake(const std::string& host, const tls_options& options)
{
    ERR_clear_error();
    auto state = std::make_unique<tls_state>();
    state->ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!state->ctx)
        tls_fail("TLS: cannot set up: " + openssl_reason());
    SSL_CTX* ctx = state->ctx.get();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // Frames carry their own lengths, so a close without close_notify cannot
    // truncate a reply unnoticed: treat it as the end of the stream.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Writes return after each record, so an upload can watch for an early reply between them.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (options.ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            tls_fail("TLS: cannot load the system's CA store: " + openssl_reason());
    } else if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
        tls_fail("TLS: cannot load CA file " + options.ca_file + ": " + openssl_reason());
    }
    if (options.cert_file.empty() != options.key_file.empty())
        tls_fail("TLS: a client certificate needs both a certificate file and a key file");
    if (!options.cert_file.empty()) {
        // An encrypted key would make OpenSSL prompt on the terminal in the middle of a call: refuse it instead.
        SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
        if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1)
            tls_fail("TLS: cannot load client certificate " + options.cert_file + ": " + openssl_reason());
        if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
            tls_fail("TLS: cannot load client key " + options.key_file + ": " + openssl_reason());
        if (SSL_CTX_check_private_key(ctx) != 1)
            tls_fail("TLS: client key " + options.key_file + " does not match certificate " + options.cert_file);
    }

    state->ssl.reset(SSL_new(ctx));
    if (!state->ssl || SSL_set_fd(state->ssl.get(), fd_.get()) != 1)
        tls_fail("TLS: cannot set up: " + openssl_reason());
    SSL* ssl = state->ssl.get();
    const std::string& name = options.server_name.empty() ? host : options.server_name;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (is_ip_address(name)) {
        // SNI carries host names only; an address is checked against the certificate's IP entries.
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1)
            tls_fail("TLS: bad server address " + name);
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1 ||
            SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
            tls_fail("TLS: bad server name " + name);
    }

    const sigpipe_blocked quiet;
    for (;;) {
        ERR_clear_error();
        const int rc = SSL_connect(ssl);
        if (rc == 1)
            break;
        const int err = SSL_get_error(ssl, rc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
            continue;
        }
        if (const long verdict = SSL_get_verify_result(ssl); verdict != X509_V_OK) {
            ERR_clear_error();
            tls_fail(std::string("TLS: certificate verify failed: ") + X509_verify_cert_error_string(verdict));
        }
        if (err == SSL_ERROR_SYSCALL && errno == EINTR)
            continue;
        if (err == SSL_ERROR_SYSCALL) {
            const int saved_errno = errno;
            ERR_clear_error();
            tls_fail(std::string("TLS: handshake failed: ") +
                     (saved_errno == 0 ? "the server closed the connection" : std::strerror(saved_errno)));
        }
        tls_fail("TLS: handshake failed: " + openssl_reason());
    }
    tls_ = std::move(state);
}

std::string connection::tls_version() const
{
    return tls_ ? SSL_get_version(tls_->ssl.get()) : "";
}

short connection::wait(short events)
{
    pollfd p{fd_.get(), events, 0};
    for (;;) {
        const int rc = ::poll(&p, 1, static_cast<int>(timeout_.count()));
        if (rc > 0)
            return p.revents;
        if (rc == 0)
            fail("timed out after " + std::to_string(timeout_.count()) + " ms");
        if (errno != EINTR)
            fail(std::string("poll: ") + std::strerror(errno));
    }
}

namespace {

io_step plain_read(int fd, std::span<char> into)
{
    const ssize_t r = ::recv(fd, into.data(), into.size(), 0);
    if (r > 0)
        return {.bytes = static_cast<std::size_t>(r)};
    if (r == 0 || errno == ECONNRESET)
        return {.closed = true};
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return {.wait_for = POLLIN};
    if (errno == EINTR)
        return {};
    fail(std::string("recv: ") + std::strerror(errno));
}

io_step plain_write(int fd, std::span<const char> bytes)
{
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0)
        return {.bytes = static_cast<std::size_t>(n)};
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return {.wait_for = POLLOUT};
    if (n < 0 && errno == EINTR)
        return {};
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
        return {.closed = true};
    fail(std::string("send: ") + std::strerror(errno));
}

} // namespace

std::size_t connection::read_some(std::span<char> into)
{
    for (;;) {
        io_step step;
        if (tls_) {
            ERR_clear_error();
            std::size_t n = 0;
            const int rc = SSL_read_ex(tls_->ssl.get(), into.data(), into.size(), &n);
            step = rc == 1 ? io_step{.bytes = n} : tls_->step_after(rc, "recv");
            tls_->received = tls_->received || step.bytes > 0;
        } else {
            step = plain_read(fd_.get(), into);
        }
        if (step.bytes > 0)
            return step.bytes;
        if (step.closed)
            return 0;
        if (step.wait_for != 0)
            wait(step.wait_for);
    }
}

io_step connection::write_step(std::span<const char> bytes)
{
    if (!tls_)
        return plain_write(fd_.get(), bytes);
    // The caller holds a sigpipe_blocked for the whole send: per record it would cost a sixth of the throughput.
    ERR_clear_error();
    std::size_t n = 0;
    const int rc = SSL_write_ex(tls_->ssl.get(), bytes.data(), bytes.size(), &n);
    return rc == 1 ? io_step{.bytes = n} : tls_->step_after(rc, "send");
}

std::size_t connection::write_some(std::span<const char> bytes)
{
    for (;;) {
        const io_step step = write_step(bytes);
        if (step.bytes > 0)
            return step.bytes;
        if (step.closed)
            return 0;
        if (step.wait_for != 0)
            wait(step.wait_for);
    }
}

bool connection::reply_started()
{
    if (tls_) {
        if (tls_->failed)
            return true;
        // Peeking processes whatever records arrived (TLS 1.3 session tickets
        // come unasked after the handshake) and reports application data only;
        // a TLS alert throws, saying why.
        ERR_clear_error();
        char byte = 0;
        std::size_t n = 0;
        const int rc = SSL_peek_ex(tls_->ssl.get(), &byte, 1, &n);
        return rc == 1 || tls_->step_after(rc, "recv").closed;
    }
    char byte = 0;
    const ssize_t r = ::recv(fd_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void connection::send_raw(std::string_view bytes)
{
    std::optional<sigpipe_blocked> quiet;
    if (tls_)
        quiet.emplace();
    while (!bytes.empty()) {
        const std::size_t n = write_some(bytes);
        if (n == 0 && tls_)
            tls_->check_early_close();
        if (n == 0)
            fail("send: the server closed the connection");
        bytes.remove_prefix(n);
    }
}

std::size_t connection::receive_some(std::span<char> into, const char* closed_message)
{
    const std::size_t n = read_some(into);
    if (n == 0 && tls_)
        tls_->check_early_close();
    if (n == 0)
        fail(closed_message);
    return n;
}

std::string connection::receive_exact(std::size_t n)
{
    std::string out(n, '\0');
    for (std::size_t got = 0; got < n;)
        got += receive_some({out.data() + got, n - got}, "connection closed by the server");
    return out;
}

bool connection::closed_by_peer()
{
    char byte = 0;
    try {
        return read_some({&byte, 1}) == 0;
    } catch (const connection_error&) {
        return tls_ && tls_->failed; // a TLS alert ends the stream too; a timeout does not
    }
}

void connection::shutdown_send()
{
    if (tls_ && !tls_->failed) {
        const sigpipe_blocked quiet;
        ERR_clear_error();
        SSL_shutdown(tls_->ssl.get());
        ERR_clear_error();
    }
    ::shutdown(fd_.get(), SHUT_WR);
}

std::string make_frame(boost::json::object header, std::string_view body)
{
    header["size"] = body.size();
    std::string out;
    protocol::append_request(out, boost::json::serialize(header), std::span(body.data(), body.size()));
    return out;
}

void connection::send(boost::json::object header, std::span<const char> body)
{
    send_raw(make_frame(std::move(header), std::string_view(body.data(), body.size())));
}

void connection::send_header(boost::json::object header, std::uint64_t size)
{
    header["size"] = size;
    std::string out;
    protocol::append_request(out, boost::json::serialize(header));
    send_raw(out);
}

bool connection::send_file(int file, std::uint64_t offset, std::uint64_t n,
                           const std::function<void(std::span<const char>)>& on_chunk)
{
    constexpr std::size_t chunk = 256 * 1024;
    const auto buf = std::make_unique_for_overwrite<char[]>(chunk);
    std::optional<sigpipe_blocked> quiet;
    if (tls_)
        quiet.emplace();
    while (n > 0) {
        const ssize_t got = ::pread(file, buf.get(), static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk)),
                                    static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            throw std::system_error(errno, std::generic_category(), "read");
        if (got == 0)
            throw std::runtime_error("the file became shorter while it was being sent");
        std::string_view piece(buf.get(), static_cast<std::size_t>(got));
        while (!piece.empty()) {
            // Watch for a reply too: the server answers a refused or failed
            // upload before the body ends, then stops reading. Over TLS,
            // bytes already decrypted are a reply that poll cannot see.
            if (tls_ && SSL_pending(tls_->ssl.get()) > 0)
                return false;
            const short ev = wait(POLLOUT | POLLIN);
            if ((ev & (POLLIN | POLLHUP | POLLERR)) && reply_started())
                return false;
            if (!(ev & POLLOUT))
                continue;
            // One step, never a wait: the poll above watches for a reply meanwhile.
            const io_step step = write_step(piece);
            if (step.closed)
                return false; // the reply, if any, is still readable
            piece.remove_prefix(step.bytes);
        }
        if (on_chunk)
            on_chunk(std::span<const char>(buf.get(), static_cast<std::size_t>(got)));
        offset += static_cast<std::uint64_t>(got);
        n -= static_cast<std::uint64_t>(got);
    }
    return true;
}

void connection::receive_body(std::uint64_t n, const std::function<void(std::span<const char>)>& on_chunk)
{
    constexpr std::size_t chunk = 256 * 1024;
    const auto buf = std::make_unique_for_overwrite<char[]>(chunk);
    while (n > 0) {
        const std::size_t got = receive_some({buf.get(), static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk))},
                                             "connection closed by the server in the middle of a body");
        n -= got;
        on_chunk(std::span<const char>(buf.get(), got));
    }
}

reply connection::receive_header()
{
    // Exact reads: nothing past the header leaves the socket, so the body can
    // then be read whole or streamed (receive_body) straight from it.
    protocol::reply_decoder decoder;
    std::string start; // the reply's first bytes, to say what answered when it is no frame
    try {
        while (decoder.next() == protocol::reply_decoder::event::need_more) {
            auto bytes = receive_exact(decoder.needed());
            if (start.size() < 16)
                start += bytes.substr(0, 16 - start.size());
            decoder.feed(bytes);
        }
    } catch (const protocol::reply_format_error& e) {
        not_a_frame(start, e.what());
    }
    return {decoder.header(), {}};
}

reply connection::receive()
{
    reply r = receive_header();
    r.body = receive_exact(static_cast<std::size_t>(r.header.at("size").to_number<std::uint64_t>()));
    return r;
}

reply connection::call(boost::json::object header, std::string_view body)
{
    send(std::move(header), body);
    return receive();
}

reply parse_frame(std::string_view frame)
{
    try {
        auto decoded = protocol::decode_reply(frame);
        return {std::move(decoded.header), std::string(decoded.body)};
    } catch (const protocol::reply_format_error& e) {
        not_a_frame(frame.substr(0, 16), e.what());
    }
}

std::optional<std::string> udp_exchange(const std::string& host, std::uint16_t port, std::string_view datagram,
                                        std::chrono::milliseconds timeout)
{
    const auto ep = resolve(host, port, SOCK_DGRAM).front();
    const util::unique_fd fd(::socket(ep.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd)
        fail(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd.get(), ep.address(), ep.length) != 0)
        fail(std::string("connect: ") + std::strerror(errno));
    if (::send(fd.get(), datagram.data(), datagram.size(), 0) < 0)
        fail(std::string("send: ") + std::strerror(errno));
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
        return std::nullopt;
    std::string buf(65536, '\0');
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0)
        return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

reply udp_call(const std::string& host, std::uint16_t port, boost::json::object header, std::string_view body,
               std::chrono::milliseconds timeout)
{
    const auto datagram = udp_exchange(host, port, make_frame(std::move(header), body), timeout);
    if (!datagram)
        fail("no reply over UDP from " + host + ":" + std::to_string(port) + " within " +
             std::to_string(timeout.count()) + " ms");
    return parse_frame(*datagram);
}

} // namespace fxd::client
