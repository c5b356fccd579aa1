#include "dispatcher.hpp"

#include "connection.hpp"

#include "logging.hpp"
#include "version.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/names.hpp>
#include <fxd/services/echo.hpp>

#include <spdlog/logger.h>

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace fxd::daemon {

using protocol::errc;
using protocol::op;

namespace {

// Ops served over TCP today; the rest of the contract answers unknown_op until it lands.
constexpr op tcp_ops[] = {op::ping,   op::hello,  op::echo,     op::register_user, op::login, op::logout, op::whoami,
                          op::upload, op::download, op::stat, op::list,          op::delete_file, op::stats};

bool served_over_tcp(op o)
{
    return std::find(std::begin(tcp_ops), std::end(tcp_ops), o) != std::end(tcp_ops);
}

bool takes_body(op o)
{
    return o == op::echo || o == op::upload;
}

bool needs_login(op o)
{
    return o == op::upload || o == op::download || o == op::stat || o == op::list || o == op::delete_file;
}

bool needs_worker(op o)
{
    return o == op::register_user || o == op::login || o == op::stat || o == op::list || o == op::delete_file;
}

bool names_a_file(op o)
{
    return o == op::upload || o == op::download || o == op::stat || o == op::delete_file;
}

services::login_limiter::limits limiter_limits(const config& cfg)
{
    services::login_limiter::limits l;
    l.max_failures = cfg.auth.max_failures;
    l.max_failures_per_address = cfg.auth.max_failures_per_address;
    l.window = seconds(cfg.auth.lockout_s);
    return l;
}

} // namespace

std::uint64_t body_length(const protocol::request_header& request) noexcept
{
    if (request.operation != op::upload)
        return request.size;
    const auto offset = protocol::uint_field(request, "offset").value_or(0);
    return offset <= request.size ? request.size - offset : 0;
}

dispatcher::dispatcher(const config& cfg, services::counters& stats, spdlog::logger& log, worker_pool& workers)
    : cfg_(cfg),
      stats_(stats),
      log_(log),
      workers_(workers),
      limiter_(limiter_limits(cfg)),
      tcp_ops_(std::begin(tcp_ops), std::end(tcp_ops))
{
    tcp_info_.server = std::string("fxd ") + std::string(version);
    tcp_info_.ops = tcp_ops_;
    apply_config();
}

void dispatcher::apply_config()
{
    limiter_.set_limits(limiter_limits(cfg_));
    tcp_info_.max_header_bytes = cfg_.limits.max_header_bytes;
    tcp_info_.max_echo_bytes = cfg_.limits.max_echo_bytes;
    tcp_info_.max_upload_bytes = cfg_.limits.max_upload_bytes;
}

admission dispatcher::admit(const protocol::request_header& request, transport via, bool draining,
                            const session_context* session)
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
    if (needs_login(o) && (!session || session->user.empty()))
        return {kind::refuse, errc::unauthorized, "log in first"};
    if (!takes_body(o) && body_length(request) > cfg_.limits.max_discard_bytes)
        return {kind::refuse, errc::body_too_large, "this op takes no body"};
    if (names_a_file(o)) {
        const auto name = protocol::string_field(request, "name");
        if (!name)
            return {kind::refuse, errc::bad_request, "name is a required string"};
        if (!protocol::is_valid_file_name(*name))
            return {kind::refuse, errc::bad_name,
                    "a name is 1 to 255 bytes of UTF-8 without / \\ or control characters, not starting with '.'"};
        if (protocol::has_field(request, "offset") && !protocol::uint_field(request, "offset"))
            return {kind::refuse, errc::bad_request, "offset must be a non-negative integer"};
    }
    if (o == op::upload) {
        if (const auto* sha = request.fields->if_contains("sha256");
            sha && !(sha->is_string() && services::is_sha256_hex(sha->get_string())))
            return {kind::refuse, errc::bad_request, "sha256 must be 64 lowercase hex digits"};
        if (request.size > cfg_.limits.max_upload_bytes)
            return {kind::refuse, errc::body_too_large, "size exceeds limits.max_upload_bytes"};
        return {kind::upload, errc::internal, {}};
    }
    if (o == op::download)
        return {kind::download, errc::internal, {}};
    if (o == op::echo && request.size > cfg_.limits.max_echo_bytes)
        return {kind::refuse, errc::body_too_large, "echo body exceeds limits.max_echo_bytes"};
    if (needs_worker(o))
        return {kind::work, errc::internal, {}};
    return {takes_body(o) ? kind::buffer : kind::serve_now, errc::internal, {}};
}

void dispatcher::serve(const protocol::request_header& request, std::span<const char> body, session_context* session,
                       std::string& out)
{
    const op o = *request.operation;
    const std::size_t mark = out.size();
    try {
        switch (o) {
        case op::ping: services::serve_ping(request, out); break;
        case op::echo: services::serve_echo(request, body, out); break;
        case op::hello: services::serve_hello(request, tcp_info_, out); break;
        case op::stats:
            stats_.worker_queue_depth = workers_.depth();
            if (files_) {
                stats_.bytes_stored = files_->cached_bytes_stored();
                stats_.partials_held = files_->cached_partials();
            }
            services::serve_stats(request, stats_, out);
            break;
        case op::logout:
        case op::whoami: {
            if (!session)
                throw std::logic_error("session op without a session");
            if (o == op::logout)
                session->user.clear();
            protocol::reply_writer reply(out);
            reply.begin(protocol::to_string(o), request.id, true);
            if (o == op::whoami) {
                if (session->user.empty())
                    reply.field_null("user");
                else
                    reply.field("user", session->user);
            }
            reply.end(0);
            break;
        }
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
