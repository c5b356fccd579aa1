#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/encoder.hpp>
#include <fxd/util/hex.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <stdexcept>

namespace fxd::protocol {

namespace {

template <class Int>
void append_int(std::string& out, Int v)
{
    std::array<char, 24> digits{};
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), v);
    out.append(digits.data(), end);
}

void append_id(std::string& out, const boost::json::value& id)
{
    if (id.is_int64())
        append_int(out, id.get_int64());
    else if (id.is_uint64())
        append_int(out, id.get_uint64());
    else if (id.is_string())
        append_json_string(out, id.get_string());
    else
        out += boost::json::serialize(id);
}

} // namespace

void append_json_string(std::string& out, std::string_view text)
{
    out += '"';
    std::size_t run = 0; // copy unescaped stretches in one go
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out.append(text.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            out += "\\u00";
            util::append_hex(out, c);
        }
    }
    out.append(text.data() + run, text.size() - run);
    out += '"';
}

void append_request(std::string& out, std::string_view header_json, std::span<const char> body)
{
    if (header_json.size() > std::numeric_limits<std::uint32_t>::max())
        throw std::length_error("header longer than a frame can carry");
    std::array<unsigned char, prefix_bytes> prefix{};
    store_u32_be(prefix.data(), static_cast<std::uint32_t>(header_json.size()));
    out.append(reinterpret_cast<const char*>(prefix.data()), prefix.size());
    out += header_json;
    out.append(body.data(), body.size());
}

namespace {

/// A JSON string's text that needs no escaping and is short enough for
/// the stack buffer of append_ok_reply_header.
bool is_plain_short(std::string_view text) noexcept
{
    constexpr std::size_t max_plain = 64;
    return text.size() <= max_plain && std::all_of(text.begin(), text.end(), [](char c) {
               const auto u = static_cast<unsigned char>(c);
               return u >= 0x20 && u != '"' && u != '\\' && u < 0x80;
           });
}

char* put(char* at, std::string_view text) noexcept
{
    return std::copy(text.begin(), text.end(), at);
}

} // namespace

void append_ok_reply_header(std::string& out, std::string_view op, const boost::json::value* id, std::uint64_t body_size)
{
    const bool plain_id = !id || id->is_int64() || id->is_uint64() || (id->is_string() && is_plain_short(id->get_string()));
    if (op.empty() || !is_plain_short(op) || !plain_id) {
        reply_writer reply(out);
        reply.begin(op, id, true);
        reply.end(body_size);
        return;
    }
    // prefix, {"status":"ok","op":"OP","id":ID,"size":SIZE}, each part bounded above
    constexpr std::size_t max_digits = 20; // of a 64-bit integer, sign included
    std::array<char, 256> frame; // filled as far as `at` goes
    char* const header = frame.data() + prefix_bytes;
    char* at = put(header, R"({"status":"ok","op":")");
    at = put(at, op);
    *at++ = '"';
    if (id) {
        at = put(at, R"(,"id":)");
        if (id->is_string()) {
            *at++ = '"';
            at = put(at, id->get_string());
            *at++ = '"';
        } else if (id->is_int64()) {
            at = std::to_chars(at, at + max_digits, id->get_int64()).ptr;
        } else {
            at = std::to_chars(at, at + max_digits, id->get_uint64()).ptr;
        }
    }
    at = put(at, R"(,"size":)");
    at = std::to_chars(at, at + max_digits, body_size).ptr;
    *at++ = '}';
    store_u32_be(reinterpret_cast<unsigned char*>(frame.data()), static_cast<std::uint32_t>(at - header));
    out.append(frame.data(), at);
}

void reply_writer::key(std::string_view k)
{
    out_ += ',';
    append_json_string(out_, k);
    out_ += ':';
}

void reply_writer::begin(std::string_view op, const boost::json::value* id, bool ok)
{
    start_ = out_.size();
    out_.append(prefix_bytes, '\0');
    out_ += "{\"status\":";
    out_ += ok ? "\"ok\"" : "\"error\"";
    if (!op.empty()) {
        key("op");
        append_json_string(out_, op);
    }
    if (id) {
        key("id");
        append_id(out_, *id);
    }
}

void reply_writer::field(std::string_view k, std::string_view value)
{
    key(k);
    append_json_string(out_, value);
}

void reply_writer::field(std::string_view k, std::int64_t value)
{
    key(k);
    append_int(out_, value);
}

void reply_writer::field(std::string_view k, std::uint64_t value)
{
    key(k);
    append_int(out_, value);
}

void reply_writer::field(std::string_view k, bool value)
{
    key(k);
    out_ += value ? "true" : "false";
}

void reply_writer::field_null(std::string_view k)
{
    key(k);
    out_ += "null";
}

void reply_writer::field_raw(std::string_view k, std::string_view value_json)
{
    key(k);
    out_ += value_json;
}

void reply_writer::field(std::string_view k, const boost::json::value& value)
{
    key(k);
    out_ += boost::json::serialize(value);
}

void reply_writer::end(std::uint64_t body_size)
{
    key("size");
    append_int(out_, body_size);
    out_ += '}';
    const std::size_t header_len = out_.size() - start_ - prefix_bytes;
    store_u32_be(reinterpret_cast<unsigned char*>(out_.data() + start_), static_cast<std::uint32_t>(header_len));
}

void reply_writer::error(std::string_view op, const boost::json::value* id, errc code, std::string_view message)
{
    begin(op, id, false);
    field("code", to_string(code));
    field("message", message);
    end(0);
}

} // namespace fxd::protocol
