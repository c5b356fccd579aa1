#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/ops.hpp>
#include <fxd/protocol/reply.hpp>
#include <fxd/services/echo.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using namespace fxd::protocol;
namespace json = boost::json;

namespace {

struct parsed_reply {
    json::object header;
    std::string header_text;
    std::string body;
};

/// Splits a byte string of reply frames with the protocol's reply decoders:
/// scan_reply finds each frame's end, decode_reply takes it apart, and the two
/// must agree.
std::vector<parsed_reply> split_replies(std::string_view wire)
{
    std::vector<parsed_reply> replies;
    while (!wire.empty()) {
        const auto extent = scan_reply(wire);
        BOOST_REQUIRE(extent.has_value());
        BOOST_REQUIRE_GE(wire.size(), extent->frame_bytes());
        const auto frame = wire.substr(0, static_cast<std::size_t>(extent->frame_bytes()));
        auto decoded = decode_reply(frame);
        BOOST_REQUIRE_EQUAL(decoded.size, extent->body_bytes);
        parsed_reply r;
        r.header = std::move(decoded.header);
        r.header_text = std::string(frame.substr(prefix_bytes, extent->header_bytes - prefix_bytes));
        r.body = std::string(decoded.body);
        replies.push_back(std::move(r));
        wire.remove_prefix(frame.size());
    }
    return replies;
}

parsed_reply single_reply(std::string_view wire)
{
    auto all = split_replies(wire);
    BOOST_REQUIRE_EQUAL(all.size(), 1u);
    return all.front();
}

std::string json_string(std::string_view text)
{
    std::string out;
    append_json_string(out, text);
    return out;
}

/// UTF-8 encoding of one code point.
std::string utf8(char32_t cp)
{
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

bool has_raw_control_byte(std::string_view s)
{
    for (const char c : s) {
        if (static_cast<unsigned char>(c) < 0x20)
            return true;
    }
    return false;
}

const std::string tricky_id = "q\"uo\"te \\back\\slash \x01\x1f\n\r\t \xc3\xa9 \xf0\x9f\x9a\x80 end";

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_encoder)

// ---- reply_writer ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(ok_reply_decodes_with_every_field_kind, *boost::unit_test::timeout(10))
{
    std::string out;
    const json::value id = 42;
    reply_writer w(out);
    w.begin("echo", &id, true);
    w.field("name", std::string_view{"résumé.pdf"});
    w.field("cstr", "plain");
    w.field("neg", std::int64_t{-3});
    w.field("small", 5);
    w.field("big", std::numeric_limits<std::uint64_t>::max());
    w.field("min", std::numeric_limits<std::int64_t>::min());
    w.field("yes", true);
    w.field("no", false);
    w.field_null("user");
    w.field_raw("raw", R"([1,{"a":"b"}])");
    w.field("tree", json::value{{"k", json::array{1, "two", nullptr}}});
    w.end(5);
    out += "HELLO";

    const auto r = single_reply(out);
    const auto& h = r.header;
    BOOST_TEST(h.at("status").as_string() == "ok");
    BOOST_TEST(h.at("op").as_string() == "echo");
    BOOST_TEST(h.at("id").as_int64() == 42);
    BOOST_TEST(h.at("name").as_string() == "résumé.pdf");
    BOOST_TEST(h.at("cstr").as_string() == "plain");
    BOOST_TEST(h.at("neg").as_int64() == -3);
    BOOST_TEST(h.at("small").as_int64() == 5);
    BOOST_TEST(h.at("big").as_uint64() == std::numeric_limits<std::uint64_t>::max());
    BOOST_TEST(h.at("min").as_int64() == std::numeric_limits<std::int64_t>::min());
    BOOST_TEST(h.at("yes").as_bool() == true);
    BOOST_TEST(h.at("no").as_bool() == false);
    BOOST_TEST(h.at("user").is_null());
    BOOST_TEST((h.at("raw") == json::parse(R"([1,{"a":"b"}])")));
    BOOST_TEST((h.at("tree") == json::parse(R"({"k":[1,"two",null]})")));
    BOOST_TEST(h.at("size").as_int64() == 5);
    BOOST_TEST(r.body == "HELLO");
    BOOST_TEST(h.size() == 15u);
}

BOOST_AUTO_TEST_CASE(size_is_always_present_and_matches_the_body, *boost::unit_test::timeout(10))
{
    for (const std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{70000},
                                  std::numeric_limits<std::uint64_t>::max()}) {
        std::string out;
        reply_writer w(out);
        w.begin("download", nullptr, true);
        w.end(n);
        // Only the header: the body is the caller's to append.
        const std::uint32_t len = load_u32_be(reinterpret_cast<const unsigned char*>(out.data()));
        BOOST_REQUIRE_EQUAL(out.size(), prefix_bytes + len);
        const auto h = json::parse(std::string_view(out).substr(prefix_bytes)).as_object();
        BOOST_TEST(h.at("size").to_number<std::uint64_t>() == n);
    }
}

