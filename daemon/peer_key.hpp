#pragma once
/// The key under which per-address TCP limits count a client.

#include <boost/asio/ip/address.hpp>

namespace fxd::daemon {

/// An IPv4 client (also when it arrives as an IPv4-mapped IPv6 address) is
/// its address; an IPv6 client is its /64, since one subscriber is usually
/// handed a whole /64 and could otherwise pick a fresh address per
/// connection. The UDP source limiter keys the same way.
boost::asio::ip::address per_address_key(const boost::asio::ip::address& peer);

} // namespace fxd::daemon
