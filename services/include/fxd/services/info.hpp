#pragma once
/// ping and hello: liveness and what this server offers.

#include <fxd/protocol/header.hpp>
#include <fxd/protocol/ops.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace fxd::services {

struct server_info {
    std::string server;                  ///< e.g. "fxd 0.1.0"
    std::span<const protocol::op> ops;   ///< what this transport offers
    std::uint64_t max_header_bytes = 0;
    std::uint64_t max_echo_bytes = 0;
    std::uint64_t max_upload_bytes = 0;
    std::uint16_t tls_port = 0; ///< the TLS listener's port; 0: TLS is off
};

void serve_ping(const protocol::request_header& request, std::string& out);
void serve_hello(const protocol::request_header& request, const server_info& info, std::string& out);

} // namespace fxd::services
