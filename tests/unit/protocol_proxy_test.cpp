#include <fxd/protocol/proxy_header.hpp>

#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

using namespace fxd::protocol::proxy;
using namespace std::string_literals;
using namespace std::string_view_literals;
using status = parse_result::status;

namespace {

constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

parse_result parse_text(std::string_view bytes)
{
    return parse({bytes.data(), bytes.size()});
}

void put_u16(std::string& s, std::uint16_t v)
{
    s += static_cast<char>(v >> 8);
    s += static_cast<char>(v & 0xff);
}

/// A v2 header: version/command byte, family/transport byte, then the payload.
std::string v2(unsigned char version_command, unsigned char family_transport, std::string_view payload)
{
    std::string s(v2_signature);
    s += static_cast<char>(version_command);
    s += static_cast<char>(family_transport);
    put_u16(s, static_cast<std::uint16_t>(payload.size()));
    s += payload;
    return s;
}

/// An IPv4 address block: 203.0.113.7:5555 -> 192.0.2.1:7070.
std::string inet_block()
{
    std::string s = "\xcb\x00\x71\x07\xc0\x00\x02\x01"s;
    put_u16(s, 5555);
    put_u16(s, 7070);
    return s;
}

/// An IPv6 address block: 2001:db8::7 port 4242 -> 2001:db8::1 port 7070.
std::string inet6_block()
{
    std::string s(32, '\0');
    s[0] = '\x20', s[1] = '\x01', s[2] = '\x0d', s[3] = '\xb8', s[15] = '\x07';
    s[16] = '\x20', s[17] = '\x01', s[18] = '\x0d', s[19] = '\xb8', s[31] = '\x01';
    put_u16(s, 4242);
    put_u16(s, 7070);
    return s;
}

std::string tlv(unsigned char type, std::string_view value)
{
    std::string s(1, static_cast<char>(type));
    put_u16(s, static_cast<std::uint16_t>(value.size()));
    s += value;
    return s;
}

bool is_v4(const parse_result& r, std::array<std::uint8_t, 4> address, std::uint16_t port)
{
    return r.client && !r.client->v6 && r.client->port == port &&
           std::equal(address.begin(), address.end(), r.client->bytes.begin());
}

/// Every proper prefix of a valid header asks for more.
void every_prefix_needs_more(std::string_view header)
{
    for (std::size_t n = 1; n < header.size(); ++n)
        BOOST_TEST((parse_text(header.substr(0, n)).state == status::need_more), "prefix of " << n << " bytes");
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_proxy)

BOOST_AUTO_TEST_CASE(v1_tcp4_names_the_client_and_leaves_what_follows)
{
    const std::string header = "PROXY TCP4 203.0.113.7 192.0.2.1 5555 7070\r\n";
    const auto r = parse_text(header + "\x00\x00\x00\x10{\"op\":\"ping\"}"s);
    BOOST_TEST((r.state == status::complete));
    BOOST_TEST(r.version == 1);
    BOOST_TEST(r.length == header.size());
    BOOST_TEST(is_v4(r, {203, 0, 113, 7}, 5555));
    every_prefix_needs_more(header);
}

BOOST_AUTO_TEST_CASE(v1_tcp6_names_the_client)
{
    const std::string header = "PROXY TCP6 2001:db8::7 2001:db8::1 4242 7070\r\n";
    const auto r = parse_text(header);
    BOOST_TEST((r.state == status::complete));
    BOOST_TEST(r.length == header.size());
    BOOST_REQUIRE(r.client.has_value());
    BOOST_TEST(r.client->v6);
    BOOST_TEST(r.client->port == 4242);
    BOOST_TEST(r.client->bytes[0] == 0x20);
    BOOST_TEST(r.client->bytes[3] == 0xb8);
    BOOST_TEST(r.client->bytes[15] == 0x07);
}

BOOST_AUTO_TEST_CASE(v1_unknown_keeps_the_peer_and_ignores_the_rest_of_its_line)
{
    for (const auto& header : {"PROXY UNKNOWN\r\n"s, "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"s}) {
        const auto r = parse_text(header + "after");
        BOOST_TEST((r.state == status::complete), header);
        BOOST_TEST(r.length == header.size());
        BOOST_TEST(!r.client.has_value());
    }
}

BOOST_AUTO_TEST_CASE(v1_broken_lines_are_invalid)
{
    const std::string_view bad[] = {
        "PROXY TCP4 203.0.113.7 192.0.2.1 5555 7070\n",       // no CR
        "PROXY TCP4 203.0.113.7 192.0.2.1 5555\r\n",          // a field missing
        "PROXY TCP4 203.0.113.7 192.0.2.1 5555 7070 1\r\n",   // one too many
        "PROXY TCP4  203.0.113.7 192.0.2.1 5555 7070\r\n",    // two spaces
        "PROXY TCP5 203.0.113.7 192.0.2.1 5555 7070\r\n",     // no such protocol
        "PROXY TCP4 2001:db8::7 192.0.2.1 5555 7070\r\n",     // IPv6 under TCP4
        "PROXY TCP6 203.0.113.7 2001:db8::1 5555 7070\r\n",   // IPv4 under TCP6
        "PROXY TCP4 203.0.113.700 192.0.2.1 5555 7070\r\n",   // not an address
        "PROXY TCP4 203.0.113.7 192.0.2.1 65536 7070\r\n",    // port out of range
        "PROXY TCP4 203.0.113.7 192.0.2.1 05555 7070\r\n",    // leading zero
        "PROXY TCP4 203.0.113.7 192.0.2.1 -1 7070\r\n",       // sign
        "PROXY \r\n",                                          // nothing
    };
    for (const auto line : bad) {
        const auto r = parse_text(line);
        BOOST_TEST((r.state == status::invalid), line);
        BOOST_TEST(!r.error.empty());
    }
    // A control byte is refused before the line ends.
    BOOST_TEST((parse_text("PROXY TCP4 \x01"sv).state == status::invalid));
}

BOOST_AUTO_TEST_CASE(v1_longer_than_107_bytes_is_invalid)
{
    const std::string long_line = "PROXY UNKNOWN " + std::string(v1_max_bytes, 'x');
    BOOST_TEST((parse_text(long_line.substr(0, v1_max_bytes - 1)).state == status::need_more));
    BOOST_TEST((parse_text(long_line).state == status::invalid));
    // 107 bytes with the CRLF is still a header.
    const std::string longest = "PROXY UNKNOWN " + std::string(v1_max_bytes - 16, 'x') + "\r\n";
    BOOST_REQUIRE(longest.size() == v1_max_bytes);
    BOOST_TEST((parse_text(longest).state == status::complete));
}

BOOST_AUTO_TEST_CASE(v2_proxy_inet_names_the_client)
{
    const auto header = v2(0x21, 0x11, inet_block());
    const auto r = parse_text(header + "next");
    BOOST_TEST((r.state == status::complete));
    BOOST_TEST(r.version == 2);
    BOOST_TEST(r.length == header.size());
    BOOST_TEST(is_v4(r, {203, 0, 113, 7}, 5555));
    every_prefix_needs_more(header);
}

BOOST_AUTO_TEST_CASE(v2_proxy_inet6_names_the_client)
{
    const auto header = v2(0x21, 0x21, inet6_block());
    const auto r = parse_text(header);
    BOOST_TEST((r.state == status::complete));
    BOOST_REQUIRE(r.client.has_value());
    BOOST_TEST(r.client->v6);
    BOOST_TEST(r.client->port == 4242);
    BOOST_TEST(r.client->bytes[1] == 0x01);
    BOOST_TEST(r.client->bytes[15] == 0x07);
}

BOOST_AUTO_TEST_CASE(v2_local_keeps_the_peer_whatever_follows)
{
    for (const auto& header : {v2(0x20, 0x00, ""), v2(0x20, 0x11, inet_block()), v2(0x20, 0x00, "anything")}) {
        const auto r = parse_text(header + "frame");
        BOOST_TEST((r.state == status::complete));
        BOOST_TEST(r.length == header.size());
        BOOST_TEST(!r.client.has_value());
    }
}

BOOST_AUTO_TEST_CASE(v2_unspec_and_unix_families_keep_the_peer)
{
    BOOST_TEST(!parse_text(v2(0x21, 0x00, "")).client.has_value());
    BOOST_TEST((parse_text(v2(0x21, 0x31, std::string(216, 'u'))).state == status::complete));
    BOOST_TEST(!parse_text(v2(0x21, 0x31, std::string(216, 'u'))).client.has_value());
}

BOOST_AUTO_TEST_CASE(v2_tlvs_are_skipped_and_their_framing_checked)
{
    const auto with_tlvs = v2(0x21, 0x11, inet_block() + tlv(0x04, "") + tlv(0x05, "unique-id") + tlv(0xEE, "xyz"));
    const auto r = parse_text(with_tlvs);
    BOOST_TEST((r.state == status::complete));
    BOOST_TEST(r.length == with_tlvs.size());
    BOOST_TEST(is_v4(r, {203, 0, 113, 7}, 5555));

    // A TLV claiming more bytes than the header holds, or a stray byte or two after the last one.
    std::string overrun = inet_block() + tlv(0x05, "abc");
    overrun[overrun.size() - 4] = '\x09';
    BOOST_TEST((parse_text(v2(0x21, 0x11, overrun)).state == status::invalid));
    BOOST_TEST((parse_text(v2(0x21, 0x11, inet_block() + "\x01\x00"s)).state == status::invalid));
}

BOOST_AUTO_TEST_CASE(v2_oversized_payload_is_invalid_before_it_arrives)
{
    std::string header(v2_signature);
    header += "\x21\x11"s;
    put_u16(header, static_cast<std::uint16_t>(v2_max_payload + 1));
    BOOST_TEST((parse_text(header).state == status::invalid));
    const auto largest = v2(0x21, 0x11, inet_block() + tlv(0x05, std::string(v2_max_payload - 12 - 3, 'z')));
    BOOST_TEST(largest.size() == max_header_bytes);
    BOOST_TEST((parse_text(largest).state == status::complete));
}

BOOST_AUTO_TEST_CASE(v2_bad_fields_are_invalid)
{
    BOOST_TEST((parse_text(v2(0x11, 0x11, inet_block())).state == status::invalid)); // version 1 in binary
    BOOST_TEST((parse_text(v2(0x31, 0x11, inet_block())).state == status::invalid)); // version 3
    BOOST_TEST((parse_text(v2(0x22, 0x11, inet_block())).state == status::invalid)); // command 2
    BOOST_TEST((parse_text(v2(0x21, 0x41, inet_block())).state == status::invalid)); // family 4
    BOOST_TEST((parse_text(v2(0x21, 0x13, inet_block())).state == status::invalid)); // transport 3
    BOOST_TEST((parse_text(v2(0x21, 0x12, inet_block())).state == status::invalid)); // a datagram relayed on a stream
    BOOST_TEST((parse_text(v2(0x21, 0x11, inet_block().substr(0, 11))).state == status::invalid)); // short block
    BOOST_TEST((parse_text(v2(0x21, 0x21, inet_block())).state == status::invalid)); // IPv6 needs 36 bytes
}

BOOST_AUTO_TEST_CASE(truncated_headers_need_more)
{
    BOOST_TEST((parse_text("").state == status::need_more));
    BOOST_TEST((parse_text("PROX").state == status::need_more));
    BOOST_TEST((parse_text("PROXY TCP4 203.0.113.7").state == status::need_more));
    BOOST_TEST((parse_text(v2_signature.substr(0, 5)).state == status::need_more));
    const auto header = v2(0x21, 0x21, inet6_block());
    BOOST_TEST((parse_text(header.substr(0, 20)).state == status::need_more));
}

BOOST_AUTO_TEST_CASE(garbage_and_a_wrong_signature_are_invalid)
{
    BOOST_TEST((parse_text("\x00\x00\x00\x10{\"op\":\"ping\"}"sv).state == status::invalid)); // a frame
    BOOST_TEST((parse_text("\x16\x03\x01\x02\x00"sv).state == status::invalid));             // a TLS ClientHello
    BOOST_TEST((parse_text("GET / HTTP/1.1\r\n").state == status::invalid));
    BOOST_TEST((parse_text("proxy TCP4 203.0.113.7 192.0.2.1 5555 7070\r\n").state == status::invalid));
    std::string wrong = v2(0x21, 0x11, inet_block());
    wrong[10] = 'X'; // "QUIT" misspelt
    BOOST_TEST((parse_text(wrong).state == status::invalid));
    BOOST_TEST((parse_text(wrong.substr(0, 10)).state == status::need_more)); // not yet told apart
}

BOOST_AUTO_TEST_CASE(starts_like_header_tells_a_frame_from_a_proxy_header)
{
    BOOST_TEST(starts_like_header(std::span<const char>("PROX", 4)));
    BOOST_TEST(starts_like_header(std::span<const char>(v2_signature.data(), 4)));
    BOOST_TEST(starts_like_header(std::span<const char>(v2_signature.data(), 12)));
    BOOST_TEST(!starts_like_header(std::span<const char>("\x00\x00\x00\x10", 4)));
    BOOST_TEST(!starts_like_header(std::span<const char>("\x16\x03\x01\x02", 4)));
    BOOST_TEST(!starts_like_header(std::span<const char>()));
}

BOOST_AUTO_TEST_SUITE_END()
