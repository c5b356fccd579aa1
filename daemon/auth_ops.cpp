// register and login: validation on the loop, Argon2id on the worker pool.

#include "dispatcher.hpp"
#include "logging.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/names.hpp>
#include <fxd/util/time.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/json/object.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sodium.h>
#include <spdlog/logger.h>

#include <cmath>

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

constexpr std::string_view bad_user_name =
    "user must be 1 to 32 characters of a-z 0-9 _ . - starting with a letter or digit";

/// A limiter window in whole seconds, as the shared ledger counts it.
std::int64_t window_seconds(double seconds)
{
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(seconds)));
}

std::string login_pair_key(std::string_view user, std::string_view address)
{
    return "login/" + std::string(user) + "/" + std::string(address);
}

std::string login_address_key(std::string_view address)
{
    return "login-address/" + std::string(address);
}

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
        reply_error(out, &request, errc::bad_request, bad_user_name);
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
    const auto& source = session.address_key;
    const auto now = services::register_limiter::clock::now();
    if (registrations_.blocked(source, now)) {
        ++stats_.registrations_rate_limited;
        log_.warn("registration refused: user=\"{}\" addr={} (rate limited)", user, session.peer_address);
        reply_error(out, &request, errc::rate_limited, "too many registrations from this address; wait and retry");
        co_return;
    }
    if (!has_hash_room(request, out))
        co_return;
    // Counted on admission, taken or not: each attempt costs a hash, and
    // concurrent ones must meet the limit like sequential ones.
    registrations_.record(source, now);
    auto* accounts = accounts_;
    auto* ledger = ledger_;
    const auto window = window_seconds(cfg_.auth.register_window_s);
    const auto allowed = cfg_.auth.max_registrations_per_address;
    struct attempt {
        bool over_shared_limit = false; ///< other instances used up this source's registrations
        outcome result{};
    };
    const auto r = co_await hashes_.run([accounts, ledger, &user, &password, &source, window, allowed] {
        attempt a;
        // With other instances, this address's registrations are counted in
        // the database too, so a flood spread over a cluster meets one limit.
        if (ledger && ledger->add_event("register/" + source, util::unix_now(), window) > allowed) {
            a.over_shared_limit = true;
            return a;
        }
        a.result = accounts->register_user(user, password.text);
        return a;
    });
    if (r.over_shared_limit) {
        ++stats_.registrations_rate_limited;
        log_.warn("registration refused: user=\"{}\" addr={} (rate limited across instances)", user, session.peer_address);
        reply_error(out, &request, errc::rate_limited, "too many registrations from this address; wait and retry");
        co_return;
    }
    const auto result = r.result;
    if (result == outcome::user_exists) {
        reply_error(out, &request, errc::user_exists, "that user name is taken");
        co_return;
    }
    ++stats_.registrations_ok;
    log_.info("registered user \"{}\"", user);
    reply_user(out, request, user);
}

struct dispatcher::login_fields {
    std::string user;
    secret credential; ///< the password, or the token
    bool by_token = false;
    bool remember = false;
};

bool dispatcher::read_login(const protocol::request_header& request, login_fields& fields, std::string& out)
{
    const auto name = protocol::string_field(request, "user");
    const bool has_password = protocol::has_field(request, "password");
    const bool has_token = protocol::has_field(request, "token");
    if (has_password && has_token) {
        reply_error(out, &request, errc::bad_request, "give a password or a token, not both");
        return false;
    }
    if (!has_token)
        return read_credentials(request, fields.user, fields.credential.text, out) && read_remember(request, fields, out);
    const auto token = protocol::string_field(request, "token");
    if (!name || !token) {
        reply_error(out, &request, errc::bad_request, "user and token are required strings");
        return false;
    }
    if (!protocol::is_valid_user_name(*name)) {
        reply_error(out, &request, errc::bad_request, bad_user_name);
        return false;
    }
    // Tokens are 64 lowercase hex digits, like a SHA-256.
    if (!protocol::is_sha256_hex(*token)) {
        reply_error(out, &request, errc::bad_request, "token must be 64 lowercase hex digits");
        return false;
    }
    fields.user = *name;
    fields.credential.text = *token;
    fields.by_token = true;
    return read_remember(request, fields, out);
}

