// The only file that includes Boost.Beast: it is header-only and heavy to compile.
#include "admin_http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <exception>

namespace fxd::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// From the connection (or the previous reply) to a whole request header: a
/// slow client holds a slot this long at most.
constexpr auto request_timeout = std::chrono::seconds(5);
/// Writing one reply (a /metrics page is tens of KiB).
constexpr auto write_timeout = std::chrono::seconds(10);

std::string_view path_of(beast::string_view target)
{
    const std::string_view t(target.data(), target.size());
    return t.substr(0, t.find('?'));
}

http::response<http::string_body> reply_for(const http::request<http::empty_body>& request, admin_response answer)
{
    http::response<http::string_body> reply(static_cast<http::status>(answer.status), request.version());
    reply.set(http::field::server, "fxd");
    reply.set(http::field::content_type, answer.content_type);
    reply.set(http::field::cache_control, "no-store");
    if (answer.status == 405)
        reply.set(http::field::allow, "GET, HEAD");
    const auto length = answer.body.size();
    reply.body() = std::move(answer.body);
    reply.prepare_payload();
    if (request.method() == http::verb::head) {
        reply.body().clear();
        reply.content_length(length); // HEAD: the length GET would send, no body
    }
    return reply;
}

} // namespace

admin_listener::admin_listener(asio::io_context& io, handler serve)
    : io_(io), serve_(std::move(serve)), acceptor_(io)
{
}

admin_listener::~admin_listener()
{
    close();
}

void admin_listener::open(const std::string& bind, std::uint16_t port)
{
    const tcp::endpoint at(asio::ip::make_address(bind), port);
    acceptor_.open(at.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(64);
}

std::uint16_t admin_listener::port() const
{
    return acceptor_.local_endpoint().port();
}

asio::awaitable<void> admin_listener::accept_loop()
{
    while (!closed_) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (closed_ || !acceptor_.is_open())
            co_return;
        if (ec) {
            // Out of descriptors and the like: back off; the protocol's listeners matter more.
            asio::steady_timer pause(io_, std::chrono::milliseconds(100));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (open_.size() >= max_connections)
            continue; // the socket closes as it goes out of scope
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
}

void admin_listener::close() noexcept
{
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* socket : open_)
        socket->close(ignored);
}

asio::awaitable<void> admin_listener::serve(tcp::socket socket)
{
    beast::tcp_stream stream(std::move(socket));
    const auto where = open_.insert(open_.end(), &stream.socket());
    struct forget {
        std::list<tcp::socket*>& list;
        std::list<tcp::socket*>::iterator at;
        ~forget() { list.erase(at); }
    } guard{open_, where};

    try {
        beast::flat_buffer buffer(max_header_bytes); // what a request may hold unread, pipelined or not
        for (unsigned served = 0; served < max_requests_per_connection && !closed_; ++served) {
            http::request_parser<http::empty_body> parser;
            parser.header_limit(max_header_bytes);
            parser.body_limit(0); // every route is a GET: a body is refused by closing
            stream.expires_after(request_timeout);
            const auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (read_error)
                break; // closed, timed out, too large or not HTTP: nothing worth answering
            const auto& request = parser.get();
            admin_response answer;
            if (request.method() != http::verb::get && request.method() != http::verb::head)
                answer = {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
            else
                answer = co_await serve_(path_of(request.target()));
            auto reply = reply_for(request, std::move(answer));
            reply.keep_alive(request.keep_alive() && served + 1 < max_requests_per_connection && !closed_);
            stream.expires_after(write_timeout);
            const auto [write_error, written] = co_await http::async_write(stream, reply, use_tuple);
            if (write_error || !reply.keep_alive())
                break;
        }
    } catch (const std::exception&) {
        // A failed route or a bad allocation ends this admin connection only.
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.socket().close(ignored);
}

} // namespace fxd::daemon
