#include "dispatcher.hpp"

#include "logging.hpp"
#include "version.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/services/echo.hpp>

#include <spdlog/logger.h>

#include <algorithm>
#include <exception>

namespace fxd::daemon {

using protocol::errc;
using protocol::op;

namespace {

// Ops served over TCP today; the rest of the contract answers unknown_op until it lands.
constexpr op tcp_ops[] = {op::ping, op::hello, op::echo, op::stats};

bool served_over_tcp(op o)
{
    return std::find(std::begin(tcp_ops), std::end(tcp_ops), o) != std::end(tcp_ops);
}

bool takes_body(op o)
{
    return o == op::echo || o == op::upload;
}

} // namespace

dispatcher::dispatcher(const config& cfg, services::counters& stats, spdlog::logger& log)
    : cfg_(cfg), stats_(stats), log_(log), tcp_ops_(std::begin(tcp_ops), std::end(tcp_ops))
{
    tcp_info_.server = std::string("fxd ") + std::string(version);
    tcp_info_.ops = tcp_ops_;
    tcp_info_.max_header_bytes = cfg.limits.max_header_bytes;
    tcp_info_.max_echo_bytes = cfg.limits.max_echo_bytes;
    tcp_info_.max_upload_bytes = cfg.limits.max_upload_bytes;
}

admission dispatcher::admit(const protocol::request_header& request, transport via, bool draining)
{
    using kind = admission::kind;
    stats_.count_request(request.operation);
    if (draining)
        return {kind::refuse, errc::shutting_down, "the server is shutting down"};
    if (request.field_error)
        return {kind::refuse, *request.field_error, "id must be an integer or a string"};
    if (!request.operation) {
        if (request.op_name.empty())
            return {kind::refuse, errc::unknown_op, "request has no op"};
        return {kind::refuse, errc::unknown_op, "unknown op"};
    }
    const op o = *request.operation;
    if (via == transport::udp && !protocol::offered_on_udp(o))
        return {kind::refuse, errc::unsupported, "op is offered over TCP only"};
    if (via == transport::tcp && !served_over_tcp(o))
        return {kind::refuse, errc::unknown_op, "op is not served by this version"};
    if (o == op::echo && request.size > cfg_.limits.max_echo_bytes)
        return {kind::refuse, errc::body_too_large, "echo body exceeds limits.max_echo_bytes"};
    if (!takes_body(o) && request.size > cfg_.limits.max_discard_bytes)
        return {kind::refuse, errc::body_too_large, "this op takes no body"};
    return {takes_body(o) ? kind::buffer : kind::serve_now, errc::internal, {}};
}

void dispatcher::serve(const protocol::request_header& request, std::span<const char> body, std::string& out)
{
    const op o = *request.operation;
    const std::size_t mark = out.size();
    try {
        switch (o) {
        case op::ping: services::serve_ping(request, out); break;
        case op::echo: services::serve_echo(request, body, out); break;
        case op::hello: services::serve_hello(request, tcp_info_, out); break;
        case op::stats: services::serve_stats(request, stats_, out); break;
        default:
            out.resize(mark);
            reply_error(out, &request, errc::internal, "op has no handler");
        }
    } catch (const std::exception& e) {
        out.resize(mark);
        log_.error("{} failed: {}", protocol::to_string(o), e.what());
        reply_error(out, &request, errc::internal, "internal error");
    }
}

void dispatcher::reply_error(std::string& out, const protocol::request_header* request, errc code,
                             std::string_view message)
{
    std::optional<op> o;
    std::string_view op_name;
    const boost::json::value* id = nullptr;
    if (request) {
        o = request->operation;
        if (o)
            op_name = protocol::to_string(*o);
        id = request->id;
    }
    stats_.count_error(o, code);
    protocol::reply_writer reply(out);
    reply.error(op_name, id, code, message);
}

} // namespace fxd::daemon
