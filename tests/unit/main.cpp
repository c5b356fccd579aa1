#define BOOST_TEST_MODULE fxd_unit
#include <boost/test/unit_test.hpp>
