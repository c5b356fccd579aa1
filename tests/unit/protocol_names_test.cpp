#include <fxd/protocol/names.hpp>
#include <fxd/util/hex.hpp>

#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

using namespace fxd::protocol;
using namespace std::string_view_literals;

namespace {

std::string repeat(std::string_view piece, std::size_t times)
{
    std::string s;
    for (std::size_t i = 0; i < times; ++i)
        s += piece;
    return s;
}

/// Printable form for failure messages (names may hold any byte).
std::string show(std::string_view s)
{
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7F) {
            out += ch;
        } else {
            out += "\\x";
            fxd::util::append_hex(out, c);
        }
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_names)

// ---- File names --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(accepts_ordinary_file_names, *boost::unit_test::timeout(10))
{
    const std::string_view valid[] = {
        "a", "report.txt", "résumé.pdf", "a b", "x..y", "a.", "a..", "name with spaces and (parens)",
        "日本語.txt", "emoji 🚀.bin", "-dash", "_under", "~tilde", "a:b", "C:", "%2e%2e", "semi;colon",
        "\xf4\x8f\xbf\xbf", // U+10FFFF, the last code point
        "\xef\xbf\xbd",     // U+FFFD
    };
    for (const auto name : valid)
        BOOST_TEST(is_valid_file_name(name), "should accept '" << show(name) << "'");
}

BOOST_AUTO_TEST_CASE(accepts_names_of_up_to_255_bytes, *boost::unit_test::timeout(10))
{
    BOOST_TEST(is_valid_file_name(std::string(255, 'a')));
    BOOST_TEST(is_valid_file_name(std::string(254, 'a') + "."));
    // 127 two-byte characters and one ASCII byte: 255 bytes but 128 characters.
    BOOST_TEST(is_valid_file_name(repeat("é", 127) + "a"));
    // 63 four-byte characters and three ASCII bytes: 255 bytes.
    BOOST_TEST(is_valid_file_name(repeat("🚀", 63) + "abc"));
}

BOOST_AUTO_TEST_CASE(rejects_empty_and_over_long_names, *boost::unit_test::timeout(10))
{
    BOOST_TEST(!is_valid_file_name(""));
    BOOST_TEST(!is_valid_file_name(std::string(256, 'a')));
    BOOST_TEST(!is_valid_file_name(std::string(10000, 'a')));
    // 128 characters, 256 bytes: the limit is bytes, not characters.
    BOOST_TEST(!is_valid_file_name(repeat("é", 128)));
}

BOOST_AUTO_TEST_CASE(rejects_dot_names_and_leading_dots, *boost::unit_test::timeout(10))
{
    for (const auto name : {"."sv, ".."sv, "..."sv, ".hidden"sv, ".."sv, "./a"sv, ". "sv, ".é"sv})
        BOOST_TEST(!is_valid_file_name(name), "should refuse '" << show(name) << "'");
}

BOOST_AUTO_TEST_CASE(rejects_separators, *boost::unit_test::timeout(10))
{
    for (const auto name : {"a/b"sv, "/abs"sv, "a/"sv, "/"sv, "a\\b"sv, "\\"sv, "C:\\x"sv, "..\\x"sv})
        BOOST_TEST(!is_valid_file_name(name), "should refuse '" << show(name) << "'");
}

BOOST_AUTO_TEST_CASE(rejects_every_ascii_control_character, *boost::unit_test::timeout(10))
{
    for (int c = 0; c < 0x20; ++c) {
        const std::string in_middle = "a" + std::string(1, static_cast<char>(c)) + "b";
        const std::string alone(1, static_cast<char>(c));
        BOOST_TEST(!is_valid_file_name(in_middle), "byte " << c << " in the middle");
        BOOST_TEST(!is_valid_file_name(alone), "byte " << c << " alone");
    }
    BOOST_TEST(!is_valid_file_name("a\x7f" "b"));
    BOOST_TEST(!is_valid_file_name("\x7f"));
    BOOST_TEST(!is_valid_file_name("a\0b"sv));
    BOOST_TEST(!is_valid_file_name("\0"sv));
    BOOST_TEST(!is_valid_file_name("name\0.txt"sv));
}

