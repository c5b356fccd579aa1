#include <fxd/util/net.hpp>

#include <netdb.h>

#include <cstring>
#include <memory>

namespace fxd::util {

std::vector<endpoint> resolve(const std::string& host, std::uint16_t port, int socktype)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    addrinfo* head = nullptr;
    const auto service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &head); rc != 0)
        throw resolve_error("cannot resolve " + host + ": " + ::gai_strerror(rc));
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(head, &::freeaddrinfo);

    std::vector<endpoint> out;
    for (const addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
        endpoint ep;
        std::memcpy(&ep.storage, ai->ai_addr, ai->ai_addrlen);
        ep.length = ai->ai_addrlen;
        ep.family = ai->ai_family;
        ep.socktype = ai->ai_socktype;
        ep.protocol = ai->ai_protocol;
        out.push_back(ep);
    }
    if (out.empty())
        throw resolve_error("cannot resolve " + host + ": no address");
    return out;
}

} // namespace fxd::util