bool dispatcher::read_remember(const protocol::request_header& request, login_fields& fields, std::string& out)
{
    const auto remember = protocol::bool_field(request, "remember");
    if (!remember && protocol::has_field(request, "remember")) {
        reply_error(out, &request, errc::bad_request, "remember must be true or false");
        return false;
    }
    // A token login is remembered already: it gets no second token.
    fields.remember = remember.value_or(false) && !fields.by_token;
    return true;
}

boost::asio::awaitable<void> dispatcher::login(const protocol::request_header& request, session_context& session,
                                               std::string& out)
{
    login_fields fields;
    if (!may_send_password(request, session, out) || !read_login(request, fields, out))
        co_return;
    const std::string& user = fields.user;
    using limiter = services::login_limiter;
    for (;;) {
        const auto verdict = limiter_.begin_attempt(user, session.address_key, limiter::clock::now());
        if (verdict == limiter::verdict::check)
            break;
        if (verdict == limiter::verdict::refuse) {
            ++stats_.logins_rate_limited;
            log_.warn("auth failure: user=\"{}\" addr={} (rate limited)", user, session.peer_address);
            reply_error(out, &request, errc::rate_limited, "too many failed logins; wait and retry");
            co_return;
        }
        // Attempts in flight could still use up the limit: their results decide.
        co_await login_attempt_ended();
    }
    // A password costs a hash (the hashing pool); a token, and issuing one, a
    // database call (the worker pool).
    const bool room = (fields.by_token || has_hash_room(request, out)) &&
                      ((!fields.by_token && !fields.remember) || has_worker_room(request, out));
    if (!room) {
        end_login_attempt(user, session.address_key, limiter::result::abandoned);
        co_return;
    }
    checked_login checked;
    try {
        checked = co_await check_credentials(fields, session.address_key);
    } catch (...) {
        end_login_attempt(user, session.address_key, limiter::result::abandoned);
        throw;
    }
    const bool over_shared_limit = checked.over_shared_limit;
    const outcome result = checked.result;
    const services::user_identity who = checked.who;
    if (over_shared_limit) {
        end_login_attempt(user, session.address_key, limiter::result::abandoned);
        ++stats_.logins_rate_limited;
        log_.warn("auth failure: user=\"{}\" addr={} (rate limited across instances)", user, session.peer_address);
        reply_error(out, &request, errc::rate_limited, "too many failed logins; wait and retry");
        co_return;
    }
    if (result != outcome::ok) {
        end_login_attempt(user, session.address_key, limiter::result::failed);
        ++stats_.logins_failed;
        log_.warn("auth failure: user=\"{}\" addr={}{}", user, session.peer_address,
                  fields.by_token ? " (unknown, expired or revoked token)" : "");
        reply_error(out, &request, errc::bad_credentials,
                    fields.by_token ? "unknown, expired or revoked token; log in with the password"
                                    : "unknown user or wrong password");
        co_return;
    }
    end_login_attempt(user, session.address_key, limiter::result::succeeded);
    secret token;
    std::int64_t expires = 0;
    if (fields.remember) {
        expires = util::unix_now() + static_cast<std::int64_t>(cfg_.auth.token_ttl_s);
        auto* accounts = accounts_;
        token.text = co_await workers_.run([accounts, who, expires] { return accounts->issue_token(who, expires); });
    }
    ++stats_.logins_ok;
    session.user = user;
    session.login = who;
    const char* how = fields.by_token ? " (token)" : fields.remember ? " (remembered)" : "";
    if (session.certificate_subject.empty())
        log_.info("login: user=\"{}\" addr={}{}", user, session.peer_address, how);
    else
        log_.info("login: user=\"{}\" addr={} cert={}{}", user, session.peer_address,
                  escape_for_log(session.certificate_subject), how);
    protocol::reply_writer reply(out);
    reply.begin(protocol::to_string(*request.operation), request.id, true);
    reply.field("user", user);
    if (fields.remember) {
        reply.field("token", token.text);
        reply.field("expires", expires);
    }
    reply.end(0);
}

