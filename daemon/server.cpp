#include "server.hpp"

#include "connection.hpp"
#include "systemd_notify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <spdlog/logger.h>

#include <algorithm>
#include <csignal>

#include <malloc.h>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// How long a closing connection may keep sending before it is cut.
constexpr auto linger_time = std::chrono::seconds(2);
/// Connections being told busy at once; past this they are closed without a reply.
constexpr std::size_t max_rejecting = 256;
/// Buffer bytes the reaper must free in one pass before it trims the heap.
constexpr std::size_t release_trim_bytes = 1 << 20;

std::int64_t unix_time()
{
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The reaper wakes often enough to honour the smallest configured timeout.
clock::duration reaper_period(const config& cfg)
{
    const double smallest = std::min({cfg.timeouts.idle_s, cfg.timeouts.header_s, cfg.timeouts.body_s});
    return std::clamp(seconds(smallest / 4), clock::duration(std::chrono::milliseconds(10)),
                      clock::duration(std::chrono::milliseconds(250)));
}

} // namespace

server::server(asio::io_context& io, const config& cfg, spdlog::logger& log)
    : io_(io),
      cfg_(cfg),
      log_(log),
      workers_(cfg.workers.threads, cfg.workers.queue_limit),
      dispatcher_(cfg_, stats_, log, workers_),
      acceptor_(io),
      udp_(io),
      signals_(io, SIGINT, SIGTERM, SIGHUP),
      reaper_timer_(io),
      drain_timer_(io),
      expiry_timer_(io),
      watchdog_timer_(io)
{
}

server::~server() = default;

void server::start()
{
    store_ = std::make_unique<services::sqlite_store>(database_path(cfg_));
    accounts_ = std::make_unique<services::accounts>(
        *store_, services::hash_cost{cfg_.auth.hash_passes, static_cast<std::size_t>(cfg_.auth.hash_memory_bytes)});
    dispatcher_.attach_accounts(*accounts_);
    files_ = std::make_unique<services::local_files>(cfg_.storage.dir, *store_);
    for (const auto& line : files_->repair())
        log_.warn("storage repaired: {}", line);
    if (const auto expired = files_->expire_partials(unix_time() - static_cast<std::int64_t>(cfg_.storage.partial_ttl_s)))
        log_.info("removed {} partial upload(s) older than storage.partial_ttl_s", expired);
    dispatcher_.attach_files(*files_);

    // Sockets passed by systemd (fxd.socket) are adopted as they are; the
    // config's address and port apply only to a socket that was not passed.
    const auto passed = systemd::take_listen_fds();
    if (passed.tcp.fd >= 0) {
        acceptor_.assign(passed.tcp.ipv6 ? tcp::v6() : tcp::v4(), passed.tcp.fd);
        log_.info("tcp: serving the socket passed by systemd");
    } else {
        const tcp::endpoint tcp_at(asio::ip::make_address(cfg_.tcp.bind), cfg_.tcp.port);
        acceptor_.open(tcp_at.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(tcp_at);
        acceptor_.listen(asio::socket_base::max_listen_connections);
    }

    if (passed.udp.fd >= 0) {
        udp_.assign(passed.udp.ipv6 ? udp::v6() : udp::v4(), passed.udp.fd);
        log_.info("udp: serving the socket passed by systemd");
    } else {
        const udp::endpoint udp_at(asio::ip::make_address(cfg_.udp.bind), cfg_.udp.port);
        udp_.open(udp_at.protocol());
        udp_.bind(udp_at);
    }
    udp_.non_blocking(true); // lets the loop drain queued datagrams without waiting
    udp_limiter_.configure(cfg_.udp.rate_per_source, cfg_.udp.burst);

    asio::co_spawn(io_, accept_loop(), asio::detached);
    asio::co_spawn(io_, udp_loop(), asio::detached);
    asio::co_spawn(io_, reaper(), asio::detached);
    asio::co_spawn(io_, expire_partials(), asio::detached);
    asio::co_spawn(io_, signals(), asio::detached);
    if (const auto every = systemd::watchdog_interval())
        asio::co_spawn(io_, systemd::keep_alive(watchdog_timer_, *every), asio::detached);
}

std::uint16_t server::tcp_port() const
{
    return acceptor_.local_endpoint().port();
}

std::uint16_t server::udp_port() const
{
    return udp_.local_endpoint().port();
}

asio::awaitable<void> server::accept_loop()
{
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
        if (draining_ || !acceptor_.is_open())
            co_return;
        if (ec) {
            // Out of descriptors and the like: say so, back off, keep serving the others.
            log_.warn("accept failed: {}", ec.message());
            asio::steady_timer pause(io_, std::chrono::milliseconds(100));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        ++stats_.connections_total;
        const auto peer = socket.remote_endpoint(ec);
        if (ec)
            continue; // reset before we got to it
        const auto address = peer.address();
        auto& from_address = per_address_[address];
        if (sessions_ >= cfg_.limits.max_connections || from_address >= cfg_.limits.max_connections_per_address) {
            ++stats_.connections_refused;
            if (from_address >= cfg_.limits.max_connections_per_address)
                ++stats_.connections_refused_per_address;
            if (from_address == 0)
                per_address_.erase(address);
            if (rejecting_ >= max_rejecting)
                continue; // the socket closes as it goes out of scope
            connections_.emplace_front(std::move(socket));
            asio::co_spawn(io_, refuse_busy(connections_.begin()), asio::detached);
            continue;
        }
        ++from_address;
        socket.set_option(tcp::no_delay(true), ec);
        connections_.emplace_front(std::move(socket));
        connections_.front().peer = address;
        asio::co_spawn(io_, session(connections_.begin()), asio::detached);
    }
}

asio::awaitable<void> server::refuse_busy(connection_list::iterator self)
{
    ++rejecting_;
    connection& c = *self;
    std::string out;
    dispatcher_.reply_error(out, nullptr, protocol::errc::busy, "too many connections; try again later");
    bool ok = false;
    c.set_deadline(linger_time);
    co_await write_all(c, out, ok);
    if (ok)
        co_await linger_close(c);
    boost::system::error_code ignored;
    c.socket.close(ignored);
    connections_.erase(self);
    --rejecting_;
}

asio::awaitable<void> server::write_all(connection& c, std::string_view out, bool& ok)
{
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(out), use_tuple);
    stats_.bytes_out += n;
    ok = !ec;
    if (ec && !c.stopping)
        log_.debug("write failed: {}", ec.message());
}

