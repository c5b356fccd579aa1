#pragma once
/// The PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer
/// sends before the client's own bytes to say which client it relays. Only the
/// parsing: which peers may send one, and what is done with the address, is
/// the daemon's business.
///
/// v1 is one text line: "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n",
/// at most 107 bytes. v2 is binary: a 12-byte signature, version and command,
/// family and transport, a big-endian u16 length, then that many bytes of
/// addresses and TLVs.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace fxd::protocol::proxy {

/// The longest v1 line, "\r\n" included (the specification's own bound).
inline constexpr std::size_t v1_max_bytes = 107;
/// v2's signature, version/command, family/transport and length.
inline constexpr std::size_t v2_fixed_bytes = 16;
/// The longest v2 address block plus TLVs accepted: room for a UNIX address
/// (216 bytes) and a few TLVs. A balancer sending more is refused rather than
/// read without bound.
inline constexpr std::size_t v2_max_payload = 512;
/// The most bytes a header can take: what a reader must be ready to hold.
inline constexpr std::size_t max_header_bytes = v2_fixed_bytes + v2_max_payload;

/// The client as the balancer saw it.
struct client_address {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{}; ///< network order; an IPv4 address in the first 4
    std::uint16_t port = 0;
};

struct parse_result {
    enum class status {
        complete,  ///< a whole valid header: `length` bytes, the client in `client`
        need_more, ///< a valid beginning: read more (at most max_header_bytes in all)
        invalid,   ///< not a PROXY header, or a broken one: `error` says why
    };
    status state = status::need_more;
    std::size_t length = 0; ///< when complete: the header's bytes, to consume before the client's own
    int version = 0;        ///< 1 or 2, once the signature is recognised
    /// When complete: the client it names, or nullopt where the connection's
    /// own peer stands (v1 UNKNOWN, v2 LOCAL, or a v2 family that is not IP).
    std::optional<client_address> client;
    std::string_view error; ///< when invalid: why, as a short phrase (static text)
};

/// Parses the header at the start of `bytes` (the first bytes the peer sent;
/// anything after the header is left alone). Never reads past bytes.
parse_result parse(std::span<const char> bytes) noexcept;

/// True when the bytes received so far (one or more) are the beginning of a
/// v1 or v2 signature: what a peer that is not trusted to send one is told off
/// for. The four bytes of a frame's length prefix are enough to tell.
bool starts_like_header(std::span<const char> first_bytes) noexcept;

} // namespace fxd::protocol::proxy
