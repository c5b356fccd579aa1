#pragma once
/// Rules for UDP (contract: "UDP"): one datagram carries one frame, and a reply
/// never outgrows its request by more than a fixed bound.

#include <cstddef>

namespace fxd::protocol {

/// How many bytes longer than its request datagram a reply may be. With the
/// per-source rate, this caps what a forged source address can make the daemon
/// send to a victim (no amplification); fxd's replies add under 90 bytes.
inline constexpr std::size_t max_udp_reply_growth = 128;

/// True when a reply of reply_bytes may answer a datagram of request_bytes.
constexpr bool udp_reply_within_bound(std::size_t request_bytes, std::size_t reply_bytes) noexcept
{
    return reply_bytes <= request_bytes + max_udp_reply_growth;
}

} // namespace fxd::protocol
