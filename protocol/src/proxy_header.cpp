#include <fxd/protocol/proxy_header.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace fxd::protocol::proxy {

namespace {

using status = parse_result::status;

constexpr std::string_view v1_signature = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

/// v2 address block sizes: two addresses and two ports (or two UNIX paths).
constexpr std::size_t v2_inet_bytes = 12;
constexpr std::size_t v2_inet6_bytes = 36;
constexpr std::size_t v2_unix_bytes = 216;

parse_result invalid(std::string_view why, int version = 0)
{
    parse_result r;
    r.state = status::invalid;
    r.version = version;
    r.error = why;
    return r;
}

parse_result need_more(int version)
{
    parse_result r;
    r.state = status::need_more;
    r.version = version;
    return r;
}

parse_result complete(int version, std::size_t length, std::optional<client_address> client)
{
    parse_result r;
    r.state = status::complete;
    r.version = version;
    r.length = length;
    r.client = client;
    return r;
}

/// The bytes so far agree with the signature as far as both go.
bool agrees_with(std::span<const char> bytes, std::string_view signature)
{
    const auto n = std::min(bytes.size(), signature.size());
    return std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n), signature.begin());
}

/// Splits a v1 line at single spaces; false when it has more than `max` fields
/// or an empty one (two spaces in a row, or a space at an end).
bool split_fields(std::string_view line, std::span<std::string_view> fields, std::size_t& count)
{
    count = 0;
    for (;;) {
        const auto space = line.find(' ');
        const auto field = line.substr(0, space);
        if (field.empty() || count == fields.size())
            return false;
        fields[count++] = field;
        if (space == std::string_view::npos)
            return true;
        line.remove_prefix(space + 1);
    }
}

bool parse_v1_address(std::string_view text, bool v6, client_address& out)
{
    // inet_pton wants a terminated string; INET6_ADDRSTRLEN bounds the text of either family.
    std::array<char, INET6_ADDRSTRLEN> terminated{};
    if (text.size() >= terminated.size())
        return false;
    std::copy(text.begin(), text.end(), terminated.begin());
    out.v6 = v6;
    return ::inet_pton(v6 ? AF_INET6 : AF_INET, terminated.data(), out.bytes.data()) == 1;
}

/// Decimal 0..65535, without a sign or leading zeros.
bool parse_v1_port(std::string_view text, std::uint16_t& out)
{
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0'))
        return false;
    std::uint32_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (value > 65535)
        return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

parse_result parse_v1(std::span<const char> bytes)
{
    constexpr int v = 1;
    const std::string_view seen(bytes.data(), std::min(bytes.size(), v1_max_bytes));
    const auto newline = seen.find('\n');
    // Only printable ASCII and the final CR belong in the line: anything else is refused at once.
    const auto line_end = newline == std::string_view::npos ? seen.size() : newline;
    for (std::size_t i = v1_signature.size(); i < line_end; ++i) {
        const char c = seen[i];
        if ((c < 0x20 || c > 0x7e) && !(c == '\r' && i + 1 == line_end))
            return invalid("a v1 header holds a byte that is not printable ASCII", v);
    }
    if (newline == std::string_view::npos) {
        if (seen.size() == v1_max_bytes)
            return invalid("a v1 header longer than 107 bytes", v);
        return need_more(v);
    }
    if (newline == 0 || seen[newline - 1] != '\r')
        return invalid("a v1 header not ended by CRLF", v);
    const auto line = seen.substr(v1_signature.size(), newline - 1 - v1_signature.size());
    const std::size_t length = newline + 1;

    // "UNKNOWN" may be followed by anything: the receiver ignores the rest of the line.
    if (line == "UNKNOWN" || line.starts_with("UNKNOWN "))
        return complete(v, length, std::nullopt);
    std::array<std::string_view, 5> fields;
    std::size_t count = 0;
    if (!split_fields(line, fields, count) || count != fields.size())
        return invalid("a v1 header without exactly: protocol, source, destination, source port, destination port", v);
    const bool v6 = fields[0] == "TCP6";
    if (!v6 && fields[0] != "TCP4")
        return invalid("a v1 header's protocol is not TCP4, TCP6 or UNKNOWN", v);
    client_address client;
    client_address destination;
    std::uint16_t destination_port = 0;
    if (!parse_v1_address(fields[1], v6, client) || !parse_v1_address(fields[2], v6, destination))
        return invalid(v6 ? "a v1 TCP6 header's address is not IPv6" : "a v1 TCP4 header's address is not IPv4", v);
    if (!parse_v1_port(fields[3], client.port) || !parse_v1_port(fields[4], destination_port))
        return invalid("a v1 header's port is not a decimal number 0..65535", v);
    return complete(v, length, client);
}

std::uint16_t load_u16_be(const char* p) noexcept
{
    return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) | static_cast<unsigned char>(p[1]));
}

