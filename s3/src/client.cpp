// The only translation unit of fxd::s3 that includes Boost.Beast.
#include "fxd/s3/client.hpp"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "fxd/s3/sigv4.hpp"
#include "fxd/util/sha256.hpp"

namespace fxd::s3 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using sigv4::key_value;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Bytes read ahead from a connection (headers, or body the caller has not pulled yet).
constexpr std::size_t connection_buffer_bytes = 1024 * 1024;
constexpr std::size_t copy_chunk_bytes = 64 * 1024;

struct endpoint_parts {
    bool tls = false;
    std::string host; // without brackets for IPv6
    std::string port;
    bool default_port = true;
};

endpoint_parts parse_endpoint(std::string_view url) {
    endpoint_parts out;
    if (url.starts_with("https://")) {
        out.tls = true;
        url.remove_prefix(8);
    } else if (url.starts_with("http://")) {
        url.remove_prefix(7);
    } else {
        throw std::invalid_argument("S3 endpoint must start with http:// or https://: " + std::string(url));
    }
    while (url.ends_with('/')) url.remove_suffix(1);
    if (url.find('/') != std::string_view::npos) {
        throw std::invalid_argument("S3 endpoint must not have a path: " + std::string(url));
    }
    std::string_view host = url;
    std::string_view port;
    if (url.starts_with('[')) {
        const auto close = url.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("S3 endpoint: unclosed '[' in " + std::string(url));
        host = url.substr(1, close - 1);
        if (close + 1 < url.size()) {
            if (url[close + 1] != ':') throw std::invalid_argument("S3 endpoint: junk after ']' in " + std::string(url));
            port = url.substr(close + 2);
        }
    } else if (const auto colon = url.rfind(':'); colon != std::string_view::npos) {
        host = url.substr(0, colon);
        port = url.substr(colon + 1);
    }
    if (host.empty()) throw std::invalid_argument("S3 endpoint has no host: " + std::string(url));
    if (!port.empty() && (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))) {
        throw std::invalid_argument("S3 endpoint has a bad port: " + std::string(port));
    }
    out.host = host;
    out.default_port = port.empty();
    out.port = port.empty() ? (out.tls ? "443" : "80") : std::string(port);
    return out;
}

bool is_timeout(const boost::system::error_code& ec) {
    return ec == beast::error::timeout || ec == asio::error::timed_out;
}

[[noreturn]] void throw_transport(const boost::system::error_code& ec, std::string_view during) {
    if (is_timeout(ec)) throw error(error_kind::timeout, "S3 request timed out while " + std::string(during));
    throw error(error_kind::transport, "S3 connection failed while " + std::string(during) + ": " + ec.message());
}

std::uint64_t header_u64(const http::fields& fields, http::field name) {
    const auto it = fields.find(name);
    if (it == fields.end()) return 0;
    const std::string_view v = it->value();
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc{} || end != v.data() + v.size()) {
        throw error(error_kind::protocol, "S3 sent a bad " + std::string(to_string(name)) + ": " + std::string(v));
    }
    return value;
}

std::string header_text(const http::fields& fields, std::string_view name) {
    const auto it = fields.find(name);
    return it == fields.end() ? std::string{} : std::string(it->value());
}

} // namespace

error::error(error_kind kind, std::string what, int http_status, std::string code, std::string request_id)
    : std::runtime_error(std::move(what)),
      kind_(kind),
      http_status_(http_status),
      code_(std::move(code)),
      request_id_(std::move(request_id)) {}

// One keep-alive HTTP connection, plain or TLS, with the bytes read ahead of the parser.
class connection {
public:
    connection(const asio::any_io_executor& ex, asio::ssl::context* tls_context, std::string host_key)
        : host_key_(std::move(host_key)), buffer(connection_buffer_bytes) {
        if (tls_context != nullptr) tls_.emplace(ex, *tls_context);
        else plain_.emplace(ex);
    }

    beast::tcp_stream& tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
    bool is_tls() const { return tls_.has_value(); }
    beast::ssl_stream<beast::tcp_stream>& tls() { return *tls_; }
    const std::string& host_key() const { return host_key_; }

    // Calls f with the stream to use (both kinds give the same awaitable type).
    template <class F> auto with_stream(F&& f) { return tls_ ? f(*tls_) : f(*plain_); }