BOOST_AUTO_TEST_CASE(error_reply_has_code_message_and_empty_body, *boost::unit_test::timeout(10))
{
    std::string out;
    const json::value id = "abc";
    reply_writer(out).error("login", &id, errc::bad_credentials, "wrong \"user\" or password\n");
    const auto r = single_reply(out);
    BOOST_TEST(r.header.at("status").as_string() == "error");
    BOOST_TEST(r.header.at("op").as_string() == "login");
    BOOST_TEST(r.header.at("id").as_string() == "abc");
    BOOST_TEST(r.header.at("code").as_string() == "bad_credentials");
    BOOST_TEST(r.header.at("message").as_string() == "wrong \"user\" or password\n");
    BOOST_TEST(r.header.at("size").as_int64() == 0);
    BOOST_TEST(r.body.empty());
}

BOOST_AUTO_TEST_CASE(op_and_id_are_omitted_when_absent, *boost::unit_test::timeout(10))
{
    std::string out;
    reply_writer(out).error("", nullptr, errc::unknown_op, "what?");
    const auto r = single_reply(out);
    BOOST_TEST(!r.header.contains("op"));
    BOOST_TEST(!r.header.contains("id"));
    BOOST_TEST(r.header.at("code").as_string() == "unknown_op");
    BOOST_TEST(r.header.at("status").as_string() == "error");
    BOOST_TEST(r.header.at("size").as_int64() == 0);
}

BOOST_AUTO_TEST_CASE(id_is_copied_verbatim, *boost::unit_test::timeout(10))
{
    const json::value ids[] = {
        json::value(std::int64_t{0}),
        json::value(std::int64_t{42}),
        json::value(std::int64_t{-1}),
        json::value(std::numeric_limits<std::int64_t>::min()),
        json::value(std::numeric_limits<std::int64_t>::max()),
        json::value(std::numeric_limits<std::uint64_t>::max()),
        json::value(""),
        json::value(tricky_id),
        json::value(std::string("nul\0inside", 10)),
    };
    for (const auto& id : ids) {
        BOOST_TEST_CONTEXT("id " << id) {
            std::string out;
            reply_writer w(out);
            w.begin("ping", &id, true);
            w.end(0);
            const auto r = single_reply(out);
            BOOST_TEST(!has_raw_control_byte(r.header_text));
            BOOST_TEST((r.header.at("id") == id));
        }
    }
}

BOOST_AUTO_TEST_CASE(ids_from_decoded_requests_come_back_unchanged, *boost::unit_test::timeout(10))
{
    const std::string_view id_texts[] = {
        "7", "-7", "18446744073709551615", "-9223372036854775808",
        R"("plain")", R"("q\"uote\\ \u0001 \u001f \n \u00e9 \ud83d\ude80")", R"("日本語")",
    };
    for (const auto text : id_texts) {
        BOOST_TEST_CONTEXT("id " << text) {
            std::string request;
            append_request(request, R"({"op":"ping","id":)" + std::string(text) + "}");
            decoder d;
            d.feed({request.data(), request.size()});
            BOOST_REQUIRE((d.next() == decoder::event::header));
            BOOST_REQUIRE(d.header().id != nullptr);

            std::string out;
            reply_writer w(out);
            w.begin(d.header().op_name, d.header().id, true);
            w.end(0);
            const auto r = single_reply(out);
            BOOST_TEST((r.header.at("id") == json::parse(text)));
            BOOST_TEST(r.header.at("op").as_string() == "ping");
        }
    }
}

