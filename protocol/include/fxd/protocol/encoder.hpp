#pragma once
/// Frame encoding: requests for clients and tests, replies for the daemon.
/// Replies are written straight into an output string with no JSON tree.

#include <fxd/protocol/errc.hpp>

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fxd::protocol {

/// Appends a JSON string literal (quotes included) with the escapes JSON needs.
void append_json_string(std::string& out, std::string_view text);

/// Appends a whole request frame: prefix, the header text as given, body.
void append_request(std::string& out, std::string_view header_json, std::span<const char> body = {});

/// Appends the prefix and header of an ok reply that has no fields but op,
/// id and size (echo's and ping's), byte for byte what reply_writer's
/// begin(op, id, true) and end(body_size) write, but assembled on the stack
/// and appended at once. Ids and ops that need escaping, or are long, go
/// through reply_writer.
void append_ok_reply_header(std::string& out, std::string_view op, const boost::json::value* id, std::uint64_t body_size);

/// Writes one reply frame into an output string, field by field.
/// Usage: begin(), any number of field calls, end(body_size), then append the body.
class reply_writer {
public:
    explicit reply_writer(std::string& out) noexcept : out_(out) {}

    /// op may be empty (request op not understood); id may be null.
    void begin(std::string_view op, const boost::json::value* id, bool ok);
    void field(std::string_view key, std::string_view value);
    void field(std::string_view key, const char* value) { field(key, std::string_view{value}); }
    void field(std::string_view key, std::int64_t value);
    void field(std::string_view key, std::uint64_t value);
    void field(std::string_view key, int value) { field(key, static_cast<std::int64_t>(value)); }
    void field(std::string_view key, bool value);
    void field_null(std::string_view key);
    /// value_json must already be valid JSON text.
    void field_raw(std::string_view key, std::string_view value_json);
    void field(std::string_view key, const boost::json::value& value);
    /// Closes the header with "size" and patches the length prefix.
    void end(std::uint64_t body_size);

    /// Convenience: a whole error reply with no body.
    void error(std::string_view op, const boost::json::value* id, errc code, std::string_view message);

private:
    void key(std::string_view k);
    std::string& out_;
    std::size_t start_ = 0;
};

} // namespace fxd::protocol