    bool reused = false;

private:
    std::string host_key_;
    std::optional<beast::tcp_stream> plain_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;

public:
    beast::flat_buffer buffer;
};

// The idle connections per host, bounded in total, and how to open new ones.
class connection_pool {
public:
    connection_pool(asio::any_io_executor ex, endpoint_parts endpoint, const client_options& options)
        : executor_(std::move(ex)),
          endpoint_(std::move(endpoint)),
          max_idle_(options.max_idle_connections),
          random_(static_cast<std::uint32_t>(steady::now().time_since_epoch().count())) {
        if (endpoint_.tls) {
            tls_context_.emplace(asio::ssl::context::tls_client);
            tls_context_->set_verify_mode(asio::ssl::verify_peer);
            boost::system::error_code ec;
            if (options.ca_file.empty()) tls_context_->set_default_verify_paths(ec);
            else tls_context_->load_verify_file(options.ca_file, ec);
            if (ec) {
                throw std::runtime_error("S3: cannot load the CA file '" + options.ca_file + "': " + ec.message());
            }
        }
    }

    const endpoint_parts& endpoint() const { return endpoint_; }
    const asio::any_io_executor& executor() const { return executor_; }

    std::unique_ptr<connection> take(const std::string& host) {
        auto it = idle_.find(host);
        if (it == idle_.end() || it->second.empty()) return nullptr;
        auto c = std::move(it->second.back());
        it->second.pop_back();
        --idle_count_;
        c->reused = true;
        return c;
    }

    void give_back(std::unique_ptr<connection> c) {
        if (idle_count_ >= max_idle_) return; // closed by its destructor
        c->tcp().expires_never();
        idle_[c->host_key()].push_back(std::move(c));
        ++idle_count_;
    }

    std::size_t idle_count() const { return idle_count_; }

    awaitable<std::unique_ptr<connection>> open(const std::string& host, steady::time_point deadline) {
        // The resolver is cancelled by a timer at the deadline. Both share one
        // state that the timer's handler keeps alive, however late it runs.
        struct resolve_state {
            explicit resolve_state(const asio::any_io_executor& ex) : resolver(ex) {}
            tcp::resolver resolver;
            bool timed_out = false;
        };
        auto state = std::make_shared<resolve_state>(executor_);
        asio::steady_timer timer(executor_, deadline);
        timer.async_wait([state](const boost::system::error_code& ec) {
            if (!ec) {
                state->timed_out = true;
                state->resolver.cancel();
            }
        });
        auto [resolve_ec, results] = co_await state->resolver.async_resolve(host, endpoint_.port, use_tuple);
        timer.cancel();
        if (state->timed_out) throw error(error_kind::timeout, "S3 request timed out while resolving " + host);
        if (resolve_ec) throw_transport(resolve_ec, "resolving " + host);

        auto c = std::make_unique<connection>(executor_, tls_context_ ? &*tls_context_ : nullptr, host);
        c->tcp().expires_at(deadline);
        auto [connect_ec, connected] = co_await c->tcp().async_connect(results, use_tuple);
        if (connect_ec) throw_transport(connect_ec, "connecting to " + host + ":" + endpoint_.port);
        c->tcp().socket().set_option(tcp::no_delay(true));
        if (c->is_tls()) {
            // SNI (for names only: RFC 6066 has no IP addresses), and the
            // certificate must name the host or carry its IP address.
            boost::system::error_code not_ip;
            asio::ip::make_address(host, not_ip);
            if (not_ip && SSL_set_tlsext_host_name(c->tls().native_handle(), host.c_str()) != 1) {
                throw error(error_kind::transport, "S3: cannot set the TLS server name " + host);
            }
            c->tls().set_verify_callback(asio::ssl::host_name_verification(host));
            auto [hs_ec] = co_await c->tls().async_handshake(asio::ssl::stream_base::client, use_tuple);
            if (hs_ec) throw_transport(hs_ec, "the TLS handshake with " + host);
        }
        co_return c;
    }

    /// A backoff delay for the given failed attempt (1-based): base * 2^(n-1), +-25%.
    std::chrono::milliseconds backoff(std::chrono::milliseconds base, unsigned attempt) {
        const auto nominal = base * (1LL << std::min(attempt - 1, 10U));
        std::uniform_real_distribution<double> jitter(0.75, 1.25);
        return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(nominal.count()) * jitter(random_)));
    }

