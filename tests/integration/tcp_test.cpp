#include "daemon_process.hpp"

#include <fxd/client/client.hpp>

#include <boost/test/unit_test.hpp>

using fxd::client::connection;

BOOST_AUTO_TEST_SUITE(tcp)

BOOST_AUTO_TEST_CASE(echo_uppercases_ascii_only, *boost::unit_test::timeout(30))
{
    fxd::test::daemon_process daemon;
    connection conn("127.0.0.1", daemon.tcp_port());
    const auto reply = conn.call({{"op", "echo"}, {"id", 7}}, "hello, World! \xc3\xa9");
    BOOST_TEST(reply.ok());
    BOOST_TEST(reply.body == "HELLO, WORLD! \xc3\xa9");
    BOOST_TEST(reply.header.at("id").as_int64() == 7);
}

BOOST_AUTO_TEST_SUITE_END()
