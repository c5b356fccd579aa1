// asio::ssl's compiled part, built once for the targets that link fxd::s3:
// fxd::asio (BOOST_ASIO_SEPARATE_COMPILATION) carries only Asio's core.
#include <boost/asio/ssl/impl/src.hpp>
