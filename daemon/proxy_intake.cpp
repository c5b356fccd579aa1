// Reading with MSG_PEEK first, then taking exactly what the header needs:
// bytes after the header stay in the socket for the stream (a TLS stream reads
// the socket itself, so they could not be handed over otherwise). Bytes of an
// incomplete header are all taken before waiting again, since a wait with
// peeked bytes left in the socket would end at once and spin.

#include "proxy_intake.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>

namespace fxd::daemon {

namespace asio = boost::asio;
namespace proxy = protocol::proxy;
using outcome = proxy_intake::outcome;

namespace {

/// recv(2) on the non-blocking socket: the bytes, 0 at the end of the stream,
/// -1 with errno (EAGAIN: nothing yet).
ssize_t receive(stream_socket& socket, char* into, std::size_t size, int flags)
{
    for (;;) {
        const ssize_t got = ::recv(socket.native_handle(), into, size, flags);
        if (got >= 0 || errno != EINTR)
            return got;
    }
}

proxy_intake ended(outcome result, std::string_view why = {})
{
    proxy_intake r;
    r.result = result;
    r.why = why;
    return r;
}

proxy_intake broken(std::string_view why)
{
    return ended(outcome::bad_header, why);
}

proxy_intake relayed(outcome result, int version, boost::asio::ip::address client = {})
{
    proxy_intake r;
    r.result = result;
    r.version = version;
    r.client = std::move(client);
    return r;
}

} // namespace

asio::ip::address to_address(const proxy::client_address& client)
{
    if (client.v6)
        return asio::ip::address_v6(client.bytes);
    return asio::ip::address_v4({client.bytes[0], client.bytes[1], client.bytes[2], client.bytes[3]});
}

asio::awaitable<proxy_intake> take_proxy_header(stream_socket& socket)
{
    std::array<char, proxy::max_header_bytes> seen{};
    std::size_t taken = 0; // bytes of an incomplete header already taken off the socket
    for (;;) {
        const ssize_t got = receive(socket, seen.data() + taken, seen.size() - taken, MSG_PEEK);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            const auto [ec] = co_await socket.wait(true);
            if (ec)
                co_return ended(outcome::cancelled);
            continue;
        }
        if (got <= 0) {
            if (taken == 0)
                co_return ended(outcome::closed);
            co_return broken("the connection ended inside the PROXY header");
        }
        const auto parsed = proxy::parse({seen.data(), taken + static_cast<std::size_t>(got)});
        if (parsed.state == proxy::parse_result::status::invalid)
            co_return broken(parsed.error);
        // Take the header's bytes (all of them peeked, so all of them there), or all of an incomplete one.
        const std::size_t take = parsed.state == proxy::parse_result::status::complete ? parsed.length - taken
                                                                                        : static_cast<std::size_t>(got);
        if (receive(socket, seen.data() + taken, take, 0) != static_cast<ssize_t>(take))
            co_return broken("the connection broke inside the PROXY header");
        taken += take;
        if (parsed.state == proxy::parse_result::status::complete) {
            if (!parsed.client)
                co_return relayed(outcome::keep_peer, parsed.version);
            co_return relayed(outcome::client, parsed.version, to_address(*parsed.client));
        }
        if (taken == seen.size())
            co_return broken("a PROXY header longer than any valid one"); // the parser refuses before this
    }
}

asio::awaitable<std::optional<bool>> peeks_like_proxy_header(stream_socket& socket)
{
    // Twelve bytes tell a v2 signature; a TLS record starts with 0x16 (or 0x80), never 'P' or '\r'.
    std::array<char, 12> first{};
    for (;;) {
        const ssize_t got = receive(socket, first.data(), first.size(), MSG_PEEK);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            const auto [ec] = co_await socket.wait(true);
            if (ec)
                co_return std::nullopt;
            continue;
        }
        co_return std::optional<bool>(got > 0 &&
                                      proxy::starts_like_header({first.data(), static_cast<std::size_t>(got)}));
    }
}

} // namespace fxd::daemon
