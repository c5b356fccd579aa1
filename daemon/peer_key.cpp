#include "peer_key.hpp"

#include <algorithm>

namespace fxd::daemon {

boost::asio::ip::address per_address_key(const boost::asio::ip::address& peer)
{
    namespace ip = boost::asio::ip;
    if (peer.is_v4())
        return peer;
    const auto v6 = peer.to_v6();
    if (v6.is_v4_mapped())
        return ip::make_address_v4(ip::v4_mapped, v6);
    auto bytes = v6.to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0); // keep the /64 prefix only
    return ip::address_v6(bytes);
}

} // namespace fxd::daemon
