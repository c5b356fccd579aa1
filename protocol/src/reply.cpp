#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/reply.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

namespace fxd::protocol {

namespace {

/// Enough of a header to recognise it in a message, not a whole one.
std::string excerpt(std::string_view text)
{
    constexpr std::size_t shown = 200;
    return text.size() <= shown ? std::string(text) : std::string(text.substr(0, shown)) + "...";
}

std::uint32_t header_length(const char* prefix, const reply_limits& limits)
{
    const auto n = load_u32_be(reinterpret_cast<const unsigned char*>(prefix));
    if (n == 0)
        throw reply_format_error("reply header length is 0");
    if (n > limits.max_header_bytes)
        throw reply_format_error("reply header length " + std::to_string(n) + " is larger than the " +
                                 std::to_string(limits.max_header_bytes) + " bytes a reply header may have");
    return n;
}

/// A reply header is a JSON object whose "size" is a non-negative integer.
boost::json::object parse_header(std::string_view text, std::uint64_t& size)
{
    boost::system::error_code ec;
    auto value = boost::json::parse(text, ec);
    if (ec)
        throw reply_format_error("reply header is not JSON (" + ec.message() + "): " + excerpt(text));
    if (!value.is_object())
        throw reply_format_error("reply header is not a JSON object: " + excerpt(text));
    auto& header = value.get_object();
    const auto* field = header.if_contains("size");
    if (!field)
        throw reply_format_error("reply header has no size: " + excerpt(text));
    if (field->is_uint64())
        size = field->get_uint64();
    else if (field->is_int64() && field->get_int64() >= 0)
        size = static_cast<std::uint64_t>(field->get_int64());
    else
        throw reply_format_error("reply header's size is not a non-negative integer: " + excerpt(text));
    return std::move(header);
}

} // namespace

reply_frame decode_reply(std::string_view frame, const reply_limits& limits)
{
    if (frame.size() < prefix_bytes)
        throw reply_format_error("a reply frame of " + std::to_string(frame.size()) +
                                 " bytes is shorter than its length prefix");
    const auto length = header_length(frame.data(), limits);
    if (length > frame.size() - prefix_bytes)
        throw reply_format_error("reply header length " + std::to_string(length) + " runs past the end of the " +
                                 std::to_string(frame.size()) + "-byte frame");
    reply_frame r;
    r.header = parse_header(frame.substr(prefix_bytes, length), r.size);
    r.body = frame.substr(prefix_bytes + length);
    if (r.body.size() != r.size)
        throw reply_format_error("a reply frame carries " + std::to_string(r.body.size()) +
                                 " body bytes but its size says " + std::to_string(r.size));
    return r;
}

void reply_decoder::feed(std::span<const char> bytes)
{
    // Drop what was decoded first, so the buffer holds one reply at most plus what follows it.
    buffer_.erase(0, begin_ + std::exchange(consumed_, 0));
    begin_ = 0;
    body_ = {};
    buffer_.append(bytes.data(), bytes.size());
}

void reply_decoder::fail(const std::string& why)
{
    state_ = state::broken;
    error_ = why;
    throw reply_format_error(why);
}

reply_decoder::event reply_decoder::next()
{
    if (state_ == state::broken)
        throw reply_format_error(error_);
    begin_ += std::exchange(consumed_, 0);
    body_ = {};
    try {
        for (;;) {
            const std::size_t available = buffer_.size() - begin_;
            switch (state_) {
            case state::prefix:
                if (available < prefix_bytes)
                    return event::need_more;
                header_bytes_ = header_length(buffer_.data() + begin_, limits_);
                begin_ += prefix_bytes;
                state_ = state::header;
                continue;
            case state::header:
                if (available < header_bytes_)
                    return event::need_more;
                header_ = parse_header({buffer_.data() + begin_, header_bytes_}, size_);
                begin_ += header_bytes_;
                state_ = state::body;
                return event::header;
            case state::body:
                if (available < size_)
                    return event::need_more;
                body_ = {buffer_.data() + begin_, static_cast<std::size_t>(size_)};
                consumed_ = body_.size();
                state_ = state::prefix;
                return event::reply;
            case state::broken:
                break;
            }
            throw std::logic_error("reply_decoder: unreachable state");
        }
    } catch (const reply_format_error& e) {
        fail(e.what());
    }
}

std::size_t reply_decoder::needed() const noexcept
{
    const std::uint64_t available = buffer_.size() - begin_ - consumed_;
    std::uint64_t wanted = 0;
    switch (state_) {
    case state::prefix: wanted = prefix_bytes; break;
    case state::header: wanted = header_bytes_; break;
    case state::body: wanted = size_; break;
    case state::broken: return 0;
    }
    return static_cast<std::size_t>(wanted - std::min(wanted, available));
}

std::span<const char> reply_decoder::release_body()
{
    if (state_ != state::body)
        throw std::logic_error("reply_decoder::release_body() outside a body");
    const auto held = static_cast<std::size_t>(std::min<std::uint64_t>(size_, buffer_.size() - begin_));
    consumed_ = held;
    state_ = state::prefix;
    return {buffer_.data() + begin_, held};
}

std::optional<reply_extent> scan_reply(std::string_view bytes, const reply_limits& limits)
{
    if (bytes.size() < prefix_bytes)
        return std::nullopt;
    const auto length = header_length(bytes.data(), limits);
    if (bytes.size() - prefix_bytes < length)
        return std::nullopt;
    const std::string_view header = bytes.substr(prefix_bytes, length);
    constexpr std::string_view size_key = R"("size":)";
    const auto at = header.rfind(size_key);
    if (at == std::string_view::npos || !header.ends_with('}'))
        throw reply_format_error("reply header does not end with \"size\":N}: " + excerpt(header));
    const char* digits = header.data() + at + size_key.size();
    const char* end = header.data() + header.size() - 1;
    reply_extent extent;
    if (const auto [stop, ec] = std::from_chars(digits, end, extent.body_bytes); ec != std::errc() || stop != end)
        throw reply_format_error("reply header's size is not a non-negative integer: " + excerpt(header));
    extent.header_bytes = prefix_bytes + length;
    extent.ok = header.starts_with(R"({"status":"ok",)");
    return extent;
}

} // namespace fxd::protocol