private:
    asio::any_io_executor executor_;
    endpoint_parts endpoint_;
    std::optional<asio::ssl::context> tls_context_;
    std::map<std::string, std::deque<std::unique_ptr<connection>>, std::less<>> idle_;
    std::size_t idle_count_ = 0;
    std::size_t max_idle_;
    std::minstd_rand random_;
};

struct client::http_request {
    http::verb method = http::verb::get;
    std::string bucket;
    std::string key;
    std::vector<key_value> query;
    std::vector<key_value> headers; // besides host and x-amz-*; all signed
    std::string_view body;
    std::string owned_body; // when the client made the body (XML); body then points into it
    std::string payload_sha256;
    bool idempotent = true;
    bool stream_body = false; // GET: hand the body over unread
};

using body_parser = http::response_parser<http::buffer_body>;

struct client::http_response {
    unsigned status = 0;
    http::fields headers;
    std::string body;
    // Set for a streamed GET: the connection and the parser that has read the header.
    std::unique_ptr<connection> conn;
    std::unique_ptr<body_parser> parser;
};

struct object_stream::state {
    std::shared_ptr<connection_pool> pool;
    std::unique_ptr<connection> conn;
    std::unique_ptr<body_parser> parser;
    std::chrono::milliseconds timeout{};
};

object_stream::object_stream(std::unique_ptr<state> s) : state_(std::move(s)) {}
object_stream::object_stream() = default;
object_stream::object_stream(object_stream&&) noexcept = default;
object_stream& object_stream::operator=(object_stream&&) noexcept = default;
object_stream::~object_stream() = default;

awaitable<std::size_t> object_stream::read_some(std::span<char> into) {
    if (!state_ || into.empty()) co_return 0;
    auto& st = *state_;
    // get_object took only Content-Length bodies: the bytes the header read
    // brought along come first, then straight from the socket into the
    // caller's memory (no second copy, no read-ahead beyond the caller's pull).
    if (remaining_ == 0) {
        if (st.parser->get().keep_alive()) st.pool->give_back(std::move(st.conn));
        state_.reset();
        co_return 0;
    }
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(into.size(), remaining_));
    std::size_t got = 0;
    if (st.conn->buffer.size() > 0) {
        got = asio::buffer_copy(asio::buffer(into.data(), want), st.conn->buffer.data());
        st.conn->buffer.consume(got);
    } else {
        st.conn->tcp().expires_after(st.timeout);
        auto [ec, n] = co_await st.conn->with_stream(
            [&](auto& stream) { return stream.async_read_some(asio::buffer(into.data(), want), use_tuple); });
        if (ec) {
            state_.reset(); // the connection is in an unknown state: closed
            throw_transport(ec, "reading an object's body");
        }
        got = n;
    }
    remaining_ -= got;
    if (remaining_ == 0) {
        if (st.parser->get().keep_alive()) st.pool->give_back(std::move(st.conn));
        state_.reset();
    }
    co_return got;
}

client::client(asio::any_io_executor executor, client_options options, credentials creds)
    : options_(std::move(options)),
      credentials_(std::move(creds)),
      pool_(std::make_shared<connection_pool>(std::move(executor), parse_endpoint(options_.endpoint), options_)) {
    if (options_.max_attempts == 0) options_.max_attempts = 1;
}

client::~client() = default;

std::size_t client::idle_connections() const noexcept { return pool_->idle_count(); }

namespace {

// The whole non-streamed body, at most `limit` bytes.
template <class Stream>
awaitable<std::string> read_whole_body(Stream& stream, beast::flat_buffer& buffer, body_parser& parser,
                                       std::size_t limit) {
    std::string body;
    std::vector<char> chunk(copy_chunk_bytes);
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) throw_transport(ec, "reading a response");
        body.append(chunk.data(), chunk.size() - parser.get().body().size);
        if (body.size() > limit) {
            throw error(error_kind::protocol, "S3 response larger than " + std::to_string(limit) + " bytes");
        }
    }
    co_return body;
}

// Thrown inside one exchange when a reused connection failed before any answer
// arrived: the server had closed it while idle, so a new connection is tried.
struct stale_connection {};

bool retryable_status(unsigned status) { return status == 429 || status >= 500; }

} // namespace

