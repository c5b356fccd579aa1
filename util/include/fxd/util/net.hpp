#pragma once
/// Address resolution for the blocking clients (fxd::client, fxbench).

#include <sys/socket.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fxd::util {

/// getaddrinfo refused the name; what() says which and why.
class resolve_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One address getaddrinfo gave, copied out of its list.
struct endpoint {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_UNSPEC;
    int socktype = 0;
    int protocol = 0;

    const sockaddr* address() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
};

/// The addresses of host (a name or a numeric address) at port for socktype
/// (SOCK_STREAM or SOCK_DGRAM), in getaddrinfo's order; never empty.
/// Throws resolve_error.
std::vector<endpoint> resolve(const std::string& host, std::uint16_t port, int socktype);

} // namespace fxd::util