boost::asio::awaitable<void> dispatcher::logout(const protocol::request_header& request, session_context& session,
                                                std::string& out)
{
    bool revoked = false;
    if (protocol::has_field(request, "token")) {
        const auto token = protocol::string_field(request, "token");
        if (!token || !protocol::is_sha256_hex(*token)) {
            reply_error(out, &request, errc::bad_request, "token must be 64 lowercase hex digits");
            co_return;
        }
        if (!has_worker_room(request, out))
            co_return;
        auto* accounts = accounts_;
        const secret copy{std::string(*token)};
        revoked = co_await workers_.run([accounts, &copy] { return accounts->revoke_token(copy.text); });
        if (revoked)
            log_.info("token revoked: user=\"{}\" addr={}", session.user, session.peer_address);
    }
    session.user.clear();
    session.login = {};
    protocol::reply_writer reply(out);
    reply.begin(protocol::to_string(op::logout), request.id, true);
    if (protocol::has_field(request, "token"))
        reply.field("revoked", revoked);
    reply.end(0);
}

boost::asio::awaitable<dispatcher::checked_login> dispatcher::check_credentials(const login_fields& fields,
                                                                                const std::string& address)
{
    auto* accounts = accounts_;
    auto* ledger = ledger_;
    const auto window = window_seconds(cfg_.auth.lockout_s);
    const auto max_pair = cfg_.auth.max_failures;
    const auto max_address = cfg_.auth.max_failures_per_address;
    const std::string& user = fields.user;
    const std::string& credential = fields.credential.text;
    const bool by_token = fields.by_token;
    // A password is checked on the hashing pool, a token (a database read)
    // on the worker pool. With other instances, failures on every one of
    // them count (the ledger): a guesser spreading attempts over a cluster
    // meets the same backoff as on one host.
    auto check = [&, accounts, ledger, by_token] {
        checked_login c;
        const auto now = util::unix_now();
        if (ledger && (ledger->events(login_pair_key(user, address), now, window) >= max_pair ||
                       ledger->events(login_address_key(address), now, window) >= max_address)) {
            c.over_shared_limit = true;
            c.result = outcome::bad_credentials;
            return c;
        }
        c.result = by_token ? accounts->verify_token(user, credential, now, c.who)
                            : accounts->verify(user, credential, c.who);
        if (ledger && c.result == outcome::ok) {
            ledger->clear_events(login_pair_key(user, address));
        } else if (ledger) {
            ledger->add_event(login_pair_key(user, address), now, window);
            ledger->add_event(login_address_key(address), now, window);
        }
        return c;
    };
    if (by_token) {
        const auto c = co_await workers_.run(check);
        co_return c;
    }
    const auto c = co_await hashes_.run(check);
    co_return c;
}

boost::asio::awaitable<void> dispatcher::login_attempt_ended()
{
    if (!login_attempts_ended_) {
        login_attempts_ended_.emplace(co_await boost::asio::this_coro::executor);
        login_attempts_ended_->expires_at(boost::asio::steady_timer::time_point::max());
    }
    boost::system::error_code cancelled; // the wake-up; never an error here
    co_await login_attempts_ended_->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, cancelled));
}

void dispatcher::end_login_attempt(const std::string& user, const std::string& address,
                                   services::login_limiter::result how)
{
    limiter_.end_attempt(user, address, how, services::login_limiter::clock::now());
    if (login_attempts_ended_)
        login_attempts_ended_->cancel();
}

} // namespace fxd::daemon
