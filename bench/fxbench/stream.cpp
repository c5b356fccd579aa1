#include "stream.hpp"

#include "common.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace fxd::bench {

namespace {

/// OpenSSL's queued errors as one line (and the queue emptied).
std::string ssl_errors(std::string_view what)
{
    std::string out(what);
    for (unsigned long e = ::ERR_get_error(); e != 0; e = ::ERR_get_error()) {
        char buf[256];
        ::ERR_error_string_n(e, buf, sizeof buf);
        out += out.size() == what.size() ? ": " : "; ";
        out += buf;
    }
    return out;
}

/// Maps SSL_get_error onto io; throws on a real failure.
io classify(ssl_st* ssl, int ret, std::string_view what)
{
    switch (::SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return io::want_read;
    case SSL_ERROR_WANT_WRITE:
        return io::want_write;
    case SSL_ERROR_ZERO_RETURN:
        return io::closed;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
            return io::closed;
        throw bench_error(std::string(what) + ": " + std::strerror(errno));
    default:
        throw bench_error(ssl_errors(what));
    }
}

} // namespace

tls_client::tls_client(std::string cafile, std::string host) : cafile_(std::move(cafile)), host_(std::move(host))
{
    ctx_ = ::SSL_CTX_new(::TLS_client_method());
    if (!ctx_)
        throw bench_error(ssl_errors("SSL_CTX_new"));
    ::SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    // A peer closing without close_notify is a plain end of stream here.
    ::SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Retrying a write with a longer or moved buffer is allowed (upload refills its chunk).
    ::SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    ::SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    if (cafile_.empty()) {
        ::SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    } else {
        if (::SSL_CTX_load_verify_locations(ctx_, cafile_.c_str(), nullptr) != 1) {
            const auto why = ssl_errors("cannot load the CA file " + cafile_);
            ::SSL_CTX_free(ctx_);
            throw bench_error(why);
        }
        ::SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
}

tls_client::~tls_client()
{
    ::SSL_CTX_free(ctx_);
}

void stream::ssl_free::operator()(ssl_st* s) const noexcept
{
    ::SSL_free(s);
}

stream::stream(util::unique_fd fd, const tls_client* tls) : fd_(std::move(fd))
{
    if (!tls)
        return;
    ssl_.reset(::SSL_new(tls->native()));
    if (!ssl_ || ::SSL_set_fd(ssl_.get(), fd_.get()) != 1)
        throw bench_error(ssl_errors("SSL_new"));
    if (tls->verifies()) {
        // An IP address is checked against the certificate's IP names, anything else as a DNS name.
        auto* param = ::SSL_get0_param(ssl_.get());
        if (::X509_VERIFY_PARAM_set1_ip_asc(param, tls->host().c_str()) != 1) {
            ::ERR_clear_error();
            ::SSL_set1_host(ssl_.get(), tls->host().c_str());
            ::SSL_set_tlsext_host_name(ssl_.get(), tls->host().c_str());
        }
    }
    ::SSL_set_connect_state(ssl_.get());
}

stream::~stream() = default;

io stream::handshake()
{
    if (!ssl_)
        return io::ok;
    ERR_clear_error();
    const int ret = ::SSL_connect(ssl_.get());
    if (ret == 1)
        return io::ok;
    // A refused certificate is told by its reason rather than OpenSSL's generic "verify failed".
    if (::SSL_get_error(ssl_.get(), ret) == SSL_ERROR_SSL && ::SSL_get_verify_result(ssl_.get()) != X509_V_OK)
        throw bench_error(std::string("TLS handshake: the server's certificate is refused: ") +
                          ::X509_verify_cert_error_string(::SSL_get_verify_result(ssl_.get())));
    const auto r = classify(ssl_.get(), ret, "TLS handshake");
    if (r == io::closed)
        throw bench_error("TLS handshake: the server closed the connection");
    return r;
}

io stream::read(char* p, std::size_t len, std::size_t& got)
{
    if (!ssl_) {
        const ssize_t n = ::recv(fd_.get(), p, len, 0);
        if (n > 0) {
            got = static_cast<std::size_t>(n);
            return io::ok;
        }
        if (n == 0)
            return io::closed;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return io::want_read;
        if (errno == ECONNRESET)
            return io::closed;
        throw bench_error(std::string("recv: ") + std::strerror(errno));
    }
    ERR_clear_error();
    if (::SSL_read_ex(ssl_.get(), p, len, &got) == 1)
        return io::ok;
    return classify(ssl_.get(), 0, "TLS read");
}

io stream::write(const char* p, std::size_t len, std::size_t& put)
{
    if (!ssl_) {
        const ssize_t n = ::send(fd_.get(), p, len, MSG_NOSIGNAL);
        if (n >= 0) {
            put = static_cast<std::size_t>(n);
            return io::ok;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return io::want_write;
        throw bench_error(std::string("send: ") + std::strerror(errno));
    }
    ERR_clear_error();
    if (::SSL_write_ex(ssl_.get(), p, len, &put) == 1)
        return io::ok;
    const auto r = classify(ssl_.get(), 0, "TLS write");
    if (r == io::closed)
        throw bench_error("TLS write: the server closed the connection");
    return r;
}

bool stream::pending() const noexcept
{
    return ssl_ && ::SSL_pending(ssl_.get()) > 0;
}

void stream::close_notify() noexcept
{
    if (ssl_) {
        ::SSL_shutdown(ssl_.get());
        ERR_clear_error();
    }
}

void stream::wait(io what, std::int64_t deadline) const
{
    pollfd p{};
    p.fd = fd_.get();
    p.events = what == io::want_write ? POLLOUT : POLLIN;
    while (true) {
        const auto left_ms = (deadline - now_ns()) / 1'000'000;
        if (left_ms <= 0)
            throw bench_error("timed out waiting for the server");
        const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000)));
        if (n > 0)
            return;
        if (n < 0 && errno != EINTR)
            throw bench_error(std::string("poll: ") + std::strerror(errno));
    }
}

