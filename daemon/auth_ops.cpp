// register and login: validation on the loop, Argon2id on the worker pool.

#include "dispatcher.hpp"
#include "logging.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/names.hpp>

#include <sodium.h>
#include <spdlog/logger.h>

namespace fxd::daemon {

using protocol::errc;
using protocol::op;
using outcome = services::accounts::outcome;

namespace {

/// Wipes a copied password when it goes out of scope.
struct secret {
    std::string text;
    ~secret() { sodium_memzero(text.data(), text.size()); }
};

void reply_user(std::string& out, const protocol::request_header& request, std::string_view user)
{
    protocol::reply_writer reply(out);
    reply.begin(protocol::to_string(*request.operation), request.id, true);
    reply.field("user", user);
    reply.end(0);
}

} // namespace

bool dispatcher::may_send_password(const protocol::request_header& request, const session_context& session,
                                   std::string& out)
{
    const auto& mode = cfg_.auth.plaintext;
    if (session.encrypted || mode == "allow" || (mode == "loopback" && session.loopback))
        return true;
    reply_error(out, &request, errc::tls_required,
                mode == "deny" ? "passwords are accepted over TLS only (auth.plaintext)"
                               : "passwords from other hosts are accepted over TLS only (auth.plaintext)");
    return false;
}

bool dispatcher::read_credentials(const protocol::request_header& request, std::string& user, std::string& password,
                                  std::string& out)
{
    const auto name = protocol::string_field(request, "user");
    const auto pass = protocol::string_field(request, "password");
    if (!name || !pass) {
        reply_error(out, &request, errc::bad_request, "user and password are required strings");
        return false;
    }
    if (!protocol::is_valid_user_name(*name)) {
        reply_error(out, &request, errc::bad_request,
                    "user must be 1 to 32 characters of a-z 0-9 _ . - starting with a letter or digit");
        return false;
    }
    if (!protocol::is_valid_password(*pass)) {
        reply_error(out, &request, errc::bad_request, "password must be 8 to 1024 bytes");
        return false;
    }
    user = *name;
    password = *pass;
    return true;
}

boost::asio::awaitable<void> dispatcher::register_user(const protocol::request_header& request,
                                                       session_context& session, std::string& out)
{
    std::string user;
    secret password;
    if (!may_send_password(request, session, out) || !read_credentials(request, user, password.text, out))
        co_return;
    if (!cfg_.auth.allow_register) {
        reply_error(out, &request, errc::registration_closed, "registration is closed on this server");
        co_return;
    }
    if (!has_worker_room(request, out))
        co_return;
    auto* accounts = accounts_;
    const auto result = co_await workers_.run([accounts, &user, &password] {
        return accounts->register_user(user, password.text);
    });
    if (result == outcome::user_exists) {
        reply_error(out, &request, errc::user_exists, "that user name is taken");
        co_return;
    }
    log_.info("registered user \"{}\"", user);
    reply_user(out, request, user);
}

boost::asio::awaitable<void> dispatcher::login(const protocol::request_header& request, session_context& session,
                                               std::string& out)
{
    std::string user;
    secret password;
    if (!may_send_password(request, session, out) || !read_credentials(request, user, password.text, out))
        co_return;
    if (limiter_.blocked(user, session.peer_address, services::login_limiter::clock::now())) {
        ++stats_.logins_rate_limited;
        log_.warn("auth failure: user=\"{}\" addr={} (rate limited)", user, session.peer_address);
        reply_error(out, &request, errc::rate_limited, "too many failed logins; wait and retry");
        co_return;
    }
    if (!has_worker_room(request, out))
        co_return;
    auto* accounts = accounts_;
    const auto result = co_await workers_.run([accounts, &user, &password] {
        return accounts->verify(user, password.text);
    });
    if (result != outcome::ok) {
        ++stats_.logins_failed;
        limiter_.record_failure(user, session.peer_address, services::login_limiter::clock::now());
        log_.warn("auth failure: user=\"{}\" addr={}", user, session.peer_address);
        reply_error(out, &request, errc::bad_credentials, "unknown user or wrong password");
        co_return;
    }
    ++stats_.logins_ok;
    limiter_.record_success(user, session.peer_address);
    session.user = user;
    if (session.certificate_subject.empty())
        log_.info("login: user=\"{}\" addr={}", user, session.peer_address);
    else
        log_.info("login: user=\"{}\" addr={} cert={}", user, session.peer_address,
                  escape_for_log(session.certificate_subject));
    reply_user(out, request, user);
}

} // namespace fxd::daemon
