#pragma once
/// The first bytes of a new TCP connection, before its stream starts (before
/// the TLS handshake): the PROXY protocol header a trusted load balancer sends,
/// or the one an untrusted peer must not send.

#include "stream_socket.hpp"

#include <fxd/protocol/proxy_header.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string_view>

namespace fxd::daemon {

struct proxy_intake {
    enum class outcome {
        client,     ///< a header naming the client: `client`
        keep_peer,  ///< a valid header that names nobody (v1 UNKNOWN, v2 LOCAL): the balancer speaks for itself
        bad_header, ///< not a valid PROXY header: `why`
        closed,     ///< the peer closed (or reset) before sending a byte
        cancelled,  ///< the wait was cancelled: the reaper's deadline, or the drain
    };
    outcome result = outcome::closed;
    boost::asio::ip::address client;
    int version = 0;
    std::string_view why;
};

/// Takes the header off the socket: exactly its bytes, so what follows (the
/// client's first frame, or its TLS ClientHello) stays for the stream. Waits
/// for readiness as long as the header is incomplete; the caller's deadline
/// cancels the wait.
boost::asio::awaitable<proxy_intake> take_proxy_header(stream_socket& socket);

/// For a peer that is not trusted, on the TLS port: waits for its first bytes
/// and looks at them without taking them; true when they begin a PROXY header
/// (a TLS handshake could not even fail clearly on them); nullopt when the
/// wait was cancelled (the deadline, or the drain).
boost::asio::awaitable<std::optional<bool>> peeks_like_proxy_header(stream_socket& socket);

boost::asio::ip::address to_address(const protocol::proxy::client_address& client);

} // namespace fxd::daemon
