#pragma once
/// Routes each decoded request to its service by the op table, and is the one
/// place that turns refusals and unexpected failures into wire error codes and
/// counts them.

#include "config.hpp"
#include "object_files.hpp"
#include "op_table.hpp"
#include "worker_pool.hpp"

#include <fxd/s3/client.hpp>

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/services/accounts.hpp>
#include <fxd/services/database.hpp>
#include <fxd/services/files.hpp>
#include <fxd/services/info.hpp>
#include <fxd/services/login_limiter.hpp>
#include <fxd/services/register_limiter.hpp>
#include <fxd/services/stats.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace spdlog {
class logger;
}

namespace fxd::daemon {

/// What a TCP connection knows about its client between requests.
struct session_context {
    std::string peer_address;
    /// What per-address limits count: the peer's address, or an IPv6 peer's
    /// /64 (per_address_key), so a host cannot take fresh limits from every
    /// address of its prefix. Logs name peer_address.
    std::string address_key;
    std::string user;                ///< empty until a successful login
    /// The login's account and credential generation, read at login; every
    /// request that needs a login compares them with the database first.
    services::user_identity login;
    bool encrypted = false;          ///< the connection came in on the TLS port
    bool loopback = false;           ///< the peer is this host (auth.plaintext "loopback")
    std::string certificate_subject; ///< a verified client certificate's subject (mutual TLS)
};

/// What to do with a request's body, decided from its header alone.
struct admission {
    enum class kind {
        buffer,        ///< read the whole body, then serve
        serve_now,     ///< the op takes no body: serve at once, discard any body
        work,          ///< the op takes no body and needs the worker pool: await serve_work()
        upload,        ///< stream the body into storage: begin_upload(), then finish_upload()
        download,      ///< begin_download(), then send the file's bytes after the reply header
        refuse,        ///< reply `code`, then discard the body or close (the discard rule)
    };
    kind action = kind::refuse;
    protocol::errc code = protocol::errc::internal;
    std::string_view message;
};

/// One upload in progress, in whichever store holds the bytes.
struct upload_handle {
    std::unique_ptr<services::upload> local;
    std::unique_ptr<object_upload> object;

    explicit operator bool() const noexcept { return local || object; }
    const std::string& name() const { return local ? local->name() : object->name(); }
    std::uint64_t received() const { return local ? local->received() : object->received(); }
    /// Memory it holds beyond the connection's buffers (an object upload's part).
    std::size_t held_bytes() const noexcept { return object ? object->held_bytes() : 0; }
};

class dispatcher {
public:
    /// hashes runs password hashing (register, login); workers everything else that blocks.
    dispatcher(const config& cfg, services::counters& stats, spdlog::logger& log, worker_pool& workers,
               worker_pool& hashes);

    /// Connects the services the server opens at start. ledger: the limiter
    /// counts shared with other instances, or null for one instance alone.
    void attach(services::accounts& accounts, services::local_files& files, services::limit_ledger* ledger) noexcept
    {
        accounts_ = &accounts;
        files_ = &files;
        ledger_ = ledger;
    }
    /// File bodies in an object store instead of the local folder (storage.backend "s3").
    void attach_objects(object_files& objects) noexcept { objects_ = &objects; }

    /// Counts the request and decides how to take it. While draining, every new
    /// request is refused with shutting_down. session is null over UDP.
    admission admit(const protocol::request_header& request, transport via, bool draining,
                    const session_context* session);

    /// Appends the reply to a request admitted as serve_now or buffer. Never
    /// throws: failures become `internal`.
    void serve(const protocol::request_header& request, std::span<const char> body, session_context* session,
               std::string& out);

    /// Serves a request admitted as `work`: the slow part runs on the worker
    /// pool while the loop serves everyone else. Never throws. The request must
    /// own its fields (they are read after the wait).
    boost::asio::awaitable<void> serve_work(const protocol::request_header& request, session_context& session,
                                            std::string& out);

