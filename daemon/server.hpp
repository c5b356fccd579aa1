#pragma once
/// One server per io_context: a TCP listener with a session per connection, a
/// UDP socket, a reaper that enforces every deadline, and the drain on
/// SIGTERM/SIGINT, a config reload on SIGHUP. All of it runs on the
/// io_context's single thread.

#include "admin_http.hpp"
#include "config.hpp"
#include "connection.hpp"
#include "dispatcher.hpp"
#include "metrics.hpp"
#include "proxy_trust.hpp"
#include "source_limiter.hpp"
#include "worker_pool.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/services/accounts.hpp>
#include <fxd/services/database.hpp>
#include <fxd/services/stats.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace fxd::daemon {

struct session_env;
class tls_settings;

class server {
public:
    server(boost::asio::io_context& io, const config& cfg, spdlog::logger& log);
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server();

    /// Opens storage, binds both sockets and starts serving. Throws when the
    /// database cannot be opened or a socket cannot be bound (start-up failures).
    void start();

    std::uint16_t tcp_port() const;
    std::uint16_t udp_port() const;
    /// The TLS listener's port; nullopt when TLS is off (tls.cert and tls.key unset).
    std::optional<std::uint16_t> tls_port() const;
    /// The admin listener's port; nullopt when admin.enabled is false.
    std::optional<std::uint16_t> admin_port() const;

    /// One readiness condition for /readyz: runs on a worker thread (it may
    /// block), returns why the daemon is not ready, or nullopt. start() adds
    /// "storage" and "user database"; a store with its own needs adds its own.
    using readiness_check = std::function<std::optional<std::string>()>;
    void add_readiness_check(std::string what, readiness_check check)
    {
        readiness_.emplace_back(std::move(what), std::move(check));
    }

    /// Stops accepting, refuses new requests with shutting_down, lets requests in
    /// flight finish for up to timeouts.drain_s, then closes everything so that
    /// io_context::run() returns.
    void drain();

    /// 0 after a drain asked for; 1 when a loop the daemon cannot live without
    /// (accepting, UDP, deadlines, signals) failed and stopped it, so a service
    /// manager restarts it.
    int exit_status() const noexcept { return failed_ ? 1 : 0; }

    /// Applies a re-read config live: log level and format, limits, timeouts,
    /// auth settings. Settings fixed at start (ports, bind addresses,
    /// storage.dir, workers, the accounts database and hash cost) keep their
    /// running values, with a log line saying they need a restart. Open
    /// connections stay open.
    void reload(const config& next);

    /// SIGHUP calls handler on the loop's thread (the app re-reads its config
    /// and calls reload()); without one, SIGHUP is logged and ignored.
    void on_reload(std::function<void()> handler) { reload_handler_ = std::move(handler); }

    /// The UDP path without a socket: one datagram in, the reply (possibly
    /// empty) appended to out. Public so the fuzzers can drive it directly.
    void handle_datagram(std::span<const char> datagram, std::string& out);

private:
    using connection_list = std::list<std::unique_ptr<connection>>;

    /// Runs a coroutine of the server's; a failure is logged, and when the
    /// daemon cannot live without it, also ends the daemon with exit status 1.
    void spawn(std::string_view what, boost::asio::awaitable<void> task, bool essential);
    void fail(std::string_view what, std::string_view why);

    void open_sockets();
    void open_tls_listener();
    /// Re-reads the certificate, key and CA for new TLS connections; on a
    /// file that does not load, keeps the running set and logs why.
    void reload_tls(const config& next);
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool tls);
    void admit_connection(boost::asio::ip::tcp::socket socket, bool tls);
    template <class Stream>
    void serve_connection(Stream stream, const boost::asio::ip::address& peer, bool refuse, bool proxied);
    /// A PROXY header named the client: counts it under limits.max_connections_per_address, or refuses.
    bool admit_client(connection& c);
    void connection_ended(connection_list::iterator which, bool refused);
    /// limits.max_buffered_bytes is passed (or `wanted` more would pass it):
    /// cuts the connections leaving the most replies unread, never `asking`.
    void relieve_memory(std::size_t wanted, const connection* asking);
    struct udp_batch;
    boost::asio::awaitable<void> udp_loop();
    /// Serves the datagrams of one batch, queueing their replies in b.
    void answer_batch(udp_batch& b, std::size_t received);
    void send_replies(udp_batch& b);
    boost::asio::awaitable<void> reaper();
    boost::asio::awaitable<void> expire_partials();
    /// storage.backend "s3": opens the client and the object backend (throws config_error without credentials).
    void open_object_store();
    /// Every few seconds: asks the object store whether it answers (for
    /// /readyz) and deletes the objects queued by deletes and replacements.
    boost::asio::awaitable<void> object_store_upkeep();
    boost::asio::awaitable<void> signals();

    void finish();

    // The admin listener's routes (server_admin.cpp).
    void open_admin_listener();
    boost::asio::awaitable<admin_response> admin_route(std::string path);
    /// Why /readyz answers 503, or nullopt when ready.
    boost::asio::awaitable<std::optional<std::string>> not_ready_reason();
    boost::asio::awaitable<std::string> metrics_text();
    std::string status_json();
    /// Copies the values `stats` reads at the moment of asking into stats_.
    void refresh_gauges();

    boost::asio::io_context& io_;
    config cfg_; ///< the server's own copy, replaced by reload()
    spdlog::logger& log_;
    services::counters stats_;
    timings timings_; ///< the histograms of /metrics
    // The services the worker pool's jobs touch are declared before the pool,
    // so the pool is joined (destroyed) before any of them goes.
    std::unique_ptr<services::database> store_;
    std::unique_ptr<services::accounts> accounts_;
    std::unique_ptr<services::local_files> files_;
    std::unique_ptr<s3::client> s3_;          ///< storage.backend "s3" only
    std::unique_ptr<object_files> objects_;   ///< storage.backend "s3" only
    worker_pool workers_;
    worker_pool hashes_; ///< password hashing only (workers.hash_threads)
    dispatcher dispatcher_;
    request_gate requests_;
    memory_budget memory_;
    std::unique_ptr<session_env> session_env_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::ip::tcp::acceptor tls_acceptor_;
    std::shared_ptr<const tls_settings> tls_; ///< what new TLS connections use; null while TLS is off
    std::optional<std::uint16_t> tls_port_;
    boost::asio::ip::udp::socket udp_;
    protocol::header_parser udp_parser_; ///< reused datagram after datagram
    source_limiter udp_limiter_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer reaper_timer_;
    boost::asio::steady_timer drain_timer_;
    boost::asio::steady_timer expiry_timer_;
    boost::asio::steady_timer upkeep_timer_;
    boost::asio::steady_timer watchdog_timer_; ///< systemd keep-alives, when WatchdogSec= is set
    std::function<void()> reload_handler_;
    std::vector<std::pair<std::string, readiness_check>> readiness_;
    std::unique_ptr<admin_listener> admin_; ///< null while admin.enabled is false
    connection_list connections_;
    /// Connections being served per client address, an IPv6 one by its /64 (per_address_key).
    std::unordered_map<boost::asio::ip::address, std::uint32_t> per_address_;
    trusted_proxies trusted_; ///< proxy.trusted, parsed; replaced by reload()
    std::size_t sessions_ = 0;  ///< connections being served (max_connections applies)
    std::size_t rejecting_ = 0; ///< connections being told busy
    bool started_ = false; ///< start() has finished: /readyz may say ready
    bool finished_ = false;
    bool failed_ = false;
};

} // namespace fxd::daemon