awaitable<client::http_response> client::perform(http_request request) {
    const auto& ep = pool_->endpoint();
    const std::string host = options_.path_style || request.bucket.empty() ? ep.host : request.bucket + "." + ep.host;
    std::string host_header = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (!ep.default_port) host_header += ":" + ep.port;

    std::string path = "/";
    if (options_.path_style && !request.bucket.empty()) {
        path += request.bucket;
        if (!request.key.empty()) path += "/";
    }
    path += request.key;
    const std::string canonical_path = sigv4::canonical_uri(path);
    std::string target = canonical_path;
    if (const std::string query = sigv4::canonical_query(request.query); !query.empty()) target += "?" + query;

    if (!request.owned_body.empty()) request.body = request.owned_body;
    std::string payload_hash = request.payload_sha256;
    if (payload_hash.empty()) {
        payload_hash = request.body.empty() ? std::string(sigv4::empty_payload_sha256) : util::sha256_hex(request.body);
    }

    const auto deadline = steady::now() + options_.request_timeout;
    for (unsigned attempt = 1;; ++attempt) {
        // Signed anew each attempt: the date moves on.
        const std::string amz_date = sigv4::amz_date(std::chrono::system_clock::now());
        sigv4::request to_sign{http::to_string(request.method), path, request.query, request.headers, payload_hash};
        to_sign.headers.emplace_back("host", host_header);
        to_sign.headers.emplace_back("x-amz-date", amz_date);
        to_sign.headers.emplace_back("x-amz-content-sha256", payload_hash);
        if (!credentials_.session_token.empty()) {
            to_sign.headers.emplace_back("x-amz-security-token", credentials_.session_token);
        }
        const std::string authorization = sigv4::sign(to_sign, credentials_, options_.region, "s3", amz_date);

        http::request<http::span_body<const char>> req{request.method, target, 11};
        for (const auto& [name, value] : to_sign.headers) req.set(name, value);
        req.set(http::field::authorization, authorization);
        req.set(http::field::user_agent, "fxd-s3");
        req.body() = boost::span<const char>(request.body.data(), request.body.size());
        req.keep_alive(true);
        req.prepare_payload();

        std::string failure_during;
        try {
            // At most two tries of the exchange: a stale idle connection gets one new one.
            for (int exchange = 0;; ++exchange) {
                auto conn = exchange == 0 ? pool_->take(host) : nullptr;
                if (!conn) conn = co_await pool_->open(host, deadline);
                const bool reused = conn->reused;
                conn->tcp().expires_at(deadline);
                auto [write_ec, written] = co_await conn->with_stream(
                    [&](auto& stream) { return http::async_write(stream, req, use_tuple); });
                auto parser = std::make_unique<body_parser>();
                parser->body_limit(boost::none); // object bodies are counted by the reader
                if (request.method == http::verb::head) parser->skip(true);
                boost::system::error_code read_ec = write_ec;
                if (!write_ec) {
                    auto [ec, n] = co_await conn->with_stream(
                        [&](auto& stream) { return http::async_read_header(stream, conn->buffer, *parser, use_tuple); });
                    read_ec = ec;
                }
                if (read_ec) {
                    const bool nothing_answered = !parser->is_header_done();
                    if (reused && nothing_answered && !is_timeout(read_ec) && exchange == 0) continue;
                    throw_transport(read_ec, write_ec ? "sending a request" : "reading a response");
                }

                http_response response;
                response.status = parser->get().result_int();
                const bool success = response.status >= 200 && response.status < 300;
                if (success && request.stream_body) {
                    response.headers = parser->get().base();
                    response.conn = std::move(conn);
                    response.parser = std::move(parser);
                    co_return response;
                }
                response.body = co_await conn->with_stream([&](auto& stream) {
                    return read_whole_body(stream, conn->buffer, *parser, options_.max_response_bytes);
                });
                response.headers = parser->get().base();
                if (parser->get().keep_alive()) pool_->give_back(std::move(conn));

                if (!success && request.idempotent && retryable_status(response.status) &&
                    attempt < options_.max_attempts) {
                    break; // to the backoff below
                }
                co_return response;
            }
        } catch (const error& e) {
            const bool retry = e.kind() == error_kind::transport && request.idempotent &&
                               attempt < options_.max_attempts;
            if (!retry) throw;
            failure_during = e.what();
        }

        const auto delay = pool_->backoff(options_.backoff_base, attempt);
        if (steady::now() + delay >= deadline) {
            throw error(error_kind::timeout, "S3 request timed out after " + std::to_string(attempt) + " attempts" +
                                                 (failure_during.empty() ? "" : " (last: " + failure_during + ")"));
        }
        asio::steady_timer timer(pool_->executor(), delay);
        co_await timer.async_wait(use_tuple);
    }
}

