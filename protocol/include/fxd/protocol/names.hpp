#pragma once
/// Validation rules for file names, user names, passwords (contract: "Names and users")
/// and digests.

#include <optional>
#include <string>
#include <string_view>

namespace fxd::protocol {

/// 1..255 bytes of valid UTF-8, no '/', '\\', NUL or other control characters (C0, DEL, C1),
/// not "." or "..", not starting with '.'.
bool is_valid_file_name(std::string_view name) noexcept;

/// Unicode Normalization Form C of valid UTF-8 text (utf8proc); nullopt when
/// `text` is not valid UTF-8 (see is_valid_utf8).
std::optional<std::string> to_nfc(std::string_view text);

/// The name fxd stores and looks up for the `name` a client sent: its NFC
/// form, when that form follows is_valid_file_name; nullopt otherwise
/// (bad_name). The rules apply to the NFC form, so the NFC and NFD spellings
/// of a name give the same result.
std::optional<std::string> normalize_file_name(std::string_view name);

/// 1..32 characters of a-z 0-9 _ . -, starting with a letter or digit.
bool is_valid_user_name(std::string_view name) noexcept;

/// 8..1024 bytes.
bool is_valid_password(std::string_view password) noexcept;

/// A SHA-256 as the contract writes it: exactly 64 lowercase hex digits.
bool is_sha256_hex(std::string_view text) noexcept;

/// Strict UTF-8 check: no overlongs, no surrogates, nothing past U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

} // namespace fxd::protocol
