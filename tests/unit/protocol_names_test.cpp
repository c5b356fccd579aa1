#include <fxd/protocol/names.hpp>

#include <boost/test/unit_test.hpp>

using namespace fxd::protocol;

BOOST_AUTO_TEST_SUITE(names)

BOOST_AUTO_TEST_CASE(file_names_follow_the_contract, *boost::unit_test::timeout(10))
{
    BOOST_TEST(is_valid_file_name("report.txt"));
    BOOST_TEST(!is_valid_file_name(""));
    BOOST_TEST(!is_valid_file_name(".."));
    BOOST_TEST(!is_valid_file_name("a/b"));
}

BOOST_AUTO_TEST_SUITE_END()
