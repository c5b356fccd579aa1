#pragma once
/// Reading replies off a byte stream. The hot path only finds a frame's end
/// (protocol::scan_reply); a sample of replies, and every error reply, is
/// decoded in full (protocol::decode_reply).

#include "common.hpp"

#include <fxd/protocol/reply.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <string_view>

namespace fxd::bench {

/// Throws what the server said as a bench_error unless the reply is ok.
inline void require_ok(const boost::json::object& header)
{
    const auto text = [&](std::string_view key) {
        const auto* v = header.if_contains(key);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    if (text("status") == "ok")
        return;
    const auto message = text("message");
    throw bench_error("the server answered " + text("code") + (message.empty() ? "" : ": " + message));
}

/// The length of the complete reply frame at the start of s, or 0 when more
/// bytes are needed. Throws bench_error on an error reply, and
/// protocol::reply_format_error on a broken frame.
inline std::size_t complete_reply(std::string_view s)
{
    const auto extent = protocol::scan_reply(s);
    if (!extent || s.size() < extent->frame_bytes())
        return 0;
    const auto length = static_cast<std::size_t>(extent->frame_bytes());
    if (!extent->ok)
        require_ok(protocol::decode_reply(s.substr(0, length)).header);
    return length;
}

/// Checks one whole echo reply with the full decoder.
inline void check_echo_reply(std::string_view frame, std::string_view expected_body)
{
    const auto r = protocol::decode_reply(frame);
    require_ok(r.header);
    if (r.body != expected_body)
        throw bench_error("an echo reply does not carry the expected body");
}

} // namespace fxd::bench