BOOST_AUTO_TEST_CASE(rejects_c1_control_characters, *boost::unit_test::timeout(10))
{
    // U+0080..U+009F are control characters (Unicode category Cc) too, e.g.
    // U+0085 NEXT LINE, which some tools treat as a line break.
    for (char32_t cp = 0x80; cp <= 0x9F; ++cp) {
        std::string name = "a";
        name += static_cast<char>(0xC0 | (cp >> 6));
        name += static_cast<char>(0x80 | (cp & 0x3F));
        name += "b";
        BOOST_TEST(!is_valid_file_name(name), "U+00" << std::hex << static_cast<unsigned>(cp));
    }
}

BOOST_AUTO_TEST_CASE(rejects_hostile_names, *boost::unit_test::timeout(10))
{
    const std::string_view hostile[] = {
        "../etc/passwd",
        "..\\x",
        "/abs",
        "/etc/passwd",
        "C:\\x",
        "a\0b"sv,
        "a\nb",
        "a\rb",
        "\tname",
        "x/../../y",
        "..%2f/x",
        "\xc0\xaf",             // overlong '/'
        "a\xc0\xaf" "b",
        "\xc0\xae\xc0\xae",     // overlong ".."
        "\xe0\x80\xaf",         // overlong '/', 3 bytes
        "\xf0\x80\x80\xaf",     // overlong '/', 4 bytes
        "\xed\xa0\x80",         // UTF-16 surrogate
        "a\xed\xbf\xbf",        // last surrogate
        "\xc3",                 // truncated 2-byte sequence
        "ab\xe2\x82",           // truncated 3-byte sequence
        "\xf0\x9f\x9a",         // truncated 4-byte sequence
        "\xf5\x80\x80\x80",     // lead byte past U+10FFFF
        "\xf4\x90\x80\x80",     // U+110000
        "\xf8\x88\x80\x80\x80", // 5-byte form
        "\xfe",
        "\xff",
        "a\x80",                // lone continuation byte
        "\xc3\x28",             // continuation replaced by ASCII
    };
    for (const auto name : hostile)
        BOOST_TEST(!is_valid_file_name(name), "should refuse '" << show(name) << "'");
    BOOST_TEST(!is_valid_file_name(std::string(256, 'x')));
}

// ---- UTF-8 -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(utf8_accepts_well_formed_text, *boost::unit_test::timeout(10))
{
    const std::string_view valid[] = {
        ""sv,
        "plain ascii"sv,
        "\0"sv,
        "\x7f"sv,
        "\xc2\x80"sv,         // U+0080, smallest 2-byte
        "\xdf\xbf"sv,         // U+07FF
        "\xe0\xa0\x80"sv,     // U+0800, smallest 3-byte
        "\xed\x9f\xbf"sv,     // U+D7FF, just below the surrogates
        "\xee\x80\x80"sv,     // U+E000, just above
        "\xef\xbf\xbf"sv,     // U+FFFF
        "\xf0\x90\x80\x80"sv, // U+10000, smallest 4-byte
        "\xf4\x8f\xbf\xbf"sv, // U+10FFFF
        "résumé 日本語 🚀"sv,
    };
    for (const auto text : valid)
        BOOST_TEST(is_valid_utf8(text), "should accept '" << show(text) << "'");
}

BOOST_AUTO_TEST_CASE(utf8_rejects_malformed_text, *boost::unit_test::timeout(10))
{
    const std::string_view invalid[] = {
        "\x80"sv,
        "\xbf"sv,
        "a\x80"sv,
        "\xc0\x80"sv,         // overlong NUL
        "\xc1\xbf"sv,         // overlong U+007F
        "\xc0\xaf"sv,
        "\xe0\x9f\xbf"sv,     // overlong U+07FF
        "\xf0\x8f\xbf\xbf"sv, // overlong U+FFFF
        "\xed\xa0\x80"sv,     // U+D800
        "\xed\xbf\xbf"sv,     // U+DFFF
        "\xed\xa0\xbd\xed\xb8\x80"sv, // CESU-8 surrogate pair
        "\xf4\x90\x80\x80"sv, // U+110000
        "\xf5\x80\x80\x80"sv,
        "\xf7\xbf\xbf\xbf"sv,
        "\xf8\x88\x80\x80\x80"sv,
        "\xfc\x84\x80\x80\x80\x80"sv,
        "\xfe"sv,
        "\xff"sv,
        "\xc3"sv,
        "\xe2\x82"sv,
        "\xf0\x9f\x9a"sv,
        "\xc3\x28"sv,
        "\xe2\x28\xa1"sv,
        "\xe2\x82\x28"sv,
        "\xf0\x28\x8c\xbc"sv,
        "ok\xc3"sv,
    };
    for (const auto text : invalid)
        BOOST_TEST(!is_valid_utf8(text), "should refuse '" << show(text) << "'");
}

