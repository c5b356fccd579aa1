#include "dispatcher.hpp"

#include <fxd/services/database.hpp>

#include "connection.hpp"
#include "version.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/services/echo.hpp>

#include <spdlog/logger.h>

#include <exception>
#include <stdexcept>

namespace fxd::daemon {

using protocol::errc;
using protocol::op;

namespace {

services::login_limiter::limits limiter_limits(const config& cfg)
{
    services::login_limiter::limits l;
    l.max_failures = cfg.auth.max_failures;
    l.max_failures_per_address = cfg.auth.max_failures_per_address;
    l.window = seconds(cfg.auth.lockout_s);
    return l;
}

services::register_limiter::limits register_limits(const config& cfg)
{
    services::register_limiter::limits l;
    l.max_per_address = cfg.auth.max_registrations_per_address;
    l.window = seconds(cfg.auth.register_window_s);
    return l;
}

admission::kind admission_for(const op_spec& spec)
{
    switch (spec.shape) {
    case op_shape::worker: return admission::kind::work;
    case op_shape::upload: return admission::kind::upload;
    case op_shape::download: return admission::kind::download;
    case op_shape::loop: break;
    }
    return spec.body == body_kind::whole ? admission::kind::buffer : admission::kind::serve_now;
}

} // namespace

dispatcher::dispatcher(const config& cfg, services::counters& stats, spdlog::logger& log, worker_pool& workers,
                       worker_pool& hashes)
    : cfg_(cfg), stats_(stats), log_(log), workers_(workers), hashes_(hashes), limiter_(limiter_limits(cfg)),
      registrations_(register_limits(cfg))
{
    for (const auto& spec : all_ops()) {
        if (spec.offered_over(transport::tcp))
            tcp_ops_.push_back(spec.op);
    }
    tcp_info_.server = std::string("fxd ") + std::string(version);
    tcp_info_.ops = tcp_ops_;
    apply_config();
}

void dispatcher::apply_config()
{
    limiter_.set_limits(limiter_limits(cfg_));
    registrations_.set_limits(register_limits(cfg_));
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
    const op_spec& spec = spec_of(*request.operation);
    if (!spec.offered_over(via))
        return {kind::refuse, errc::unsupported,
                via == transport::udp ? "op is offered over TCP only" : "op is offered over UDP only"};
    if (spec.needs_login && (!session || session->user.empty()))
        return {kind::refuse, errc::unauthorized, "log in first"};
    if (spec.body == body_kind::none && protocol::request_body_length(request) > cfg_.limits.max_discard_bytes)
        return {kind::refuse, errc::body_too_large, "this op takes no body"};
    if (spec.check) {
        if (const auto refused = spec.check(request, cfg_))
            return {kind::refuse, refused->code, refused->message};
    }
    return {admission_for(spec), errc::internal, {}};
}

void dispatcher::serve(const protocol::request_header& request, std::span<const char> body, session_context* session,
                       std::string& out)
{
    const op o = *request.operation;
    const std::size_t mark = out.size();
    try {
        const auto handler = spec_of(o).serve;
        if (!handler)
            throw std::logic_error("op has no loop handler");
        (this->*handler)(request, body, session, out);
    } catch (const std::exception& e) {
        out.resize(mark);
        reply_failure(out, request, protocol::to_string(o), e);
    }
}

boost::asio::awaitable<void> dispatcher::serve_work(const protocol::request_header& request,
                                                    session_context& session, std::string& out)
{
    const op o = *request.operation;
    const std::size_t mark = out.size();
    try {
        const auto handler = spec_of(o).work;
        if (!handler || !accounts_ || !files_)
            throw std::logic_error("op has no worker handler, or its services are not attached");
        co_await (this->*handler)(request, session, out);
    } catch (const std::exception& e) {
        out.resize(mark);
        reply_failure(out, request, protocol::to_string(o), e);
    }
}

void dispatcher::serve_ping(const protocol::request_header& request, std::span<const char>, session_context*,
                            std::string& out)
{
    services::serve_ping(request, out);
}

void dispatcher::serve_hello(const protocol::request_header& request, std::span<const char>, session_context*,
                             std::string& out)
{
    services::serve_hello(request, tcp_info_, out);
}

void dispatcher::serve_echo(const protocol::request_header& request, std::span<const char> body, session_context*,
                            std::string& out)
{
    services::serve_echo(request, body, out);
}

void dispatcher::serve_stats(const protocol::request_header& request, std::span<const char>, session_context* session,
                             std::string& out)
{
    // The counters tell a remote stranger how busy the daemon is and what it
    // refuses: this host and admins only (issue 14, finding 7).
    if (!session || !(session->loopback || (!session->user.empty() && session->login.admin))) {
        reply_error(out, &request, errc::unauthorized, "stats are shown to this host and to admin users only");
        return;
    }
    stats_.worker_queue_depth = workers_.depth();
    stats_.hash_queue_depth = hashes_.depth();
    if (files_) {
        stats_.bytes_stored = files_->cached_bytes_stored();
        stats_.partials_held = files_->cached_partials();
    }
    services::serve_stats(request, stats_, out);
}

void dispatcher::serve_whoami(const protocol::request_header& request, std::span<const char>, session_context* session,
                              std::string& out)
{
    if (!session)
        throw std::logic_error("whoami without a session");
    protocol::reply_writer reply(out);
    reply.begin(protocol::to_string(op::whoami), request.id, true);
    if (session->user.empty())
        reply.field_null("user");
    else
        reply.field("user", session->user);
    reply.end(0);
}

void dispatcher::reply_failure(std::string& out, const protocol::request_header& request, std::string_view what,
                               const std::exception& e)
{
    if (dynamic_cast<const services::store_unavailable*>(&e) != nullptr) {
        ++stats_.database_unavailable;
        log_.warn("{} failed: {}", what, e.what());
        reply_error(out, &request, errc::unavailable, "the user database cannot be reached now; retry shortly");
        return;
    }
    log_.error("{} failed: {}", what, e.what());
    reply_error(out, &request, errc::internal, "internal error");
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

std::optional<services::user_identity> dispatcher::current_login(services::accounts& accounts,
                                                                const services::user_identity& login)
{
    auto now = accounts.store().identity(login.id);
    if (!now || now->generation != login.generation)
        return std::nullopt;
    return now;
}

bool dispatcher::keep_login(const std::optional<services::user_identity>& now, const protocol::request_header& request,
                            session_context& session, std::string& out)
{
    if (now) {
        session.login.admin = now->admin; // an admin flag changed by `fxd user admin` counts from here
        return true;
    }
    log_.info("login revoked: user=\"{}\" addr={} (password changed or user deleted)", session.user,
              session.peer_address);
    session.user.clear();
    session.login = {};
    reply_error(out, &request, errc::unauthorized, "your login was revoked; log in again");
    return false;
}

bool dispatcher::has_worker_room(const protocol::request_header& request, std::string& out)
{
    if (workers_.has_room())
        return true;
    reply_error(out, &request, errc::busy, "the server is busy; retry shortly");
    return false;
}

bool dispatcher::has_hash_room(const protocol::request_header& request, std::string& out)
{
    if (hashes_.has_room())
        return true;
    reply_error(out, &request, errc::busy, "too many logins and registrations at once; retry shortly");
    return false;
}

} // namespace fxd::daemon