asio::awaitable<void> server::linger_close(connection& c)
{
    // Half-close and read what the client still sends, so it reads our last
    // reply instead of a reset.
    boost::system::error_code ec;
    c.socket.shutdown(tcp::socket::shutdown_send, ec);
    if (ec)
        co_return;
    c.set_deadline(linger_time);
    std::array<char, 2048> sink{};
    std::uint64_t discarded = 0;
    while (!c.stopping && discarded <= cfg_.limits.max_discard_bytes) {
        auto [read_ec, n] = co_await c.socket.async_read_some(asio::buffer(sink), use_tuple);
        if (read_ec)
            break;
        discarded += n;
        stats_.bytes_in += n;
    }
}

asio::awaitable<void> server::reaper()
{
    const auto free_after = std::chrono::seconds(1);
    while (!finished_) {
        reaper_timer_.expires_after(reaper_period(cfg_)); // timeouts may change on reload
        co_await reaper_timer_.async_wait(use_tuple);
        const auto now = clock::now();
        std::size_t released = 0;
        for (auto& c : connections_) {
            if (!c.expired && now >= c.deadline) {
                c.expired = true;
                boost::system::error_code ignored;
                c.socket.cancel(ignored);
            } else if (c.parked && now - c.parked_since >= free_after) {
                // Idle connections hold no buffers: memory stays flat with many of them.
                if (c.decoder) {
                    released += c.decoder->capacity();
                    c.decoder->release_memory();
                }
                if (c.output && c.output->capacity() > std::string().capacity()) {
                    released += c.output->capacity();
                    std::string().swap(*c.output);
                }
            }
        }
        // Freed buffers sit between live allocations, where free() alone keeps
        // them resident; after a burst of many, hand their pages back.
        if (released >= release_trim_bytes)
            ::malloc_trim(0);
    }
}

asio::awaitable<void> server::expire_partials()
{
    // Every few minutes (or sooner for short TTLs), off the loop.
    const auto period = std::clamp(seconds(cfg_.storage.partial_ttl_s / 4), clock::duration(std::chrono::seconds(1)),
                                   clock::duration(std::chrono::minutes(10)));
    while (!finished_) {
        expiry_timer_.expires_after(period);
        auto [ec] = co_await expiry_timer_.async_wait(use_tuple);
        if (ec || finished_)
            co_return;
        auto* files = files_.get();
        const auto before = unix_time() - static_cast<std::int64_t>(cfg_.storage.partial_ttl_s);
        try {
            const auto removed = co_await workers_.run([files, before] { return files->expire_partials(before); });
            if (removed != 0)
                log_.info("removed {} partial upload(s) older than storage.partial_ttl_s", removed);
        } catch (const std::exception& e) {
            log_.error("expiring partial uploads failed: {}", e.what());
        }
    }
}

asio::awaitable<void> server::signals()
{
    while (!finished_) {
        auto [ec, signo] = co_await signals_.async_wait(use_tuple);
        if (ec || finished_)
            co_return;
        if (signo == SIGHUP) {
            if (draining_)
                log_.info("SIGHUP while draining: not reloading");
            else if (reload_handler_)
                reload_handler_();
            else
                log_.info("SIGHUP: no config to reload");
            continue;
        }
        if (draining_) {
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
    if (draining_)
        return;
    draining_ = true;
    systemd::notify_stopping("draining");
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    udp_.close(ignored);
    if (in_flight_ == 0) {
        finish();
        return;
    }
    drain_timer_.expires_after(seconds(cfg_.timeouts.drain_s));
    drain_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && !finished_) {
            log_.warn("drain deadline passed with {} request(s) in flight; closing them", in_flight_);
            finish();
        }
    });
}

void server::request_finished()
{
    --in_flight_;
    if (draining_ && in_flight_ == 0)
        finish();
}

void server::finish()
{
    if (finished_)
        return;
    finished_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    udp_.close(ignored);
    signals_.cancel(ignored);
    reaper_timer_.cancel();
    drain_timer_.cancel();
    expiry_timer_.cancel();
    watchdog_timer_.cancel();
    for (auto& c : connections_) {
        c.stopping = true;
        c.socket.cancel(ignored);
    }
    log_.info("stopped: {} connection(s) closed", connections_.size());
}

} // namespace fxd::daemon
