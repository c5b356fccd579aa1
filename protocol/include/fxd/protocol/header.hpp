#pragma once
/// A decoded request header: the fields every op shares, plus access to the rest.

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/ops.hpp>

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace fxd::protocol {

/// One member of a flat header read by the parser's fast path. Its key and
/// string value needed no unescaping, so both view the header text itself.
struct header_member {
    enum class kind : std::uint8_t { string, number, boolean };
    std::string_view key;
    std::string_view text;     ///< kind::string: the value
    std::uint64_t number{};    ///< kind::number: the value; kind::boolean: 0 or 1
    kind type{kind::string};
};

/// Views into memory owned by the decoder (its parser and its read buffer);
/// valid until the next header is decoded.
///
/// The members are in exactly one of two places: `fields` when Boost.JSON
/// parsed the header, or `members` when the fast path did (then `fields` is
/// null). Read them with the functions below, which look in either.
struct request_header {
    std::optional<op> operation;          ///< nullopt: missing, not a string or not a contract op
    std::string_view op_name;             ///< raw "op" text when it was a string
    const boost::json::value* id{};       ///< integer or string id, or nullptr
    std::uint64_t size{};                 ///< body length
    const boost::json::object* fields{};  ///< the whole header object, or nullptr (see members)
    std::span<const header_member> members; ///< the fast path's members, in the text's order
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

/// Reads a boolean field. nullopt when missing or not true/false.
std::optional<bool> bool_field(const request_header& h, std::string_view key) noexcept;

/// True when the key is present at all (to tell "missing" from "wrong type").
bool has_field(const request_header& h, std::string_view key) noexcept;

/// The header's members as a JSON object of their own, whichever path read
/// them (what Boost.JSON makes of the same text), for a request that must
/// outlive the decoder's memory.
boost::json::object fields_copy(const request_header& h);

/// True when two readings of header text agree on everything the daemon can
/// read from them: the shared fields, the id (its JSON kind too), and every
/// member through the readers above. The fuzzers and tests hold the fast
/// path to Boost.JSON's reading with it.
bool same_reading(const request_header& a, const request_header& b);

} // namespace fxd::protocol