    /// Opens an admitted upload. On refusal the error reply is in out and the result is empty.
    boost::asio::awaitable<upload_handle> begin_upload(const protocol::request_header& request,
                                                       session_context& session, std::string& out);
    /// The body has fully arrived: verify, publish durably, reply. Never throws.
    boost::asio::awaitable<void> finish_upload(const protocol::request_header& request, const session_context& session,
                                               upload_handle up, std::chrono::steady_clock::time_point started,
                                               std::string& out);
    /// A local body write failed mid-way: reply storage_full (or internal) and
    /// drop the bytes. For an object upload (the store failed): reply
    /// storage_unavailable and keep the stored parts as a partial.
    boost::asio::awaitable<void> fail_upload(const protocol::request_header& request, upload_handle up,
                                             std::error_code why, std::string& out);
    /// An object upload's part could not be stored: storage_unavailable, and
    /// the parts stored before stay a resumable partial. Never throws.
    boost::asio::awaitable<void> fail_object_upload(const protocol::request_header& request,
                                                    std::unique_ptr<object_upload> up, std::string why,
                                                    std::string& out);
    /// The connection ended mid-body: keep what arrived as a partial. Never throws.
    boost::asio::awaitable<void> keep_partial(upload_handle up);

    /// A file's bytes to send after the reply header: from a local file
    /// (fd, sendfile) or from the object store (stream).
    struct download {
        util::unique_fd fd;
        std::uint64_t offset = 0;
        std::uint64_t count = 0;
        std::unique_ptr<s3::object_stream> stream;
    };
    /// Opens the file and appends the ok reply header (or an error reply) to out.
    boost::asio::awaitable<std::optional<download>> begin_download(const protocol::request_header& request,
                                                                   session_context& session, std::string& out);
    /// Counts a download's end and logs it.
    void end_download(const protocol::request_header& request, const session_context& session, const download& d,
                      bool complete, double seconds);

    /// Re-reads limits that may change while running (login backoff, hello's limits).
    void apply_config();
    /// hello tells clients where TLS listens.
    void set_tls_port(std::uint16_t port) noexcept { tcp_info_.tls_port = port; }

    /// Appends an error reply and counts it. request may be null (frame errors, busy, timeout).
    void reply_error(std::string& out, const protocol::request_header* request, protocol::errc code,
                     std::string_view message);

    /// A service call that threw: `unavailable` (logged as a warning) when the
    /// database cannot be reached, so the client may retry on the same
    /// connection; `internal` (logged as an error) for anything else.
    void reply_failure(std::string& out, const protocol::request_header& request, std::string_view what,
                       const std::exception& e);

    services::counters& stats() noexcept { return stats_; }

    // The handlers named by the op table (op_table.cpp).
    void serve_ping(const protocol::request_header& request, std::span<const char> body, session_context* session,
                    std::string& out);
    void serve_hello(const protocol::request_header& request, std::span<const char> body, session_context* session,
                     std::string& out);
    void serve_echo(const protocol::request_header& request, std::span<const char> body, session_context* session,
                    std::string& out);
    void serve_stats(const protocol::request_header& request, std::span<const char> body, session_context* session,
                     std::string& out);
    /// Ends the login; with a "token", also forgets that remembered login (a database call, on the worker pool).
    boost::asio::awaitable<void> logout(const protocol::request_header& request, session_context& session,
                                        std::string& out);
    void serve_whoami(const protocol::request_header& request, std::span<const char> body, session_context* session,
                      std::string& out);
    boost::asio::awaitable<void> register_user(const protocol::request_header& request, session_context& session,
                                               std::string& out);
    boost::asio::awaitable<void> login(const protocol::request_header& request, session_context& session,
                                       std::string& out);
    boost::asio::awaitable<void> stat_file(const protocol::request_header& request, session_context& session,
                                           std::string& out);
    boost::asio::awaitable<void> list_files(const protocol::request_header& request, session_context& session,
                                            std::string& out);
    boost::asio::awaitable<void> delete_file(const protocol::request_header& request, session_context& session,
                                             std::string& out);

private:
    static std::string file_name(const protocol::request_header& request);
    void reply_upload_refused(const protocol::request_header& request, services::file_status status,
                              std::uint64_t partial, std::string& out);
    void reply_uploaded(const protocol::request_header& request, const session_context& session,
                        const services::file_record& file, std::chrono::steady_clock::time_point started,
                        std::string& out);
    /// false after an error reply (offset past the end).
    bool reply_download_header(const protocol::request_header& request, const services::file_record& file,
                               std::uint64_t offset, std::string& out);
    void reply_deleted(const protocol::request_header& request, const session_context& session,
                       const std::string& name, std::string& out);
    /// The same ops over the object store (object_ops.cpp).
    boost::asio::awaitable<upload_handle> begin_object_upload(const protocol::request_header& request,
                                                              session_context& session, std::string& out);
    boost::asio::awaitable<void> finish_object_upload(const protocol::request_header& request,
                                                      const session_context& session, std::unique_ptr<object_upload> up,
                                                      std::chrono::steady_clock::time_point started, std::string& out);
    boost::asio::awaitable<void> keep_object_partial(std::unique_ptr<object_upload> up);
    boost::asio::awaitable<std::optional<download>> begin_object_download(const protocol::request_header& request,
                                                                          session_context& session, std::string& out);
    boost::asio::awaitable<void> delete_object_file(const protocol::request_header& request, session_context& session,
                                                    std::string& out);
    /// storage_unavailable, counted and logged.
    void reply_store_failure(std::string& out, const protocol::request_header& request, std::string_view what);

