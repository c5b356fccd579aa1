#pragma once
/// A decoded request header: the fields every op shares, plus access to the rest.

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/ops.hpp>

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace fxd::protocol {

/// Views into the JSON tree owned by the decoder; valid until the next header is decoded.
struct request_header {
    std::optional<op> operation;          ///< nullopt: missing, not a string or not a contract op
    std::string_view op_name;             ///< raw "op" text when it was a string
    const boost::json::value* id{};       ///< integer or string id, or nullptr
    std::uint64_t size{};                 ///< body length
    const boost::json::object* fields{};  ///< the whole header object
    /// Set when a shared field is present but wrong (id of another type): the
    /// request gets this error instead of being served.
    std::optional<errc> field_error;
};

/// Reads an op-specific string field. nullopt when missing or not a string.
std::optional<std::string_view> string_field(const request_header& h, std::string_view key) noexcept;

/// Reads an op-specific non-negative integer field. nullopt when missing,
/// not an integer, or negative.
std::optional<std::uint64_t> uint_field(const request_header& h, std::string_view key) noexcept;

/// The latest mtime an upload may carry: 9999-12-31 23:59:59 UTC, so every
/// client's calendar can show it.
constexpr std::int64_t max_mtime = 253402300799;

/// Reads an upload's optional "mtime": whole seconds since 1970, 0 to
/// max_mtime. nullopt when missing or anything else (a float, a string, out of range).
std::optional<std::int64_t> mtime_field(const request_header& h) noexcept;

/// The length of the body that follows the header on the wire: `size`, except
/// for a resumed upload, whose `size` is the whole file's and whose body is the
/// rest after `offset` (size - offset; 0 when offset is past size, which the
/// upload then refuses as bad_offset).
std::uint64_t request_body_length(const request_header& h) noexcept;

/// True when the key is present at all (to tell "missing" from "wrong type").
bool has_field(const request_header& h, std::string_view key) noexcept;

} // namespace fxd::protocol
