#include "server.hpp"

#include "database_setup.hpp"

#include "peer_key.hpp"
#include "plain_stream.hpp"
#include "session.hpp"
#include "tls_stream.hpp"
#include "systemd_notify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fxd/util/time.hpp>

#include <spdlog/logger.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <type_traits>

#include <malloc.h>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// "127.0.0.1:7000", "[::1]:7000": an endpoint as an operator types it.
template <class Endpoint>
std::string address_and_port(const Endpoint& at)
{
    const auto address = at.address().to_string();
    const auto port = std::to_string(at.port());
    return at.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

/// Why a listener (tcp, udp, tls) could not be opened, in the operator's
/// terms: where, the likely cause and what to do about it; only the error
/// code's own text, never Boost's source location.
template <class Endpoint>
std::string listener_failure(std::string_view listener, const Endpoint& at, const boost::system::error_code& ec)
{
    namespace errc = boost::system::errc;
    const std::string where = address_and_port(at);
    const std::string name(listener);
    std::string cause;
    if (ec == errc::address_in_use)
        cause = "address already in use: another process " +
                std::string(std::is_same_v<Endpoint, udp::endpoint> ? "uses " : "listens on ") + where +
                " — stop it or choose another port with --set " + name + ".port=...";
    else if (ec == errc::permission_denied)
        cause = "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE — choose another port with --set " +
                name + ".port=...";
    else if (ec == errc::address_not_available)
        cause = "address not available: " + at.address().to_string() + " is not an address of this host — check " +
                name + ".bind";
    else
        cause = ec.message();
    return "cannot open the " + name + " listener on " + where + ": " + cause;
}

/// Opens, binds and (for TCP) listens; a failure throws std::runtime_error
/// with listener_failure's text.
template <class Socket, class Endpoint>
void open_listener(Socket& socket, const Endpoint& at, std::string_view listener)
{
    boost::system::error_code ec;
    socket.open(at.protocol(), ec);
    if constexpr (std::is_same_v<Socket, tcp::acceptor>) {
        if (!ec)
            socket.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec)
            socket.bind(at, ec);
        if (!ec)
            socket.listen(asio::socket_base::max_listen_connections, ec);
    } else if (!ec) {
        socket.bind(at, ec);
    }
    if (ec)
        throw std::runtime_error(listener_failure(listener, at, ec));
}

/// Connections being told busy at once; past this they are closed without a reply.
constexpr std::size_t max_rejecting = 256;
/// Buffer bytes the reaper must free in one pass before it trims the heap.
constexpr std::size_t release_trim_bytes = 1 << 20;
/// How long a connection waits parked before the reaper frees its buffers.
constexpr auto free_idle_after = std::chrono::seconds(1);

/// The reaper wakes often enough to honour the smallest configured timeout.
clock::duration reaper_period(const config& cfg)
{
    const double smallest = std::min({cfg.timeouts.idle_s, cfg.timeouts.header_s, cfg.timeouts.body_s});
    return std::clamp(seconds(smallest / 4), clock::duration(std::chrono::milliseconds(10)),
                      clock::duration(std::chrono::milliseconds(250)));
}

std::string describe(std::exception_ptr failure)
{
    try {
        std::rethrow_exception(std::move(failure));
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception of unknown type";
    }
}

} // namespace

server::server(asio::io_context& io, const config& cfg, spdlog::logger& log)
    : io_(io),
      cfg_(cfg),
      log_(log),
      workers_(cfg.workers.threads, cfg.workers.queue_limit),
      hashes_(cfg.workers.hash_threads, cfg.workers.hash_queue_limit),
      dispatcher_(cfg_, stats_, log, workers_, hashes_),
      requests_([this] { finish(); }),
      memory_([this](std::size_t wanted, const connection* asking) { relieve_memory(wanted, asking); }),
      session_env_(std::make_unique<session_env>(session_env{cfg_, dispatcher_, stats_, log_, requests_, memory_, timings_,
                                                             [this](connection& c) { return admit_client(c); }})),
      acceptor_(io),
      tls_acceptor_(io),
      udp_(io),
      signals_(io, SIGINT, SIGTERM, SIGHUP),
      reaper_timer_(io),
      drain_timer_(io),
      expiry_timer_(io),
      upkeep_timer_(io),
      watchdog_timer_(io),
      trusted_(cfg.proxy.trusted)
{
}

