#include <fxd/protocol/names.hpp>

#include <fxd/util/hex.hpp>

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace fxd::protocol {

bool is_valid_utf8(std::string_view text) noexcept
{
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    while (p < end) {
        const unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        std::uint32_t min = 0;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return false;
        if (static_cast<std::size_t>(end - p) < len)
            return false;
        for (std::size_t i = 1; i < len; ++i) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
}

bool is_valid_file_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > 255 || name.front() == '.')
        return false; // also covers "." and ".."
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7F || c == '/' || c == '\\')
            return false;
        // U+0080..U+009F, the C1 controls, are C2 80..C2 9F in UTF-8.
        if (c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) <= 0x9F)
            return false;
    }
    return is_valid_utf8(name);
}

std::optional<std::string> to_nfc(std::string_view text)
{
    if (!is_valid_utf8(text))
        return std::nullopt;
    if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
        return std::string(text); // ASCII is its own NFC: most names never reach utf8proc
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t length =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                     &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free); // utf8proc mallocs
    if (length < 0)
        return std::nullopt; // utf8proc refuses it too (or is out of memory): not a name fxd can keep
    return std::string(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length));
}

std::optional<std::string> normalize_file_name(std::string_view name)
{
    // Composing shrinks UTF-8 at most threefold (e.g. U+0390 is 2 bytes, its
    // decomposition 6), so a longer name cannot come down to 255 bytes: refuse
    // it before spending time on it.
    constexpr std::size_t longest_before_nfc = 4 * 255;
    if (name.size() > longest_before_nfc)
        return std::nullopt;
    auto nfc = to_nfc(name);
    if (!nfc || !is_valid_file_name(*nfc))
        return std::nullopt;
    return nfc;
}

bool is_valid_user_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > 32)
        return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(name.front()))
        return false;
    for (const char c : name) {
        if (!alnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

bool is_valid_password(std::string_view password) noexcept
{
    return password.size() >= 8 && password.size() <= 1024;
}

bool is_sha256_hex(std::string_view text) noexcept
{
    return text.size() == 64 && util::is_lower_hex(text);
}

} // namespace fxd::protocol
