// Wire rules that sit beside the codecs: how long a request's body is, and
// how much a UDP reply may outgrow its request.

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/udp.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

using namespace fxd::protocol;
namespace utf = boost::unit_test;

namespace {

/// request_body_length of the header parsed from json_text.
std::uint64_t body_length_of(std::string_view json_text)
{
    header_parser parser;
    request_header header;
    errc error{};
    BOOST_REQUIRE_MESSAGE(parser.parse(json_text, header, error), json_text);
    return request_body_length(header);
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_rules)

BOOST_AUTO_TEST_CASE(a_body_is_size_bytes_long, *utf::timeout(10))
{
    BOOST_TEST(body_length_of(R"({"op":"echo","size":12})") == 12u);
    BOOST_TEST(body_length_of(R"({"op":"ping"})") == 0u);
    BOOST_TEST(body_length_of(R"({"op":"nonsense","size":5})") == 5u);
    // Only upload resumes: an offset on any other op changes nothing.
    BOOST_TEST(body_length_of(R"({"op":"download","name":"a","offset":4,"size":10})") == 10u);
    BOOST_TEST(body_length_of(R"({"op":"echo","offset":4,"size":10})") == 10u);
}

BOOST_AUTO_TEST_CASE(a_resumed_upload_sends_the_rest_after_its_offset, *utf::timeout(10))
{
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100})") == 100u);
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100,"offset":0})") == 100u);
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100,"offset":40})") == 60u);
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100,"offset":100})") == 0u);
    // An offset past the size is refused (bad_offset) with no body to read.
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100,"offset":101})") == 0u);
    // An offset that is not a non-negative integer counts as none (admit() refuses it).
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100,"offset":-1})") == 100u);
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":100,"offset":"40"})") == 100u);
    BOOST_TEST(body_length_of(R"({"op":"upload","name":"a","size":18446744073709551615,"offset":1})") ==
               std::numeric_limits<std::uint64_t>::max() - 1);
}

BOOST_AUTO_TEST_CASE(a_udp_reply_may_be_twice_its_request_and_no_more, *utf::timeout(10))
{
    static_assert(udp_reply_within_bound(0, 0));
    static_assert(!udp_reply_within_bound(0, 1)); // an empty datagram is never answered
    BOOST_TEST(max_udp_reply_factor == 2u); // the contract, "UDP"; docs/protocol.md, "Reply bound"
    for (const std::size_t request : {std::size_t{1}, std::size_t{40}, std::size_t{65507}}) {
        BOOST_TEST(udp_reply_within_bound(request, 0));
        BOOST_TEST(udp_reply_within_bound(request, request));
        BOOST_TEST(udp_reply_within_bound(request, 2 * request));
        BOOST_TEST(!udp_reply_within_bound(request, 2 * request + 1));
    }
}

BOOST_AUTO_TEST_CASE(a_header_with_status_is_a_reply_not_a_request, *utf::timeout(10))
{
    header_parser parser;
    request_header h;
    errc error{};
    BOOST_REQUIRE(parser.parse(R"({"status":"ok","op":"ping","size":0})", h, error));
    BOOST_TEST(is_reply_shaped(h));
    BOOST_REQUIRE(parser.parse(R"({"op":"ping","status":null})", h, error));
    BOOST_TEST(is_reply_shaped(h)); // any status member, whatever its value
    BOOST_REQUIRE(parser.parse(R"({"op":"ping","id":"status"})", h, error));
    BOOST_TEST(!is_reply_shaped(h));
}

BOOST_AUTO_TEST_SUITE_END()