server::~server() = default;

void server::start()
{
    store_ = open_configured_database(cfg_);
    log_.info("database: {} (schema version {})", store_->describe(), store_->schema_version());
    accounts_ = std::make_unique<services::accounts>(
        *store_, services::hash_cost{cfg_.auth.hash_passes, static_cast<std::size_t>(cfg_.auth.hash_memory_bytes)});
    files_ = std::make_unique<services::local_files>(cfg_.storage.dir, *store_);
    if (cfg_.storage.backend == "s3") {
        // The folder's repair would take the catalog's object rows for
        // missing files: the object backend's own sweep looks after them.
        open_object_store();
    } else {
        for (const auto& line : files_->repair())
            log_.warn("storage repaired: {}", line);
        if (const auto expired = files_->expire_partials(util::unix_now() - static_cast<std::int64_t>(cfg_.storage.partial_ttl_s)))
            log_.info("removed {} partial upload(s) older than storage.partial_ttl_s", expired);
    }
    files_->refresh_totals(true);
    dispatcher_.attach(*accounts_, *files_, store_->ledger());
    if (objects_)
        dispatcher_.attach_objects(*objects_);
    open_sockets();
    open_admin_listener();

    spawn("accept", accept_loop(acceptor_, false), true);
    if (tls_)
        spawn("tls accept", accept_loop(tls_acceptor_, true), true);
    spawn("udp", udp_loop(), true);
    spawn("reaper", reaper(), true);
    spawn("signals", signals(), true);
    spawn("partial expiry", expire_partials(), false);
    if (objects_)
        spawn("object store upkeep", object_store_upkeep(), false);
    if (const auto every = systemd::watchdog_interval())
        spawn("watchdog", systemd::keep_alive(watchdog_timer_, *every), false);
    if (admin_)
        spawn("admin accept", admin_->accept_loop(), false);
    started_ = true;
}

void server::open_sockets()
{
    // Sockets passed by systemd (fxd.socket) are adopted as they are; the
    // config's address and port apply only to a socket that was not passed.
    const auto passed = systemd::take_listen_fds();
    if (passed.tcp.fd >= 0) {
        acceptor_.assign(passed.tcp.ipv6 ? tcp::v6() : tcp::v4(), passed.tcp.fd);
        log_.info("tcp: serving the socket passed by systemd");
    } else {
        open_listener(acceptor_, tcp::endpoint(asio::ip::make_address(cfg_.tcp.bind), cfg_.tcp.port), "tcp");
    }

    if (passed.udp.fd >= 0) {
        udp_.assign(passed.udp.ipv6 ? udp::v6() : udp::v4(), passed.udp.fd);
        log_.info("udp: serving the socket passed by systemd");
    } else {
        open_listener(udp_, udp::endpoint(asio::ip::make_address(cfg_.udp.bind), cfg_.udp.port), "udp");
    }
    udp_.non_blocking(true); // lets the loop drain queued datagrams without waiting
    udp_limiter_.configure(cfg_.udp.rate_per_source, cfg_.udp.burst);
    if (cfg_.tls.enabled())
        open_tls_listener();
}

void server::open_tls_listener()
{
    tls_ = std::make_shared<const tls_settings>(cfg_); // a certificate that does not load stops the start
    const auto& bind = cfg_.tls.bind.empty() ? cfg_.tcp.bind : cfg_.tls.bind;
    const tcp::endpoint at(asio::ip::make_address(bind), cfg_.tls.port);
    open_listener(tls_acceptor_, at, "tls");
    tls_port_ = tls_acceptor_.local_endpoint().port();
    dispatcher_.set_tls_port(*tls_port_);
}

void server::reload_tls(const config& next)
{
    if (!tls_)
        return; // turning TLS on needs a listener: a restart
    try {
        tls_ = std::make_shared<const tls_settings>(next);
        log_.info("reload: TLS certificate, key and CA re-read; new connections use them");
    } catch (const std::exception& e) {
        log_.error("reload: keeping the running TLS certificate: {}", e.what());
    }
}