BOOST_AUTO_TEST_CASE(replies_appended_back_to_back_split_cleanly, *boost::unit_test::timeout(10))
{
    std::string out = "";
    const json::value one = 1;
    const json::value two = "two";
    {
        reply_writer w(out);
        w.begin("echo", &one, true);
        w.end(3);
        out += "ABC";
    }
    reply_writer(out).error("upload", &two, errc::quota_exceeded, "full");
    {
        reply_writer w(out);
        w.begin("list", nullptr, true);
        w.field("count", std::uint64_t{2});
        w.end(7);
        out += "[1,2,3]";
    }
    const auto replies = split_replies(out);
    BOOST_REQUIRE_EQUAL(replies.size(), 3u);
    BOOST_TEST(replies[0].header.at("id").as_int64() == 1);
    BOOST_TEST(replies[0].body == "ABC");
    BOOST_TEST(replies[1].header.at("code").as_string() == "quota_exceeded");
    BOOST_TEST(replies[1].header.at("id").as_string() == "two");
    BOOST_TEST(replies[1].body.empty());
    BOOST_TEST(replies[2].header.at("op").as_string() == "list");
    BOOST_TEST(replies[2].header.at("count").as_int64() == 2);
    BOOST_TEST(replies[2].body == "[1,2,3]");
}

BOOST_AUTO_TEST_CASE(reply_writer_appends_after_existing_bytes, *boost::unit_test::timeout(10))
{
    std::string out = "already here";
    reply_writer w(out);
    w.begin("ping", nullptr, true);
    w.end(0);
    BOOST_TEST(out.substr(0, 12) == "already here");
    const auto r = single_reply(std::string_view(out).substr(12));
    BOOST_TEST(r.header.at("op").as_string() == "ping");
}

// ---- Error codes -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(error_codes_have_the_contract_names, *boost::unit_test::timeout(10))
{
    const std::string_view contract[] = {
        "bad_frame", "header_too_large", "bad_header", "unknown_op", "bad_request", "body_too_large",
        "unauthorized", "user_exists", "bad_credentials", "rate_limited", "registration_closed",
        "bad_name", "not_found", "bad_offset", "checksum_mismatch", "quota_exceeded", "storage_full",
        "busy", "unsupported", "shutting_down", "timeout", "internal", "tls_required", "unavailable",
        "storage_unavailable",
    };
    BOOST_REQUIRE_EQUAL(std::size(contract), errc_count);
    for (std::size_t i = 0; i < errc_count; ++i) {
        const auto code = static_cast<errc>(i);
        BOOST_TEST(to_string(code) == contract[i]);
        std::string out;
        reply_writer(out).error("ping", nullptr, code, "m");
        BOOST_TEST(single_reply(out).header.at("code").as_string() == contract[i]);
    }
}

// ---- append_json_string ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(json_string_escapes_quotes_backslashes_and_controls, *boost::unit_test::timeout(10))
{
    BOOST_TEST(json_string("") == R"("")");
    BOOST_TEST(json_string("abc") == R"("abc")");
    BOOST_TEST(json_string("\"") == R"("\"")");
    BOOST_TEST(json_string("\\") == R"("\\")");
    BOOST_TEST(json_string("a\"b\\c") == R"("a\"b\\c")");
    BOOST_TEST(json_string("\n\r\t") == R"("\n\r\t")");
    BOOST_TEST(json_string("\x01") == R"("\u0001")");
    BOOST_TEST(json_string("\x1f") == R"("\u001f")");
    BOOST_TEST(json_string(std::string_view("\0", 1)) == R"("\u0000")");
    BOOST_TEST(json_string("\x08\x0c") == R"("\u0008\u000c")");
    BOOST_TEST(json_string("é🚀") == "\"é🚀\"");
    BOOST_TEST(json_string("/") == R"("/")");
}

BOOST_AUTO_TEST_CASE(json_string_leaves_no_raw_control_byte, *boost::unit_test::timeout(10))
{
    for (int c = 0; c < 0x20; ++c) {
        const std::string in = "x" + std::string(1, static_cast<char>(c)) + "y";
        const std::string out = json_string(in);
        BOOST_TEST(!has_raw_control_byte(out), "byte " << c);
    }
}