BOOST_AUTO_TEST_CASE(utf8_checks_every_single_byte, *boost::unit_test::timeout(10))
{
    for (int b = 0; b < 256; ++b) {
        const std::string s(1, static_cast<char>(b));
        BOOST_TEST(is_valid_utf8(s) == (b < 0x80), "byte " << b);
    }
}

// ---- NFC: the form fxd stores names in --------------------------------------------------

BOOST_AUTO_TEST_CASE(nfc_composes_and_reorders_as_unicode_says, *boost::unit_test::timeout(10))
{
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"cafe\xcc\x81.txt"sv, "caf\xc3\xa9.txt"sv},              // e + U+0301 -> U+00E9
        {"caf\xc3\xa9.txt"sv, "caf\xc3\xa9.txt"sv},               // already NFC: unchanged
        {"\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab"sv, "\xed\x95\x9c"sv}, // Hangul jamo -> U+D55C
        {"a\xcc\x81\xcc\xa3"sv, "\xe1\xba\xa1\xcc\x81"sv},        // marks reordered by class, then composed
        {"a\xcc\xa3\xcc\x81"sv, "\xe1\xba\xa1\xcc\x81"sv},        // the other order: the same result
        {"\xe2\x84\xaa"sv, "K"sv},                               // KELVIN SIGN, a singleton -> K
        {"\xe0\xa5\x98"sv, "\xe0\xa4\x95\xe0\xa4\xbc"sv},          // U+0958 is excluded from composition
        {"\xef\xac\x81"sv, "\xef\xac\x81"sv},                     // U+FB01: NFC, not NFKC, keeps the ligature
        {"plain ascii.txt"sv, "plain ascii.txt"sv},
        {""sv, ""sv},
    };
    for (const auto& [raw, nfc] : cases) {
        const auto got = to_nfc(raw);
        BOOST_TEST_REQUIRE(got.has_value(), show(raw));
        BOOST_TEST(*got == nfc, show(raw) << " -> " << show(*got));
        BOOST_TEST((to_nfc(*got) == got), "NFC is stable: " << show(raw));
    }
}

BOOST_AUTO_TEST_CASE(nfc_refuses_what_is_not_utf8, *boost::unit_test::timeout(10))
{
    for (const auto bad : {"\xff"sv, "\xc0\xaf"sv, "\xed\xa0\x80"sv, "caf\xc3"sv, "\xf4\x90\x80\x80"sv})
        BOOST_TEST(!to_nfc(bad).has_value(), show(bad));
}

BOOST_AUTO_TEST_CASE(a_file_name_is_kept_in_nfc_and_judged_in_that_form, *boost::unit_test::timeout(10))
{
    BOOST_TEST((normalize_file_name("cafe\xcc\x81.txt") == std::optional<std::string>("caf\xc3\xa9.txt")));
    BOOST_TEST((normalize_file_name("caf\xc3\xa9.txt") == std::optional<std::string>("caf\xc3\xa9.txt")));
    BOOST_TEST((normalize_file_name("report.txt") == std::optional<std::string>("report.txt")));

    // 127 x "e + U+0301" + "a" is 382 bytes as sent, 255 in NFC: accepted.
    const auto composed = normalize_file_name(repeat("e\xcc\x81", 127) + "a");
    BOOST_TEST_REQUIRE(composed.has_value());
    BOOST_TEST(*composed == repeat("\xc3\xa9", 127) + "a");
    // 128 of them are 256 bytes in NFC: too long, however it was spelled.
    BOOST_TEST(!normalize_file_name(repeat("e\xcc\x81", 128)).has_value());
    // U+0344 is 2 bytes, its NFC 4: 255 bytes as sent, 509 in NFC.
    const std::string grows = repeat("\xcd\x84", 127) + "a";
    BOOST_TEST(is_valid_file_name(grows));
    BOOST_TEST(!normalize_file_name(grows).has_value());
    // Far longer than any NFC form of 255 bytes can come from: refused before normalising.
    BOOST_TEST(!normalize_file_name(repeat("e\xcc\x81", 400)).has_value());

    // Every other rule holds after NFC too.
    for (const auto bad : {""sv, "."sv, ".\xcc\x81"sv, "a/e\xcc\x81"sv, "e\xcc\x81\\x"sv, "a\nb"sv, "\xc2\x85"sv,
                           "\xff"sv, "a\0b"sv})
        BOOST_TEST(!normalize_file_name(bad).has_value(), show(bad));
}