void stream::finish_handshake(std::int64_t deadline)
{
    for (auto r = handshake(); r != io::ok; r = handshake())
        wait(r, deadline);
}

void stream::write_all(std::string_view bytes, std::int64_t deadline)
{
    while (!bytes.empty()) {
        std::size_t put = 0;
        const auto r = write(bytes.data(), bytes.size(), put);
        if (r == io::ok)
            bytes.remove_prefix(put);
        else
            wait(r, deadline);
    }
}

std::vector<stream> open_streams(const util::endpoint& ep, int n, double timeout_s, const tls_client* tls)
{
    const auto deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
    auto fds = connect_many(ep, n, timeout_s);
    std::vector<stream> out;
    out.reserve(fds.size());
    for (auto& fd : fds)
        out.emplace_back(std::move(fd), tls);
    if (!tls)
        return out;
    const util::unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    const auto interest = [&](std::size_t i, io r, int op) {
        epoll_event ev{};
        ev.data.u64 = i;
        ev.events = r == io::want_write ? EPOLLOUT : EPOLLIN;
        ::epoll_ctl(epfd.get(), op, out[i].fd(), &ev);
    };
    std::size_t left = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto r = out[i].handshake();
        if (r != io::ok) {
            interest(i, r, EPOLL_CTL_ADD);
            ++left;
        }
    }
    std::vector<epoll_event> events(1024);
    while (left > 0) {
        const auto left_ms = (deadline - now_ns()) / 1'000'000;
        if (left_ms <= 0)
            throw connect_error("timed out in TLS handshakes: " + std::to_string(left) + " unfinished");
        const int got = ::epoll_wait(epfd.get(), events.data(), static_cast<int>(events.size()),
                                     static_cast<int>(std::min<std::int64_t>(left_ms, 100)));
        for (int k = 0; k < got; ++k) {
            const auto i = events[static_cast<std::size_t>(k)].data.u64;
            const auto r = out[i].handshake();
            if (r == io::ok) {
                ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, out[i].fd(), nullptr);
                --left;
                continue;
            }
            interest(i, r, EPOLL_CTL_MOD);
        }
    }
    return out;
}

} // namespace fxd::bench
