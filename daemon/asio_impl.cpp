// Asio's compiled part, built once (BOOST_ASIO_SEPARATE_COMPILATION) so that
// every other file includes only declarations.
#include <boost/asio/impl/src.hpp>
