// Issue 14, finding 7: how per-address limits key a client, and what the log
// escaping does to invisible characters.
#include "logging.hpp"
#include "peer_key.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <string>

namespace ip = boost::asio::ip;
using fxd::daemon::escape_for_log;
using fxd::daemon::per_address_key;

BOOST_AUTO_TEST_SUITE(peer_keying)

BOOST_AUTO_TEST_CASE(an_ipv4_client_is_its_own_address)
{
    BOOST_TEST(per_address_key(ip::make_address("192.0.2.7")) == ip::make_address("192.0.2.7"));
    BOOST_TEST(per_address_key(ip::make_address("192.0.2.7")) != per_address_key(ip::make_address("192.0.2.8")));
}

BOOST_AUTO_TEST_CASE(an_ipv4_mapped_client_counts_as_the_ipv4_address)
{
    BOOST_TEST(per_address_key(ip::make_address("::ffff:192.0.2.7")) == ip::make_address("192.0.2.7"));
    BOOST_TEST(per_address_key(ip::make_address("::ffff:192.0.2.7")) != per_address_key(ip::make_address("::ffff:192.0.2.8")));
}

BOOST_AUTO_TEST_CASE(two_ipv6_clients_in_one_slash_64_share_a_key)
{
    const auto a = per_address_key(ip::make_address("2001:db8:1:2:aaaa::1"));
    const auto b = per_address_key(ip::make_address("2001:db8:1:2:ffff:1234:5678:9abc"));
    BOOST_TEST(a == b);
    BOOST_TEST(a == ip::make_address("2001:db8:1:2::"));
}

BOOST_AUTO_TEST_CASE(ipv6_clients_in_different_slash_64s_do_not)
{
    BOOST_TEST(per_address_key(ip::make_address("2001:db8:1:2::1")) != per_address_key(ip::make_address("2001:db8:1:3::1")));
    BOOST_TEST(per_address_key(ip::make_address("::1")) != per_address_key(ip::make_address("::ffff:0.0.0.1")));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(log_escaping)

BOOST_AUTO_TEST_CASE(bidi_and_format_characters_are_escaped)
{
    // "evil" + RLO + "gpj.exe": shown raw, a terminal would print "evilexe.jpg".
    BOOST_TEST(escape_for_log("evil\u202Egpj.exe") == R"("evil\u202egpj.exe")");
    BOOST_TEST(escape_for_log("a\u200Bb\uFEFFc") == R"("a\u200bb\ufeffc")");
    BOOST_TEST(escape_for_log("\u2066\u2067\u2068\u2069") == R"("\u2066\u2067\u2068\u2069")");
    BOOST_TEST(escape_for_log("soft\u00ADhyphen") == R"("soft\u00adhyphen")");
    BOOST_TEST(escape_for_log("line\u2028break") == R"("line\u2028break")");
    // Past U+FFFF (a tag character), as a JSON surrogate pair.
    BOOST_TEST(escape_for_log("tag\U000E0041") == R"("tag\udb40\udc41")");
}

BOOST_AUTO_TEST_CASE(visible_text_and_control_characters_keep_their_escaping)
{
    BOOST_TEST(escape_for_log("caf\u00E9 \u65E5\u672C \U0001F600") == "\"caf\u00E9 \u65E5\u672C \U0001F600\"");
    BOOST_TEST(escape_for_log("a\nb\"c\\") == R"("a\nb\"c\\")");
    BOOST_TEST(escape_for_log(std::string("bad\xE2\x80", 5)) == std::string("\"bad\xE2\x80\"", 7));
    BOOST_TEST(escape_for_log("abcdef", 3) == R"("abc"...)");
}

BOOST_AUTO_TEST_SUITE_END()