/// The TLVs after the addresses: type, u16 length, value, to the end exactly.
/// Their contents are not used; only their framing is checked.
bool tlvs_fit(std::span<const char> tlvs)
{
    while (!tlvs.empty()) {
        if (tlvs.size() < 3)
            return false;
        const std::size_t value_bytes = load_u16_be(tlvs.data() + 1);
        if (tlvs.size() - 3 < value_bytes)
            return false;
        tlvs = tlvs.subspan(3 + value_bytes);
    }
    return true;
}

parse_result parse_v2(std::span<const char> bytes)
{
    constexpr int v = 2;
    if (bytes.size() < v2_fixed_bytes)
        return need_more(v);
    const auto version_command = static_cast<unsigned char>(bytes[12]);
    const auto family_transport = static_cast<unsigned char>(bytes[13]);
    const std::size_t payload = load_u16_be(bytes.data() + 14);
    if ((version_command >> 4) != 2)
        return invalid("a v2 signature with a version other than 2", v);
    const unsigned command = version_command & 0x0f;
    if (command > 1)
        return invalid("a v2 header's command is neither LOCAL nor PROXY", v);
    const unsigned family = family_transport >> 4;
    const unsigned transport = family_transport & 0x0f;
    if (family > 3 || transport > 2)
        return invalid("a v2 header's address family or transport is unknown", v);
    if (payload > v2_max_payload)
        return invalid("a v2 header's addresses and TLVs are longer than 512 bytes", v);
    const std::size_t length = v2_fixed_bytes + payload;
    if (bytes.size() < length)
        return need_more(v);

    // LOCAL: the balancer speaks for itself (a health check); whatever follows is skipped.
    if (command == 0)
        return complete(v, length, std::nullopt);
    const auto block = bytes.subspan(v2_fixed_bytes, payload);
    const std::size_t address_bytes = family == 1   ? v2_inet_bytes
                                      : family == 2 ? v2_inet6_bytes
                                      : family == 3 ? v2_unix_bytes
                                                    : 0;
    if (payload < address_bytes)
        return invalid("a v2 header's address block is shorter than its family needs", v);
    if (!tlvs_fit(block.subspan(address_bytes)))
        return invalid("a v2 header's TLV runs past the header", v);
    if (family == 0 || family == 3)
        return complete(v, length, std::nullopt); // no IP address to stand for the client: keep the peer's
    if (transport == 2)
        return invalid("a v2 header announces a datagram connection on a stream", v);

    client_address client;
    client.v6 = family == 2;
    const std::size_t one_address = client.v6 ? 16 : 4;
    std::memcpy(client.bytes.data(), block.data(), one_address);
    client.port = load_u16_be(block.data() + 2 * one_address);
    return complete(v, length, client);
}

} // namespace

parse_result parse(std::span<const char> bytes) noexcept
{
    if (bytes.empty())
        return need_more(0);
    if (agrees_with(bytes, v2_signature))
        return bytes.size() < v2_signature.size() ? need_more(2) : parse_v2(bytes);
    if (agrees_with(bytes, v1_signature))
        return bytes.size() < v1_signature.size() ? need_more(1) : parse_v1(bytes);
    return invalid("not a PROXY protocol header");
}

bool starts_like_header(std::span<const char> first_bytes) noexcept
{
    return !first_bytes.empty() && (agrees_with(first_bytes, v1_signature) || agrees_with(first_bytes, v2_signature));
}

} // namespace fxd::protocol::proxy