void server::spawn(std::string_view what, asio::awaitable<void> task, bool essential)
{
    asio::co_spawn(io_, std::move(task), [this, what, essential](std::exception_ptr failure) {
        if (failure) {
            const auto why = describe(std::move(failure));
            if (essential)
                fail(what, why);
            else
                log_.error("the {} task ended by an error: {}", what, why);
        } else if (essential && !finished_ && !requests_.draining()) {
            fail(what, "it returned while the daemon was serving");
        }
    });
}

void server::fail(std::string_view what, std::string_view why)
{
    log_.critical("the {} loop failed ({}): stopping with exit status 1", what, why);
    failed_ = true;
    drain();
}

std::uint16_t server::tcp_port() const
{
    return acceptor_.local_endpoint().port();
}

std::uint16_t server::udp_port() const
{
    return udp_.local_endpoint().port();
}

std::optional<std::uint16_t> server::tls_port() const
{
    return tls_port_;
}

asio::awaitable<void> server::accept_loop(tcp::acceptor& acceptor, bool tls)
{
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (requests_.draining() || !acceptor.is_open())
            co_return;
        if (ec) {
            // Out of descriptors and the like: say so, back off, keep serving the others.
            log_.warn("accept failed: {}", ec.message());
            asio::steady_timer pause(io_, std::chrono::milliseconds(100));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        ++stats_.connections_total;
        admit_connection(std::move(socket), tls);
    }
}

void server::admit_connection(tcp::socket socket, bool tls)
{
    boost::system::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec)
        return; // reset before we got to it
    const auto address = peer.address();
    // A balancer's connection counts under the client its PROXY header names
    // (admit_client, once the header is read), never under the balancer.
    const bool proxied = trusted_.trusts(address);
    const auto key = per_address_key(address);
    bool address_full = false;
    if (!proxied) {
        const auto counted = per_address_.find(key);
        address_full = counted != per_address_.end() && counted->second >= cfg_.limits.max_connections_per_address;
    }
    const bool refuse = sessions_ >= cfg_.limits.max_connections || address_full;
    if (refuse) {
        ++stats_.connections_refused;
        if (address_full)
            ++stats_.connections_refused_per_address;
        if (rejecting_ >= max_rejecting)
            return; // past that, the socket closes as it goes out of scope
    } else {
        socket.set_option(tcp::no_delay(true), ec);
    }
    try {
        if (tls)
            serve_connection(tls_stream(std::move(socket), tls_), address, refuse, proxied);
        else
            serve_connection(plain_stream(std::move(socket)), address, refuse, proxied);
    } catch (const std::exception& e) {
        log_.error("cannot serve a connection from {}: {}", address.to_string(), e.what());
    }
}

bool server::admit_client(connection& c)
{
    const auto key = per_address_key(c.peer());
    auto& from_address = per_address_[key];
    if (from_address >= cfg_.limits.max_connections_per_address) {
        ++stats_.connections_refused;
        ++stats_.connections_refused_per_address;
        log_.debug("connection for client {} refused: limits.max_connections_per_address", c.peer().to_string());
        return false;
    }
    ++from_address;
    c.count_per_address();
    return true;
}

template <class Stream>
void server::serve_connection(Stream stream, const asio::ip::address& peer, bool refuse, bool proxied)
{
    auto owned = std::make_unique<session<Stream>>(std::move(stream), peer, proxied, *session_env_);
    auto& s = *owned;
    connections_.push_front(std::move(owned));
    const auto where = connections_.begin();
    if (!refuse && !proxied) {
        ++per_address_[per_address_key(peer)];
        s.count_per_address();
    }
    if (refuse) {
        ++rejecting_;
    } else {
        ++sessions_;
        ++stats_.connections_open;
        if constexpr (Stream::encrypted)
            ++stats_.tls_open;
    }
    // The session catches everything itself; the handler only accounts for its end.
    asio::co_spawn(io_, refuse ? s.refuse_busy() : s.run(), [this, where, refuse](std::exception_ptr failure) {
        if (failure)
            log_.error("a connection ended by an error: {}", describe(std::move(failure)));
        if (Stream::encrypted && !refuse)
            --stats_.tls_open;
        connection_ended(where, refuse);
    });
}

