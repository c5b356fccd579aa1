// fuzz_names: the rules for file names, user names and passwords, and the
// strict UTF-8 check, each compared with an independent reference; the NFC
// form names are stored in (within the rules, stable); plus the
// JSON string escaper (replies and log lines) on the same bytes.
//
// Input: the bytes to judge, whole.

#include "fuzz_support.hpp"

#include "logging.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/names.hpp>

#include <boost/json/parse.hpp>

#include <string>
#include <string_view>

namespace {

using namespace fxd::protocol;

/// Unicode's table of well-formed UTF-8 byte sequences (Table 3-7), byte by byte.
/// Calls visit(code point) for each; false on the first ill-formed sequence.
template <class Visit>
bool reference_utf8(std::string_view text, Visit visit)
{
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = p + text.size();
    auto in = [](unsigned char b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
    while (p < end) {
        const unsigned char b0 = p[0];
        std::size_t len = 0;
        unsigned lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (b0 <= 0x7F) len = 1;
        else if (in(b0, 0xC2, 0xDF)) len = 2;
        else if (b0 == 0xE0) { len = 3; lo = 0xA0; }
        else if (in(b0, 0xE1, 0xEC) || in(b0, 0xEE, 0xEF)) len = 3;
        else if (b0 == 0xED) { len = 3; hi = 0x9F; }
        else if (b0 == 0xF0) { len = 4; lo = 0x90; }
        else if (in(b0, 0xF1, 0xF3)) len = 4;
        else if (b0 == 0xF4) { len = 4; hi = 0x8F; }
        else return false;
        if (static_cast<std::size_t>(end - p) < len)
            return false;
        if (len >= 2 && !in(p[1], lo, hi))
            return false;
        for (std::size_t i = 2; i < len; ++i)
            if (!in(p[i], 0x80, 0xBF))
                return false;
        std::uint32_t cp = len == 1 ? b0 : b0 & (0xFF >> (len + 1));
        for (std::size_t i = 1; i < len; ++i)
            cp = (cp << 6) | (p[i] & 0x3F);
        visit(cp);
        p += len;
    }
    return true;
}

bool reference_file_name(std::string_view name)
{
    if (name.empty() || name.size() > 255 || name.front() == '.')
        return false;
    bool control = false;
    const bool utf8 = reference_utf8(name, [&](std::uint32_t cp) {
        control = control || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == '/' || cp == '\\';
    });
    return utf8 && !control;
}

bool reference_user_name(std::string_view name)
{
    if (name.empty() || name.size() > 32)
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

bool has_raw_control(std::string_view text)
{
    for (const char c : text)
        if (static_cast<unsigned char>(c) < 0x20)
            return true;
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const bool utf8 = is_valid_utf8(text);
    FXD_FUZZ_CHECK(utf8 == reference_utf8(text, [](std::uint32_t) {}));

    const bool file = is_valid_file_name(text);
    FXD_FUZZ_CHECK(file == reference_file_name(text));
    if (file) { // what the storage layer relies on, spelled out
        FXD_FUZZ_CHECK(text != "." && text != ".." && text.find('/') == std::string_view::npos);
        FXD_FUZZ_CHECK(text.find('\0') == std::string_view::npos && !has_raw_control(text));
        FXD_FUZZ_CHECK(utf8);
    }

    // The name fxd stores: NFC, within the rules, stable, and the very name
    // it was given when that was already NFC (every ASCII name is).
    const auto nfc = to_nfc(text);
    FXD_FUZZ_CHECK(nfc.has_value() == utf8);
    const auto stored = normalize_file_name(text);
    if (stored) {
        FXD_FUZZ_CHECK(utf8 && is_valid_file_name(*stored) && *stored == *nfc);
        FXD_FUZZ_CHECK(normalize_file_name(*stored) == stored);
    } else if (nfc && size <= 4 * 255) {
        FXD_FUZZ_CHECK(!is_valid_file_name(*nfc));
    }
    if (file && nfc && *nfc == text)
        FXD_FUZZ_CHECK(stored == nfc);

    const bool user = is_valid_user_name(text);
    FXD_FUZZ_CHECK(user == reference_user_name(text));
    if (user) // a user's folder is storage.dir/users/NAME
        FXD_FUZZ_CHECK(file);

    FXD_FUZZ_CHECK(is_valid_password(text) == (size >= 8 && size <= 1024));

    // Escaped text never carries a raw control byte (no forged reply fields or
    // log lines), and valid UTF-8 comes back unchanged from a JSON parser.
    std::string quoted;
    append_json_string(quoted, text);
    FXD_FUZZ_CHECK(!has_raw_control(quoted));
    if (utf8) {
        boost::system::error_code ec;
        const auto back = boost::json::parse(quoted, ec);
        FXD_FUZZ_CHECK(!ec && back.is_string() && back.get_string() == text);
    }
    const auto logged = fxd::daemon::escape_for_log(text);
    FXD_FUZZ_CHECK(!has_raw_control(logged));
    FXD_FUZZ_CHECK(logged.size() <= 2 + 6 * 256 + 3);
    return 0;
}
