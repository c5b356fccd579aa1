#pragma once
/// Reading replies off a byte stream. The hot path only finds a frame's end
/// (the prefix, an ok status, the size field fxd writes last); a sample of
/// replies, and every error reply, goes through fxd::client::parse_frame.

#include "common.hpp"

#include <fxd/client/client.hpp>
#include <fxd/protocol/decoder.hpp>

#include <boost/json/value.hpp>

#include <charconv>
#include <string>
#include <string_view>

namespace fxd::bench {

[[noreturn]] inline void throw_error_reply(std::string_view frame_without_body)
{
    const auto r = client::parse_frame(frame_without_body);
    const auto* message = r.header.if_contains("message");
    throw bench_error("the server answered " + r.code() + (message && message->is_string()
                                                               ? std::string(": ") + std::string(message->get_string())
                                                               : std::string()));
}

/// The length of the complete reply header (prefix included) at the start
/// of s, with its body's size, or 0 when more bytes are needed. Throws
/// bench_error on an error reply or a broken frame.
inline std::size_t complete_header(std::string_view s, std::uint64_t& size)
{
    constexpr auto prefix = protocol::prefix_bytes;
    if (s.size() < prefix)
        return 0;
    const std::size_t hlen = protocol::load_u32_be(reinterpret_cast<const unsigned char*>(s.data()));
    if (hlen == 0 || hlen > (1u << 24))
        throw bench_error("the server sent a broken frame (header length " + std::to_string(hlen) + ")");
    if (s.size() < prefix + hlen)
        return 0;
    const std::string_view header = s.substr(prefix, hlen);
    if (!header.starts_with(R"({"status":"ok")"))
        throw_error_reply(s.substr(0, prefix + hlen));
    const auto at = header.rfind(R"("size":)");
    if (at == std::string_view::npos)
        throw bench_error("a reply header without size: " + std::string(header));
    const char* digits = header.data() + at + 7;
    if (std::from_chars(digits, header.data() + header.size(), size).ec != std::errc())
        throw bench_error("a reply header with a bad size: " + std::string(header));
    return prefix + hlen;
}

/// The length of the complete reply frame at the start of s, or 0 when more
/// bytes are needed. Throws bench_error on an error reply or a broken frame.
inline std::size_t complete_reply(std::string_view s)
{
    std::uint64_t size = 0;
    const auto head = complete_header(s, size);
    if (head == 0 || s.size() - head < size)
        return 0;
    return head + static_cast<std::size_t>(size);
}

/// Checks one whole echo reply with the client library's parser.
inline void check_echo_reply(std::string_view frame, std::string_view expected_body)
{
    const auto r = client::parse_frame(frame);
    if (!r.ok())
        throw bench_error("the server answered " + r.code());
    const auto* size = r.header.if_contains("size");
    if (!size || !size->is_number() || size->to_number<std::uint64_t>() != expected_body.size() ||
        r.body != expected_body)
        throw bench_error("an echo reply does not carry the expected body");
}

} // namespace fxd::bench