// ---- User names and passwords ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(accepts_user_names_of_the_allowed_alphabet, *boost::unit_test::timeout(10))
{
    const std::string_view valid[] = {
        "a", "z", "0", "9", "alice", "bob_smith", "j.doe", "x-y", "9lives", "a_", "a.", "a-", "a..b",
        "abcdefghijklmnopqrstuvwxyz012345",
    };
    for (const auto name : valid)
        BOOST_TEST(is_valid_user_name(name), "should accept '" << name << "'");
    BOOST_TEST(is_valid_user_name(std::string(32, 'a')));
}

BOOST_AUTO_TEST_CASE(rejects_user_names_outside_the_rules, *boost::unit_test::timeout(10))
{
    const std::string_view invalid[] = {
        ""sv, "A"sv, "Alice"sv, "aliCe"sv, "_a"sv, ".a"sv, "-a"sv, "_"sv, "."sv, ".."sv, "a b"sv, "a/b"sv,
        "a\\b"sv, "a@b"sv, "a+b"sv, "é"sv, "al\xc3\xa9"sv, "a\0b"sv, "a\n"sv, " a"sv, "a:b"sv,
    };
    for (const auto name : invalid)
        BOOST_TEST(!is_valid_user_name(name), "should refuse '" << show(name) << "'");
    BOOST_TEST(!is_valid_user_name(std::string(33, 'a')));
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const bool allowed = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        const std::string name = "a" + std::string(1, ch);
        BOOST_TEST(is_valid_user_name(name) == allowed, "byte " << c);
    }
}

BOOST_AUTO_TEST_CASE(passwords_are_8_to_1024_bytes, *boost::unit_test::timeout(10))
{
    BOOST_TEST(!is_valid_password(""));
    BOOST_TEST(!is_valid_password(std::string(7, 'p')));
    BOOST_TEST(is_valid_password(std::string(8, 'p')));
    BOOST_TEST(is_valid_password(std::string(1024, 'p')));
    BOOST_TEST(!is_valid_password(std::string(1025, 'p')));
    BOOST_TEST(!is_valid_password(std::string(100000, 'p')));
    // Bytes, not characters: four two-byte characters make 8 bytes.
    BOOST_TEST(is_valid_password("\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"));
    BOOST_TEST(!is_valid_password("\xc3\xa4\xc3\xa4\xc3\xa4" "a"));
    BOOST_TEST(is_valid_password("pass word with spaces"));
    BOOST_TEST(is_valid_password(std::string("12345678\0", 9)));
}

// ---- Digests ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_sha256_is_64_lowercase_hex_digits, *boost::unit_test::timeout(10))
{
    const std::string good = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    BOOST_TEST(is_sha256_hex(good));
    BOOST_TEST(is_sha256_hex(std::string(64, '0')));
    BOOST_TEST(is_sha256_hex(std::string(64, 'f')));
    BOOST_TEST(!is_sha256_hex(""));
    BOOST_TEST(!is_sha256_hex(good.substr(1)));
    BOOST_TEST(!is_sha256_hex(good + "0"));
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const bool allowed = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
        std::string digest = good;
        digest[17] = ch;
        BOOST_TEST(is_sha256_hex(digest) == allowed, "byte " << c);
    }
}

BOOST_AUTO_TEST_SUITE_END()