void server::connection_ended(connection_list::iterator which, bool refused)
{
    if (refused) {
        --rejecting_;
    } else {
        if (const auto counted = per_address_.find(per_address_key((*which)->peer()));
            (*which)->counted_per_address() && counted != per_address_.end() && --counted->second == 0)
            per_address_.erase(counted);
        --sessions_;
        --stats_.connections_open;
    }
    connections_.erase(which);
}

void server::relieve_memory(std::size_t wanted, const connection* asking)
{
    // Rare (only past the bound), so a scan of every connection is cheap enough.
    while (memory_.held() + wanted > cfg_.limits.max_buffered_bytes) {
        connection* worst = nullptr;
        for (auto& c : connections_) {
            if (c.get() != asking && !c->stopping() && c->unread_bytes() > (worst ? worst->unread_bytes() : 0))
                worst = c.get();
        }
        if (!worst)
            return; // nobody pins unread replies: the asking request gets busy
        ++stats_.connections_cut_memory;
        log_.info("connection from {} cut: {} reply bytes unread while {} bytes are held for all connections "
                  "(limits.max_buffered_bytes)",
                  worst->peer().to_string(), worst->unread_bytes(), memory_.held());
        worst->cut_for_memory();
    }
}

asio::awaitable<void> server::reaper()
{
    while (!finished_) {
        reaper_timer_.expires_after(reaper_period(cfg_)); // timeouts may change on reload
        co_await reaper_timer_.async_wait(use_tuple);
        const auto now = clock::now();
        std::size_t released = 0;
        for (auto& c : connections_) {
            c->expire_if_due(now);
            // Idle connections hold no buffers: memory stays flat with many of them.
            if (c->parked_since_before(now - free_idle_after))
                released += c->release_idle_memory();
        }
        // Freed buffers sit between live allocations, where free() alone keeps
        // them resident; after a burst of many, hand their pages back.
        if (released >= release_trim_bytes)
            ::malloc_trim(0);
    }
}

asio::awaitable<void> server::expire_partials()
{
    // Every few minutes (or sooner for short TTLs), off the loop. With a
    // database shared by several instances, also every database.sweep_interval_s:
    // uploads that a dead instance (or this one, while the database was
    // away) left behind become resumable partials on any instance.
    const auto expiry_period = std::clamp(seconds(cfg_.storage.partial_ttl_s / 4), clock::duration(std::chrono::seconds(1)),
                                          clock::duration(std::chrono::minutes(10)));
    const bool shared = store_->shared();
    const auto period = shared ? std::min(expiry_period, seconds(cfg_.database.sweep_interval_s)) : expiry_period;
    auto next_expiry = clock::now() + expiry_period;
    while (!finished_) {
        expiry_timer_.expires_after(period);
        auto [ec] = co_await expiry_timer_.async_wait(use_tuple);
        if (ec || finished_)
            co_return;
        auto* files = files_.get();
        if (objects_) {
            // Uploads of dead instances become partials every period; the
            // expiry and the store's own sweep on the expiry's schedule.
            const bool expire = clock::now() >= next_expiry;
            if (expire)
                next_expiry = clock::now() + expiry_period;
            const auto before = util::unix_now() - static_cast<std::int64_t>(cfg_.storage.partial_ttl_s);
            try {
                std::vector<std::string> lines; // no co_await inside ?: (GCC 12 mishandles it)
                if (expire)
                    lines = co_await objects_->sweep(before);
                else
                    lines = co_await objects_->recover();
                for (const auto& line : lines)
                    log_.info("object storage: {}", line);
                co_await workers_.run([files] {
                    files->refresh_totals(true);
                    return true;
                });
            } catch (const std::exception& e) {
                log_.warn("sweeping the object storage failed: {}", e.what());
            }
            continue;
        }
        if (shared) {
            try {
                const auto recovered = co_await workers_.run([files] {
                    auto lines = files->recover_uploads();
                    files->refresh_totals(true); // the whole cluster's bytes and partials, for stats
                    return lines;
                });
                for (const auto& line : recovered)
                    log_.warn("storage repaired: {}", line);
            } catch (const std::exception& e) {
                log_.warn("looking for interrupted uploads failed: {}", e.what());
            }
        }
        if (clock::now() < next_expiry)
            continue;
        next_expiry = clock::now() + expiry_period;
        const auto before = util::unix_now() - static_cast<std::int64_t>(cfg_.storage.partial_ttl_s);
        try {
            const auto removed = co_await workers_.run([files, before] { return files->expire_partials(before); });
            if (removed != 0)
                log_.info("removed {} partial upload(s) older than storage.partial_ttl_s", removed);
        } catch (const std::exception& e) {
            log_.error("expiring partial uploads failed: {}", e.what());
        }
    }
}

