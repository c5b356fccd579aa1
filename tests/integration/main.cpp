#define BOOST_TEST_MODULE fxd_integration
#include <boost/test/unit_test.hpp>
