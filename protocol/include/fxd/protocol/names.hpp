#pragma once
/// Validation rules for file names, user names, passwords (contract: "Names and users")
/// and digests.

#include <string_view>

namespace fxd::protocol {

/// 1..255 bytes of valid UTF-8, no '/', '\\', NUL or other control characters (C0, DEL, C1),
/// not "." or "..", not starting with '.'.
bool is_valid_file_name(std::string_view name) noexcept;

/// 1..32 characters of a-z 0-9 _ . -, starting with a letter or digit.
bool is_valid_user_name(std::string_view name) noexcept;

/// 8..1024 bytes.
bool is_valid_password(std::string_view password) noexcept;

/// A SHA-256 as the contract writes it: exactly 64 lowercase hex digits.
bool is_sha256_hex(std::string_view text) noexcept;

/// Strict UTF-8 check: no overlongs, no surrogates, nothing past U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

} // namespace fxd::protocol