namespace {

// Turns an error status into fxd::s3::error, with S3's code and message when the body has them.
[[noreturn]] void throw_service(unsigned status, const std::string& body, const http::fields& headers) {
    const auto parsed = parse_error_body(body);
    std::string code = parsed ? parsed->code : std::string{};
    std::string message = parsed ? parsed->message : std::string{};
    std::string request_id = parsed ? parsed->request_id : header_text(headers, "x-amz-request-id");
    if (code.empty()) {
        code = status == 404 ? "NotFound" : status == 403 ? "Forbidden" : status == 503 ? "ServiceUnavailable" : "";
    }
    std::string what = "S3 error " + (code.empty() ? std::string("(no code)") : code) + " (HTTP " +
                       std::to_string(status) + ")";
    if (!message.empty()) what += ": " + message;
    throw error(error_kind::service, std::move(what), static_cast<int>(status), std::move(code),
                std::move(request_id));
}

bool ok(unsigned status) { return status >= 200 && status < 300; }

template <class T, class F> T parse_or_protocol_error(F&& parse, const std::string& body) {
    try {
        return parse(body);
    } catch (const xml_error& e) {
        throw error(error_kind::protocol, std::string("S3 answer not understood: ") + e.what());
    }
}

} // namespace

awaitable<void> client::create_bucket(std::string_view bucket) {
    http_request r;
    r.method = http::verb::put;
    r.bucket = bucket;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
}

awaitable<void> client::delete_bucket(std::string_view bucket) {
    http_request r;
    r.method = http::verb::delete_;
    r.bucket = bucket;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
}

awaitable<std::string> client::put_object(std::string_view bucket, std::string_view key, std::string_view body,
                                          std::string_view payload_sha256) {
    http_request r;
    r.method = http::verb::put;
    r.bucket = bucket;
    r.key = key;
    r.body = body;
    r.payload_sha256 = payload_sha256;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    co_return header_text(resp.headers, "ETag");
}

awaitable<object_head> client::head_object(std::string_view bucket, std::string_view key) {
    http_request r;
    r.method = http::verb::head;
    r.bucket = bucket;
    r.key = key;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    co_return object_head{header_u64(resp.headers, http::field::content_length), header_text(resp.headers, "ETag"),
                          header_text(resp.headers, "Last-Modified"), header_text(resp.headers, "Content-Type")};
}

awaitable<object_stream> client::get_object(std::string_view bucket, std::string_view key, byte_range range) {
    http_request r;
    r.method = http::verb::get;
    r.bucket = bucket;
    r.key = key;
    r.stream_body = true;
    if (range.offset != 0 || range.length) {
        if (range.length && *range.length == 0) {
            throw std::invalid_argument("S3 get_object: a range of 0 bytes cannot be asked for");
        }
        std::string value = "bytes=" + std::to_string(range.offset) + "-";
        if (range.length) value += std::to_string(range.offset + *range.length - 1);
        r.headers.emplace_back("range", value);
    }
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);

    auto st = std::make_unique<object_stream::state>();
    st->pool = pool_;
    st->conn = std::move(resp.conn);
    st->parser = std::move(resp.parser);
    st->timeout = options_.request_timeout;
    const auto length_known = st->parser->content_length();
    if (!length_known || st->parser->chunked()) {
        throw error(error_kind::protocol, "S3 GET answer has no Content-Length");
    }
    object_stream out(std::move(st));
    out.content_length_ = *length_known;
    out.remaining_ = *length_known;
    out.etag_ = header_text(resp.headers, "ETag");
    out.object_size_ = out.content_length_;
    // "bytes FIRST-LAST/SIZE" when a range was served.
    if (const std::string cr = header_text(resp.headers, "Content-Range"); !cr.empty()) {
        const auto slash = cr.rfind('/');
        std::uint64_t size = 0;
        const char* first = cr.data() + slash + 1;
        const char* last = cr.data() + cr.size();
        const auto [end, ec] = slash == std::string::npos ? std::from_chars_result{first, std::errc::invalid_argument}
                                                          : std::from_chars(first, last, size);
        if (ec != std::errc{} || end != last) throw error(error_kind::protocol, "S3 sent a bad Content-Range: " + cr);
        out.object_size_ = size;
    }
    co_return out;
}