BOOST_AUTO_TEST_CASE(json_string_round_trips_every_code_point_up_to_ff, *boost::unit_test::timeout(10))
{
    std::string all;
    for (char32_t cp = 0; cp <= 0xFF; ++cp) {
        const std::string text = utf8(cp);
        all += text;
        const std::string encoded = json_string(text);
        const json::value back = json::parse(encoded);
        BOOST_REQUIRE(back.is_string());
        BOOST_TEST((std::string_view(back.get_string()) == text), "code point " << static_cast<std::uint32_t>(cp));
    }
    const json::value back = json::parse(json_string(all));
    BOOST_TEST((std::string_view(back.as_string()) == all));
}

BOOST_AUTO_TEST_CASE(json_string_round_trips_wider_unicode, *boost::unit_test::timeout(10))
{
    std::string text;
    for (const char32_t cp : {char32_t{0x7FF}, char32_t{0x800}, char32_t{0x2028}, char32_t{0x2029}, char32_t{0xD7FF},
                              char32_t{0xE000}, char32_t{0xFFFD}, char32_t{0xFFFF}, char32_t{0x10000}, char32_t{0x1F680},
                              char32_t{0x10FFFF}})
        text += utf8(cp);
    text += tricky_id;
    const json::value back = json::parse(json_string(text));
    BOOST_TEST((std::string_view(back.as_string()) == text));
}

BOOST_AUTO_TEST_CASE(json_string_appends_without_touching_what_is_there, *boost::unit_test::timeout(10))
{
    std::string out = "{\"k\":";
    append_json_string(out, "v\"");
    out += '}';
    BOOST_TEST(out == R"({"k":"v\""})");
    BOOST_TEST(json::parse(out).at("k").as_string() == "v\"");
}

// ---- append_request ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(append_request_writes_a_big_endian_prefix, *boost::unit_test::timeout(10))
{
    const std::string header = R"({"op":"echo","size":3})";
    std::string out;
    append_request(out, header, std::span<const char>("abc", 3));
    BOOST_REQUIRE_EQUAL(out.size(), prefix_bytes + header.size() + 3);
    BOOST_TEST(static_cast<unsigned char>(out[0]) == 0u);
    BOOST_TEST(static_cast<unsigned char>(out[1]) == 0u);
    BOOST_TEST(static_cast<unsigned char>(out[2]) == 0u);
    BOOST_TEST(static_cast<unsigned char>(out[3]) == header.size());
    BOOST_TEST(out.substr(prefix_bytes, header.size()) == header);
    BOOST_TEST(out.substr(prefix_bytes + header.size()) == "abc");
}

BOOST_AUTO_TEST_CASE(u32_big_endian_round_trips, *boost::unit_test::timeout(10))
{
    for (const std::uint32_t v : {0u, 1u, 0x100u, 0x01020304u, 0x80000000u, 0xFFFFFFFFu}) {
        std::array<unsigned char, 4> b{};
        store_u32_be(b.data(), v);
        BOOST_TEST(load_u32_be(b.data()) == v);
        BOOST_TEST(b[0] == (v >> 24));
        BOOST_TEST(b[3] == (v & 0xFF));
    }
}

BOOST_AUTO_TEST_CASE(append_request_round_trips_through_the_decoder, *boost::unit_test::timeout(10))
{
    std::string body(300, '\0');
    for (std::size_t i = 0; i < body.size(); ++i)
        body[i] = static_cast<char>(i & 0xFF);
    std::string header = R"({"op":"echo","id":"r-)";
    header += "\xc3\xa9";
    header += R"(","size":300})";

    std::string wire;
    append_request(wire, header, {body.data(), body.size()});
    append_request(wire, R"({"op":"ping","id":5})");

    decoder d;
    d.feed({wire.data(), wire.size()});
    BOOST_REQUIRE((d.next() == decoder::event::header));
    BOOST_TEST((d.header().operation == op::echo));
    BOOST_TEST(d.header().id->as_string() == "r-é");
    BOOST_TEST(d.header().size == 300u);
    d.buffer_body();
    BOOST_REQUIRE((d.next() == decoder::event::frame));
    BOOST_TEST((std::string(d.body().data(), d.body().size()) == body));
    BOOST_REQUIRE((d.next() == decoder::event::header));
    BOOST_TEST((d.header().operation == op::ping));
    BOOST_TEST(d.header().id->as_int64() == 5);
    d.buffer_body();
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST((d.next() == decoder::event::need_more));
}

