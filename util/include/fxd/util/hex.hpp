#pragma once
/// Lowercase hexadecimal, the form the contract uses for digests.

#include <span>
#include <string>
#include <string_view>

namespace fxd::util {

/// Appends two lowercase hex digits per byte.
void append_hex(std::string& out, std::span<const unsigned char> bytes);
void append_hex(std::string& out, unsigned char byte);

/// The bytes as lowercase hex, two digits each.
std::string to_hex(std::span<const unsigned char> bytes);

/// True when every character is one of 0-9 a-f (an empty text included).
bool is_lower_hex(std::string_view text) noexcept;

} // namespace fxd::util