awaitable<void> client::delete_object(std::string_view bucket, std::string_view key) {
    http_request r;
    r.method = http::verb::delete_;
    r.bucket = bucket;
    r.key = key;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
}

awaitable<list_objects_result> client::list_objects_v2(std::string_view bucket, std::string_view prefix,
                                                       std::string_view continuation_token, int max_keys) {
    http_request r;
    r.method = http::verb::get;
    r.bucket = bucket;
    r.query = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
    if (!prefix.empty()) r.query.emplace_back("prefix", prefix);
    if (!continuation_token.empty()) r.query.emplace_back("continuation-token", continuation_token);
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    co_return parse_or_protocol_error<list_objects_result>(parse_list_objects, resp.body);
}

awaitable<std::string> client::create_multipart_upload(std::string_view bucket, std::string_view key) {
    http_request r;
    r.method = http::verb::post;
    r.bucket = bucket;
    r.key = key;
    r.query = {{"uploads", ""}};
    r.idempotent = false; // a retry could leave a second, orphaned upload
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    co_return parse_or_protocol_error<std::string>(parse_initiate_multipart, resp.body);
}

awaitable<std::string> client::upload_part(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                           int part_number, std::string_view body, std::string_view payload_sha256) {
    if (part_number < 1 || part_number > 10000) {
        throw std::invalid_argument("S3 part numbers are 1 to 10000, not " + std::to_string(part_number));
    }
    http_request r;
    r.method = http::verb::put;
    r.bucket = bucket;
    r.key = key;
    r.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}};
    r.body = body;
    r.payload_sha256 = payload_sha256;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    std::string etag = header_text(resp.headers, "ETag");
    if (etag.empty()) throw error(error_kind::protocol, "S3 UploadPart answer has no ETag");
    co_return etag;
}

awaitable<std::string> client::complete_multipart_upload(std::string_view bucket, std::string_view key,
                                                         std::string_view upload_id,
                                                         const std::vector<completed_part>& parts) {
    http_request r;
    r.method = http::verb::post;
    r.bucket = bucket;
    r.key = key;
    r.query = {{"uploadId", std::string(upload_id)}};
    r.owned_body = complete_multipart_body(parts);
    r.headers = {{"content-type", "application/xml"}};
    r.idempotent = false;
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    // A 200 whose body is an <Error>: the completion failed after all.
    if (const auto e = parse_error_body(resp.body)) throw_service(500, resp.body, resp.headers);
    co_return parse_or_protocol_error<std::string>(parse_complete_multipart, resp.body);
}

awaitable<void> client::abort_multipart_upload(std::string_view bucket, std::string_view key,
                                               std::string_view upload_id) {
    http_request r;
    r.method = http::verb::delete_;
    r.bucket = bucket;
    r.key = key;
    r.query = {{"uploadId", std::string(upload_id)}};
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
}

awaitable<list_uploads_result> client::list_multipart_uploads(std::string_view bucket, std::string_view prefix,
                                                              std::string_view key_marker,
                                                              std::string_view upload_id_marker) {
    http_request r;
    r.method = http::verb::get;
    r.bucket = bucket;
    r.query = {{"uploads", ""}};
    if (!prefix.empty()) r.query.emplace_back("prefix", prefix);
    if (!key_marker.empty()) r.query.emplace_back("key-marker", key_marker);
    if (!upload_id_marker.empty()) r.query.emplace_back("upload-id-marker", upload_id_marker);
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    co_return parse_or_protocol_error<list_uploads_result>(parse_list_uploads, resp.body);
}

awaitable<list_parts_result> client::list_parts(std::string_view bucket, std::string_view key,
                                                std::string_view upload_id, int part_number_marker) {
    http_request r;
    r.method = http::verb::get;
    r.bucket = bucket;
    r.key = key;
    r.query = {{"uploadId", std::string(upload_id)}};
    if (part_number_marker > 0) r.query.emplace_back("part-number-marker", std::to_string(part_number_marker));
    auto resp = co_await perform(std::move(r));
    if (!ok(resp.status)) throw_service(resp.status, resp.body, resp.headers);
    co_return parse_or_protocol_error<list_parts_result>(parse_list_parts, resp.body);
}

} // namespace fxd::s3
