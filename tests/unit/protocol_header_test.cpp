// The header parser's two paths: the flat scanner takes the common shapes and
// reads them in place; everything else goes to Boost.JSON. Whichever path a
// text takes, the reading must be the one Boost.JSON gives (same_reading).

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/header.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

using namespace fxd::protocol;
namespace utf = boost::unit_test;

namespace {

enum class path { fast, general };

struct reading {
    bool ok = false;
    errc error{};
    request_header header;
};

/// Parses text with the fast path allowed and with Boost.JSON alone; both
/// must agree. Returns the first, whose parser stays alive in `parser`.
reading read_both(header_parser& parser, std::string_view text)
{
    reading fast;
    fast.ok = parser.parse(text, fast.header, fast.error);

    header_parser reference;
    reading general;
    general.ok = reference.parse_general(text, general.header, general.error);
    BOOST_TEST_CONTEXT(text) {
        BOOST_TEST(fast.ok == general.ok);
        if (fast.ok && general.ok) {
            BOOST_TEST(general.header.fields != nullptr);
            BOOST_TEST(same_reading(fast.header, general.header));
        } else if (!fast.ok && !general.ok) {
            BOOST_TEST((fast.error == general.error));
        }
    }
    return fast;
}

path path_of(const reading& r)
{
    return r.header.fields ? path::general : path::fast;
}

/// An accepted header, read by the expected path.
request_header accepted(header_parser& parser, std::string_view text, path expected)
{
    const auto r = read_both(parser, text);
    BOOST_TEST_CONTEXT(text) {
        BOOST_TEST_REQUIRE(r.ok);
        BOOST_TEST((path_of(r) == expected));
    }
    return r.header;
}

void refused(std::string_view text)
{
    header_parser parser;
    const auto r = read_both(parser, text);
    BOOST_TEST_CONTEXT(text) {
        BOOST_TEST(!r.ok);
        BOOST_TEST((r.error == errc::bad_header));
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_header)

BOOST_AUTO_TEST_CASE(the_common_shapes_take_the_fast_path, *utf::timeout(10))
{
    header_parser parser;
    auto h = accepted(parser, R"({"op":"echo","size":64,"id":7})", path::fast);
    BOOST_TEST((h.operation == op::echo));
    BOOST_TEST(h.op_name == "echo");
    BOOST_TEST(h.size == 64u);
    BOOST_REQUIRE(h.id);
    BOOST_TEST(h.id->is_int64());
    BOOST_TEST(h.id->get_int64() == 7);
    BOOST_TEST(h.members.size() == 3u);

    // Python's json.dumps puts a space after ':' and ','.
    h = accepted(parser, R"({"op": "upload", "id": "r-1", "name": "a.txt", "size": 10, "mtime": 1700000000})",
                 path::fast);
    BOOST_TEST((h.operation == op::upload));
    BOOST_TEST(h.id->as_string() == "r-1");
    BOOST_TEST(string_field(h, "name").value() == "a.txt");
    BOOST_TEST(mtime_field(h).value() == 1700000000);
    BOOST_TEST(!uint_field(h, "name"));
    BOOST_TEST(!string_field(h, "size"));
    BOOST_TEST(!has_field(h, "offset"));

    h = accepted(parser, R"({"op":"login","user":"bob","password":"pw","remember":true})", path::fast);
    BOOST_TEST(bool_field(h, "remember").value());
    BOOST_TEST(!bool_field(h, "user"));
    BOOST_TEST(!h.id);

    h = accepted(parser, " \t\r\n{ } \n", path::fast);
    BOOST_TEST(!h.operation);
    BOOST_TEST(h.members.empty());
    accepted(parser, R"({"op":"nonsense","":"empty key","size":0})", path::fast);
}

BOOST_AUTO_TEST_CASE(ids_keep_the_kind_boost_json_gives_them, *utf::timeout(10))
{
    header_parser parser;
    auto h = accepted(parser, R"({"op":"ping","id":9223372036854775807})", path::fast);
    BOOST_TEST(h.id->is_int64());
    h = accepted(parser, R"({"op":"ping","id":9223372036854775808})", path::fast);
    BOOST_TEST(h.id->is_uint64());
    h = accepted(parser, R"({"op":"ping","id":true})", path::fast);
    BOOST_TEST(!h.id);
    BOOST_TEST((h.field_error == errc::bad_request));
    h = accepted(parser, R"({"op":"ping","id":null})", path::general);
    BOOST_TEST((h.field_error == errc::bad_request));
    h = accepted(parser, R"({"op":"ping","id":-3})", path::general);
    BOOST_TEST(h.id->as_int64() == -3);
    const std::string long_id(300, 'x');
    h = accepted(parser, R"({"op":"ping","id":")" + long_id + "\"}", path::fast);
    BOOST_TEST(h.id->as_string() == long_id);
}

BOOST_AUTO_TEST_CASE(escapes_unicode_nesting_and_duplicates_go_to_boost_json, *utf::timeout(10))
{
    header_parser parser;
    auto h = accepted(parser, R"({"op":"ec\u0068o","size":1})", path::general);
    BOOST_TEST((h.operation == op::echo));
    h = accepted(parser, R"({"op":"upload","name":"caf\u00e9 \"x\"","size":1})", path::general);
    BOOST_TEST(string_field(h, "name").value() == "café \"x\"");
    h = accepted(parser, "{\"op\":\"stat\",\"name\":\"\xc3\xa9t\xc3\xa9\"}", path::general);
    BOOST_TEST(string_field(h, "name").value() == "\xc3\xa9t\xc3\xa9");
    accepted(parser, R"({"op":"echo","k":{"a":[1,2]},"size":0})", path::general);
    accepted(parser, R"({"op":"ping","note":null})", path::general);
    // Which duplicate counts is Boost.JSON's rule, so duplicates go there.
    h = accepted(parser, R"({"op":"ping","op":"echo","size":1})", path::general);
    accepted(parser, R"({"size":1,"size":2})", path::general);
    // More members than the fast path holds.
    accepted(parser, R"({"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9})", path::general);
    accepted(parser, R"({"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8})", path::fast);
}

