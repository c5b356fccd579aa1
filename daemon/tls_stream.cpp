#include "tls_stream.hpp"

#include "config.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <stdexcept>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

/// TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 has only such suites).
constexpr const char* tls12_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL";

/// OpenSSL's most recent error on this thread, as text, and the queue cleared.
std::string openssl_reason(std::string_view fallback)
{
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0)
        return std::string(fallback);
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

[[noreturn]] void refuse_file(std::string_view key, const std::filesystem::path& file)
{
    throw std::runtime_error(std::string(key) + " '" + file.string() + "' does not load: " +
                             openssl_reason("unknown reason"));
}

} // namespace

tls_settings::tls_settings(const config& cfg) : ctx_(SSL_CTX_new(TLS_server_method()))
{
    if (!ctx_)
        throw std::runtime_error("cannot make a TLS context: " + openssl_reason("out of memory"));
    try {
        const auto& tls = cfg.tls;
        if (SSL_CTX_use_certificate_chain_file(ctx_, tls.cert.c_str()) != 1)
            refuse_file("tls.cert", tls.cert);
        if (SSL_CTX_use_PrivateKey_file(ctx_, tls.key.c_str(), SSL_FILETYPE_PEM) != 1)
            refuse_file("tls.key", tls.key);
        if (SSL_CTX_check_private_key(ctx_) != 1)
            throw std::runtime_error("tls.key '" + tls.key.string() + "' does not match the certificate in tls.cert");
        SSL_CTX_set_min_proto_version(ctx_, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
        SSL_CTX_set_cipher_list(ctx_, tls12_ciphers);
        // A client that closes without a TLS close_notify ends like one that sends it: frames carry
        // their own lengths, so a cut is noticed anyway.
        SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                      SSL_OP_IGNORE_UNEXPECTED_EOF);
        // Partial writes: a write takes what the socket takes, like write(2).
        SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
        static constexpr unsigned char session_context[] = "fxd";
        SSL_CTX_set_session_id_context(ctx_, session_context, sizeof session_context - 1);
        if (!tls.client_ca.empty()) {
            if (SSL_CTX_load_verify_locations(ctx_, tls.client_ca.c_str(), nullptr) != 1)
                refuse_file("tls.client_ca", tls.client_ca);
            STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca.c_str());
            if (!names)
                refuse_file("tls.client_ca", tls.client_ca);
            SSL_CTX_set_client_CA_list(ctx_, names); // takes ownership
            SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
            client_ca_ = true;
        }
    } catch (...) {
        SSL_CTX_free(ctx_);
        throw;
    }
}

tls_settings::~tls_settings()
{
    SSL_CTX_free(ctx_); // connections made from it hold their own reference
}

void tls_stream::ssl_free::operator()(ssl_st* ssl) const noexcept
{
    SSL_free(ssl);
}

tls_stream::tls_stream(tcp::socket socket, std::shared_ptr<const tls_settings> settings)
    : socket_(std::move(socket)), settings_(std::move(settings)), ssl_(SSL_new(settings_->native()))
{
    if (!ssl_ || SSL_set_fd(ssl_.get(), socket_.native_handle()) != 1)
        throw std::runtime_error("cannot make a TLS connection: " + openssl_reason("out of memory"));
    SSL_set_accept_state(ssl_.get());
}

asio::awaitable<boost::system::error_code> tls_stream::start()
{
    for (;;) {
        ERR_clear_error();
        const int ret = SSL_do_handshake(ssl_.get());
        if (ret == 1)
            co_return boost::system::error_code{};
        const int error = SSL_get_error(ssl_.get(), ret);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
            failure_ = error == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0
                           ? "the client closed the connection during the handshake"
                           : openssl_reason("handshake failed");
            co_return asio::error::make_error_code(asio::error::connection_aborted);
        }
        const auto [ec] = co_await socket_.wait(error == SSL_ERROR_WANT_READ);
        if (ec) {
            failure_ = ec == asio::error::operation_aborted ? "timed out (timeouts.header_s)" : ec.message();
            co_return ec;
        }
    }
}

std::string tls_stream::peer_subject() const
{
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (!cert || SSL_get_verify_result(ssl_.get()) != X509_V_OK)
        return {};
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), &BIO_free);
    if (!out || X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0)
        return {};
    char* text = nullptr;
    const long n = BIO_get_mem_data(out.get(), &text);
    return n > 0 ? std::string(text, static_cast<std::size_t>(n)) : std::string();
}

io_attempt tls_stream::read_now(std::span<char> into)
{
    ERR_clear_error();
    std::size_t n = 0;
    const int ret = SSL_read_ex(ssl_.get(), into.data(), into.size(), &n);
    if (ret == 1) {
        read_wants_write_ = false;
        return {io_attempt::result::done, n, {}};
    }
    return after_failure(ret, true);
}

io_attempt tls_stream::write_now(std::span<const char> from)
{
    ERR_clear_error();
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_.get(), from.data(), from.size(), &n);
    if (ret == 1) {
        write_wants_read_ = false;
        return {io_attempt::result::done, n, {}};
    }
    return after_failure(ret, false);
}

io_attempt tls_stream::after_failure(int ret, bool reading)
{
    switch (SSL_get_error(ssl_.get(), ret)) {
    case SSL_ERROR_WANT_READ:
        (reading ? read_wants_write_ : write_wants_read_) = !reading;
        return {io_attempt::result::would_block, 0, {}};
    case SSL_ERROR_WANT_WRITE:
        (reading ? read_wants_write_ : write_wants_read_) = reading;
        return {io_attempt::result::would_block, 0, {}};
    case SSL_ERROR_ZERO_RETURN:
        return {io_attempt::result::closed, 0, {}}; // the client's TLS close: a clean end
    case SSL_ERROR_SYSCALL: {
        const int error = errno;
        ERR_clear_error();
        if (error == 0 || error == ECONNRESET || error == EPIPE)
            return {io_attempt::result::closed, 0, asio::error::make_error_code(asio::error::connection_reset)};
        return {io_attempt::result::closed, 0, {error, boost::system::system_category()}};
    }
    default:
        failure_ = openssl_reason("TLS error");
        return {io_attempt::result::closed, 0, asio::error::make_error_code(asio::error::connection_aborted)};
    }
}

io_attempt tls_stream::send_file_now(int fd, std::uint64_t& offset, std::uint64_t count)
{
    return write_file_piece(*this, socket_, fd, offset, count);
}

asio::awaitable<wait_result> tls_stream::wait_readable()
{
    if (SSL_pending(ssl_.get()) > 0)
        co_return wait_result{}; // decrypted bytes are already waiting
    co_return co_await socket_.wait(!read_wants_write_);
}


bool tls_stream::shutdown_send() noexcept
{
    ERR_clear_error();
    SSL_shutdown(ssl_.get()); // queues and tries to send our close_notify; the client may be gone
    ERR_clear_error();
    return socket_.shutdown_send();
}

} // namespace fxd::daemon