    /// On a worker: whether the session's login still matches its account (same
    /// id, same generation), with the account's admin flag as it is now.
    static std::optional<services::user_identity> current_login(services::accounts& accounts,
                                                                const services::user_identity& login);
    /// Back on the loop with current_login's answer: false after logging the
    /// session out and replying unauthorized when the login was revoked.
    bool keep_login(const std::optional<services::user_identity>& now, const protocol::request_header& request,
                    session_context& session, std::string& out);
    /// Runs work(user) on the worker pool in the same job as current_login, so a
    /// revoked login does nothing; nullopt after keep_login replied unauthorized.
    /// work's result must be default-constructible; give it only reference captures.
    template <class Work>
    boost::asio::awaitable<std::optional<std::invoke_result_t<Work&, const std::string&>>>
    as_current_login(const protocol::request_header& request, session_context& session, std::string& out, Work work);
    /// False after replying busy when the worker queue is full (workers.queue_limit).
    bool has_worker_room(const protocol::request_header& request, std::string& out);
    /// False after replying busy when the hashing queue is full (workers.hash_queue_limit).
    bool has_hash_room(const protocol::request_header& request, std::string& out);
    /// Returns once some login attempt in flight has ended (the limiter said `wait`).
    boost::asio::awaitable<void> login_attempt_ended();
    /// Ends an attempt the limiter let through and wakes the logins waiting for one.
    void end_login_attempt(const std::string& user, const std::string& address, services::login_limiter::result how);
    /// False after replying tls_required when auth.plaintext forbids a password on this connection.
    bool may_send_password(const protocol::request_header& request, const session_context& session, std::string& out);
    /// user and password fields checked by the contract's rules; false after replying bad_request.
    bool read_credentials(const protocol::request_header& request, std::string& user, std::string& password,
                          std::string& out);
    /// A login's fields: user, then password or token (exactly one), and
    /// remember. False after replying bad_request.
    struct login_fields;
    bool read_login(const protocol::request_header& request, login_fields& fields, std::string& out);
    bool read_remember(const protocol::request_header& request, login_fields& fields, std::string& out);
    /// How a login's credentials fared: over the limits shared with other
    /// instances (checked first), or the password's or token's own outcome.
    struct checked_login {
        services::accounts::outcome result{};
        bool over_shared_limit = false;
        services::user_identity who;
    };
    boost::asio::awaitable<checked_login> check_credentials(const login_fields& fields, const std::string& address);

    const config& cfg_;
    services::counters& stats_;
    spdlog::logger& log_;
    worker_pool& workers_;
    worker_pool& hashes_;
    services::accounts* accounts_ = nullptr;
    services::local_files* files_ = nullptr;
    object_files* objects_ = nullptr;
    services::limit_ledger* ledger_ = nullptr;
    services::login_limiter limiter_;
    services::register_limiter registrations_;
    /// Never expires: logins waiting for an attempt in flight to end wait on it,
    /// and each end cancels it, waking them all to ask the limiter again. Made
    /// on the loop's executor by the first login that waits.
    std::optional<boost::asio::steady_timer> login_attempts_ended_;
    std::vector<protocol::op> tcp_ops_;
    services::server_info tcp_info_;
};

template <class Work>
boost::asio::awaitable<std::optional<std::invoke_result_t<Work&, const std::string&>>>
dispatcher::as_current_login(const protocol::request_header& request, session_context& session, std::string& out,
                             Work work)
{
    using result = std::invoke_result_t<Work&, const std::string&>;
    struct checked {
        std::optional<services::user_identity> login;
        result value{};
    };
    auto* accounts = accounts_;
    const std::string user = session.user;
    const services::user_identity login = session.login;
    auto done = co_await workers_.run([accounts, &login, &user, &work] {
        checked r{current_login(*accounts, login)};
        if (r.login)
            r.value = work(user);
        return r;
    });
    if (!keep_login(done.login, request, session, out))
        co_return std::nullopt;
    co_return std::move(done.value);
}

} // namespace fxd::daemon