BOOST_AUTO_TEST_CASE(numbers_past_the_fast_path_read_as_boost_json_reads_them, *utf::timeout(10))
{
    header_parser parser;
    auto h = accepted(parser, R"({"op":"echo","size":9999999999999999999})", path::fast);
    BOOST_TEST(h.size == 9999999999999999999ull);
    h = accepted(parser, R"({"op":"echo","size":18446744073709551615})", path::general);
    BOOST_TEST(h.size == std::numeric_limits<std::uint64_t>::max());
    h = accepted(parser, R"({"op":"echo","size":0})", path::fast);
    BOOST_TEST(h.size == 0u);
    // -0 is an integer zero to Boost.JSON; the fast path leaves signs to it.
    h = accepted(parser, R"({"op":"echo","size":-0})", path::general);
    BOOST_TEST(h.size == 0u);
    // A float or an integer past 64 bits is not a size, and not an offset.
    refused(R"({"op":"echo","size":18446744073709551616})");
    refused(R"({"op":"echo","size":1e3})");
    refused(R"({"op":"echo","size":1.0})");
    refused(R"({"op":"echo","size":-1})");
    h = accepted(parser, R"({"op":"upload","name":"a","offset":1e3,"size":5})", path::general);
    BOOST_TEST(has_field(h, "offset"));
    BOOST_TEST(!uint_field(h, "offset"));
}

BOOST_AUTO_TEST_CASE(what_json_refuses_is_refused_either_way, *utf::timeout(10))
{
    refused(R"({"op":"echo","size":"64"})"); // a size that is not a number: the fast path's own refusal
    refused(R"({"op":"echo","size":true})");
    refused(R"({"op":"echo","size":01})");
    refused(R"({"op":"ping",})");
    refused(R"({"op" "ping"})");
    refused(R"({"op":"ping"}x)");
    refused(R"({"op":"ping"}{})");
    refused(R"({"op":"ping")");
    refused(R"({"op":"ping","x":tru})");
    refused(R"({"op":"ping","x":truex})");
    refused(R"({op:"ping"})");
    refused("{\"op\":\"pi\nng\"}"); // a raw control character in a string
    refused("{\"op\":\"ping\"}\v");  // not JSON whitespace
    refused("\xef\xbb\xbf{}");       // a byte order mark
    refused("{\"name\":\"\xff\"}");  // not UTF-8
    refused("");
    refused("[]");
    refused("7");
}

BOOST_AUTO_TEST_CASE(a_held_copy_reads_the_same, *utf::timeout(10))
{
    header_parser parser;
    const auto h = accepted(parser, R"({"op":"login","id":"x","user":"bob","remember":false,"n":5})", path::fast);
    const auto copy = fields_copy(h);
    BOOST_TEST(copy.size() == 5u);
    BOOST_TEST(copy.at("remember").is_bool());
    BOOST_TEST(copy.at("n").is_int64());
    request_header held = h;
    held.fields = &copy;
    held.members = {};
    BOOST_TEST(same_reading(held, h));
    BOOST_TEST(!bool_field(held, "remember").value());
}

BOOST_AUTO_TEST_CASE(the_fast_reading_outlives_the_text_it_came_from, *utf::timeout(10))
{
    // The decoder may move its read buffer while a header is in use (to
    // gather a large body), so the members must not view the text given.
    header_parser parser;
    std::string text = R"({"op":"upload","name":"kept.txt","id":"r-9","size":3})";
    request_header h;
    errc error{};
    BOOST_TEST_REQUIRE(parser.parse(text, h, error));
    BOOST_TEST_REQUIRE(!h.fields);
    text.assign(text.size(), '#');
    BOOST_TEST(h.op_name == "upload");
    BOOST_TEST(string_field(h, "name").value() == "kept.txt");
    BOOST_TEST(h.id->as_string() == "r-9");
}

BOOST_AUTO_TEST_CASE(a_depth_limit_of_zero_refuses_every_object, *utf::timeout(10))
{
    header_parser parser(0);
    request_header h;
    errc error{};
    BOOST_TEST(!parser.parse(R"({"op":"ping"})", h, error));
    BOOST_TEST((error == errc::bad_header));
}

BOOST_AUTO_TEST_SUITE_END()
