#include "proxy_trust.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

using fxd::daemon::address_range;
using fxd::daemon::trusted_proxies;
using boost::asio::ip::make_address;

BOOST_AUTO_TEST_SUITE(proxy_trust)

BOOST_AUTO_TEST_CASE(networks_match_their_addresses_only, *boost::unit_test::timeout(10))
{
    const trusted_proxies trusted({"10.0.0.0/8", "192.0.2.10", "2001:db8::/32", "172.16.0.0/12"});
    BOOST_TEST(trusted.trusts(make_address("10.200.3.4")));
    BOOST_TEST(trusted.trusts(make_address("192.0.2.10")));
    BOOST_TEST(!trusted.trusts(make_address("192.0.2.11")));
    BOOST_TEST(trusted.trusts(make_address("2001:db8:ffff::1")));
    BOOST_TEST(!trusted.trusts(make_address("2001:db9::1")));
    BOOST_TEST(trusted.trusts(make_address("172.31.255.255")));
    BOOST_TEST(!trusted.trusts(make_address("172.32.0.0")));
    BOOST_TEST(!trusted.trusts(make_address("11.0.0.1")));
    // An IPv4 peer on an IPv6 listener arrives mapped; it is still that IPv4 address.
    BOOST_TEST(trusted.trusts(make_address("::ffff:10.1.2.3")));
    BOOST_TEST(!trusted.trusts(make_address("::ffff:11.1.2.3")));
}

BOOST_AUTO_TEST_CASE(nobody_is_trusted_by_default_and_zero_prefixes_take_everyone, *boost::unit_test::timeout(10))
{
    BOOST_TEST(!trusted_proxies().trusts(make_address("127.0.0.1")));
    BOOST_TEST(trusted_proxies().empty());
    const trusted_proxies all_v4({"0.0.0.0/0"});
    BOOST_TEST(all_v4.trusts(make_address("203.0.113.7")));
    BOOST_TEST(!all_v4.trusts(make_address("::1")));
    BOOST_TEST(trusted_proxies({"::/0"}).trusts(make_address("::1")));
}

BOOST_AUTO_TEST_CASE(bad_networks_say_why, *boost::unit_test::timeout(10))
{
    for (const std::string bad : {"10.0.0.0/33", "10.0.0.1/8", "::1/129", "2001:db8::1/32", "host/8", "", "/8",
                                  "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x"}) {
        std::string why;
        BOOST_TEST(!address_range::parse(bad, why).has_value(), bad);
        BOOST_TEST(!why.empty(), bad);
    }
    BOOST_CHECK_THROW(trusted_proxies({"10.0.0.0/8", "nope"}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
