#pragma once
/// Rules for UDP (contract: "UDP"): one datagram carries one frame; nothing is
/// answered that could start a loop between two services, and no reply is
/// more than twice the size of its request.

#include <fxd/protocol/header.hpp>

#include <cstddef>

namespace fxd::protocol {

/// A reply may be at most this many times the length of its request datagram.
/// With the per-source rate, this caps what a forged source address can make
/// the daemon send to a victim (no amplification worth the name).
inline constexpr std::size_t max_udp_reply_factor = 2;

/// True when a reply of reply_bytes may answer a datagram of request_bytes.
constexpr bool udp_reply_within_bound(std::size_t request_bytes, std::size_t reply_bytes) noexcept
{
    return reply_bytes <= max_udp_reply_factor * request_bytes;
}

/// A header with a "status" member is a reply, not a request: answering it
/// would let two services (or two fxd) bounce datagrams at each other forever.
bool is_reply_shaped(const request_header& header) noexcept;

} // namespace fxd::protocol
