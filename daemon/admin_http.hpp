#pragma once
/// The admin listener: a small HTTP/1.1 server (Boost.Beast, confined to
/// admin_http.cpp) on the daemon's own io_context, for operators' tools:
/// Prometheus, Kubernetes probes, a browser. It only routes GET and HEAD to a
/// handler the server gives it, and bounds what a client may hold: header
/// size, no body, a deadline per request, a cap on connections, a cap on
/// requests per connection.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <string_view>

namespace fxd::daemon {

struct admin_response {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class admin_listener {
public:
    /// Answers one request for path (without the query string). Runs on the loop.
    using handler = std::function<boost::asio::awaitable<admin_response>(std::string_view path)>;

    /// Connections served at once; one more is closed at once.
    static constexpr std::size_t max_connections = 32;
    /// Requests on one keep-alive connection before it is closed.
    static constexpr unsigned max_requests_per_connection = 100;
    /// Request line plus headers.
    static constexpr std::uint32_t max_header_bytes = 8192;

    admin_listener(boost::asio::io_context& io, handler serve);
    admin_listener(const admin_listener&) = delete;
    admin_listener& operator=(const admin_listener&) = delete;
    ~admin_listener();

    /// Binds and listens (throws on failure); serving starts with accept_loop().
    void open(const std::string& bind, std::uint16_t port);
    std::uint16_t port() const;
    /// Accepts until close(); spawn it on the loop.
    boost::asio::awaitable<void> accept_loop();
    /// Stops accepting and closes every admin connection.
    void close() noexcept;

private:
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

    boost::asio::io_context& io_;
    handler serve_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::list<boost::asio::ip::tcp::socket*> open_; ///< the sockets of the connections being served
    bool closed_ = false;
};

} // namespace fxd::daemon
