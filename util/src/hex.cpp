#include <fxd/util/hex.hpp>

#include <algorithm>

namespace fxd::util {

namespace {
constexpr std::string_view digits = "0123456789abcdef";
}

void append_hex(std::string& out, unsigned char byte)
{
    out += digits[byte >> 4];
    out += digits[byte & 0xF];
}

void append_hex(std::string& out, std::span<const unsigned char> bytes)
{
    out.reserve(out.size() + 2 * bytes.size());
    for (const unsigned char b : bytes)
        append_hex(out, b);
}

std::string to_hex(std::span<const unsigned char> bytes)
{
    std::string out;
    append_hex(out, bytes);
    return out;
}

bool is_lower_hex(std::string_view text) noexcept
{
    return std::all_of(text.begin(), text.end(), [](char c) { return digits.find(c) != std::string_view::npos; });
}

} // namespace fxd::util