// ---- echo service ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(uppercases_ascii_only, *boost::unit_test::timeout(10))
{
    std::array<char, 256> from{};
    for (int i = 0; i < 256; ++i)
        from[i] = static_cast<char>(i);
    std::array<char, 256> to{};
    fxd::services::upper_ascii(from, to);
    for (int i = 0; i < 256; ++i) {
        const int want = (i >= 'a' && i <= 'z') ? i - 32 : i;
        BOOST_TEST(static_cast<unsigned char>(to[i]) == want, "byte " << i);
    }
}

BOOST_AUTO_TEST_CASE(uppercases_every_length_through_blocks_and_tail, *boost::unit_test::timeout(10))
{
    // upper_ascii works in 16-byte blocks, then byte by byte: every split of the two.
    for (std::size_t n = 0; n <= 50; ++n) {
        std::string from;
        for (std::size_t i = 0; i < n; ++i)
            from += static_cast<char>("az{`@A\xe1q"[i % 8]);
        std::string to(n, '#');
        fxd::services::upper_ascii({from.data(), n}, {to.data(), n});
        std::string want = from;
        for (auto& c : want)
            if (c >= 'a' && c <= 'z')
                c = static_cast<char>(c - 32);
        BOOST_TEST(to == want, "length " << n);
    }
}

BOOST_AUTO_TEST_CASE(uppercases_in_place, *boost::unit_test::timeout(10))
{
    std::string s = "hello, Wörld! \xff\x00z";
    s += std::string(1, '\0') + "az{`";
    const std::string original = s;
    fxd::services::upper_ascii({s.data(), s.size()}, {s.data(), s.size()});
    std::string want = original;
    for (auto& c : want)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 32);
    BOOST_TEST(s == want);
    BOOST_TEST(s.substr(0, 5) == "HELLO");
}

BOOST_AUTO_TEST_CASE(echo_reply_carries_the_uppercased_body_and_the_id, *boost::unit_test::timeout(10))
{
    std::string request;
    std::string body;
    for (int i = 0; i < 256; ++i)
        body += static_cast<char>(i);
    append_request(request, R"({"op":"echo","id":"e1","size":256})", {body.data(), body.size()});
    decoder d;
    d.feed({request.data(), request.size()});
    BOOST_REQUIRE((d.next() == decoder::event::header));
    d.buffer_body();
    BOOST_REQUIRE((d.next() == decoder::event::frame));

    std::string out;
    fxd::services::serve_echo(d.header(), d.body(), out);
    const auto r = single_reply(out);
    BOOST_TEST(r.header.at("status").as_string() == "ok");
    BOOST_TEST(r.header.at("op").as_string() == "echo");
    BOOST_TEST(r.header.at("id").as_string() == "e1");
    BOOST_TEST(r.header.at("size").as_int64() == 256);
    BOOST_REQUIRE_EQUAL(r.body.size(), 256u);
    for (int i = 0; i < 256; ++i) {
        const int want = (i >= 'a' && i <= 'z') ? i - 32 : i;
        BOOST_TEST(static_cast<unsigned char>(r.body[i]) == want, "byte " << i);
    }
}

BOOST_AUTO_TEST_CASE(the_ok_reply_header_shortcut_writes_what_reply_writer_writes, *boost::unit_test::timeout(10))
{
    const std::vector<json::value> ids = {
        json::value(nullptr), // stands for no id
        json::value(7),
        json::value(-5),
        json::value(std::numeric_limits<std::int64_t>::min()),
        json::value(std::numeric_limits<std::uint64_t>::max()),
        json::value("r-1"),
        json::value(""),
        json::value("quote \" and back\\slash"),
        json::value("\xc3\xa9"),
        json::value(std::string(64, 'i')),
        json::value(std::string(65, 'i')),
        json::value(std::string(5000, 'i')),
    };
    const std::vector<std::string> ops = {"echo", "ping", "", "o\"p", std::string(65, 'o')};
    for (const auto& op : ops) {
        for (const auto& id : ids) {
            for (const std::uint64_t size : {std::uint64_t{0}, std::uint64_t{64}, std::numeric_limits<std::uint64_t>::max()}) {
                const json::value* id_ptr = id.is_null() ? nullptr : &id;
                std::string want = "before";
                reply_writer w(want);
                w.begin(op, id_ptr, true);
                w.end(size);
                std::string got = "before";
                append_ok_reply_header(got, op, id_ptr, size);
                BOOST_TEST(got == want, "op " << op << ", id " << json::serialize(id) << ", size " << size);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