void server::open_object_store()
{
    s3::credentials creds;
    try {
        const auto file = cfg_.s3.credentials_file.empty() ? std::nullopt
                                                            : std::optional<std::filesystem::path>(cfg_.s3.credentials_file);
        creds = s3::load_credentials(s3::process_environment(), file);
    } catch (const std::exception& e) {
        throw config_error(std::string("storage.backend \"s3\" needs credentials: ") + e.what() +
                           " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or s3.credentials_file)");
    }
    s3::client_options options;
    options.endpoint = cfg_.s3.endpoint;
    options.region = cfg_.s3.region;
    options.path_style = cfg_.s3.path_style;
    options.ca_file = cfg_.s3.ca_file.string();
    options.request_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(cfg_.s3.request_timeout_s * 1000));
    try {
        s3_ = std::make_unique<s3::client>(io_.get_executor(), options, std::move(creds));
    } catch (const std::exception& e) {
        throw config_error(std::string("s3: ") + e.what());
    }
    objects_ = std::make_unique<object_files>(*s3_, cfg_.s3.bucket, cfg_.s3.prefix, cfg_.s3.part_bytes, *store_, workers_,
                                              log_);
    log_.info("storage: objects in bucket {} at {} under prefix '{}', parts of {} bytes", cfg_.s3.bucket,
              cfg_.s3.endpoint, cfg_.s3.prefix, cfg_.s3.part_bytes);
}

asio::awaitable<void> server::object_store_upkeep()
{
    constexpr auto every = std::chrono::seconds(5);
    while (!finished_) {
        co_await objects_->probe();
        if (const auto why = objects_->unavailable_reason())
            log_.debug("object store: {}", *why);
        co_await objects_->delete_pending();
        upkeep_timer_.expires_after(every);
        auto [ec] = co_await upkeep_timer_.async_wait(use_tuple);
        if (ec || finished_)
            co_return;
    }
}

asio::awaitable<void> server::signals()
{
    while (!finished_) {
        auto [ec, signo] = co_await signals_.async_wait(use_tuple);
        if (ec || finished_)
            co_return;
        if (signo == SIGHUP) {
            if (requests_.draining())
                log_.info("SIGHUP while draining: not reloading");
            else if (reload_handler_)
                reload_handler_();
            else
                log_.info("SIGHUP: no config to reload");
            continue;
        }
        if (requests_.draining()) {
            log_.warn("second signal {}: stopping now", signo);
            finish();
            co_return;
        }
        log_.info("signal {}: draining (up to {} s)", signo, cfg_.timeouts.drain_s);
        drain();
    }
}

void server::drain()
{
    if (requests_.draining())
        return;
    const bool idle = requests_.close();
    systemd::notify_stopping("draining");
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    tls_acceptor_.close(ignored);
    udp_.close(ignored);
    if (idle) {
        finish();
        return;
    }
    drain_timer_.expires_after(seconds(cfg_.timeouts.drain_s));
    drain_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !finished_) {
            log_.warn("drain deadline passed with {} request(s) in flight; closing them", requests_.in_flight());
            finish();
        }
    });
}

void server::finish()
{
    if (finished_)
        return;
    finished_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    tls_acceptor_.close(ignored);
    udp_.close(ignored);
    signals_.cancel(ignored);
    reaper_timer_.cancel();
    drain_timer_.cancel();
    expiry_timer_.cancel();
    upkeep_timer_.cancel();
    watchdog_timer_.cancel();
    if (admin_)
        admin_->close();
    for (auto& c : connections_)
        c->stop();
    log_.info("stopped: {} connection(s) closed", connections_.size());
}

} // namespace fxd::daemon
