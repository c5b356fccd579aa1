#include <fxd/services/info.hpp>

#include <fxd/protocol/encoder.hpp>

namespace fxd::services {

void serve_ping(const protocol::request_header& request, std::string& out)
{
    protocol::append_ok_reply_header(out, protocol::to_string(protocol::op::ping), request.id, 0);
}

void serve_hello(const protocol::request_header& request, const server_info& info, std::string& out)
{
    std::string ops = "[";
    for (const auto o : info.ops) {
        if (ops.size() > 1)
            ops += ',';
        protocol::append_json_string(ops, protocol::to_string(o));
    }
    ops += ']';
    const std::string limits = "{\"max_header_bytes\":" + std::to_string(info.max_header_bytes) +
                               ",\"max_echo_bytes\":" + std::to_string(info.max_echo_bytes) +
                               ",\"max_upload_bytes\":" + std::to_string(info.max_upload_bytes) + "}";

    protocol::reply_writer reply(out);
    reply.begin(protocol::to_string(protocol::op::hello), request.id, true);
    reply.field("server", info.server);
    reply.field("protocol", 1);
    reply.field_raw("ops", ops);
    reply.field_raw("limits", limits);
    if (info.tls_port != 0)
        reply.field("tls_port", static_cast<std::uint64_t>(info.tls_port));
    reply.end(0);
}

} // namespace fxd::services
