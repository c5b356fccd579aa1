// The admin listener's routes: /metrics, /healthz, /readyz, /status and status.json.
#include "logging.hpp"
#include "server.hpp"
#include "version.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <spdlog/logger.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

namespace fxd::daemon {

extern const std::string_view status_page_html; // generated from assets/status.html

namespace asio = boost::asio;

namespace {

constexpr std::string_view plain_text = "text/plain; charset=utf-8";

/// What one worker job learns from storage and the user database.
struct storage_probe {
    std::optional<std::string> not_ready; ///< the first readiness check that failed, and why
    std::optional<std::uint64_t> users;
    std::optional<std::uint64_t> partial_bytes;
};

} // namespace

void server::open_admin_listener()
{
    // Checks that may block run on a worker (not_ready_reason).
    add_readiness_check("storage", [dir = cfg_.storage.dir]() -> std::optional<std::string> {
        if (::access(dir.c_str(), W_OK | X_OK) != 0)
            return "storage.dir '" + dir.string() + "' is not writable: " + std::strerror(errno);
        return std::nullopt;
    });
    if (objects_)
        add_readiness_check("object store", [objects = objects_.get()] { return objects->unavailable_reason(); });
    add_readiness_check("user database", [store = store_.get()]() -> std::optional<std::string> {
        (void)store->identity(0); // a real query: the database answers (no row has id 0)
        return std::nullopt;
    });
    if (!cfg_.admin.enabled)
        return;
    admin_ = std::make_unique<admin_listener>(io_, [this](std::string_view path) { return admin_route(std::string(path)); });
    admin_->open(cfg_.admin.bind, cfg_.admin.port);
    log_.info("admin: http://{}:{}/ serves /metrics, /healthz, /readyz and /status",
              cfg_.admin.bind.find(':') != std::string::npos ? "[" + cfg_.admin.bind + "]" : cfg_.admin.bind,
              admin_->port());
}

std::optional<std::uint16_t> server::admin_port() const
{
    if (!admin_)
        return std::nullopt;
    return admin_->port();
}

asio::awaitable<admin_response> server::admin_route(std::string path)
{
    try {
        if (path == "/healthz")
            co_return admin_response{200, std::string(plain_text), "ok\n"}; // answered by the loop: it turns
        if (path == "/readyz") {
            const auto why = co_await not_ready_reason();
            if (why)
                co_return admin_response{503, std::string(plain_text), "not ready: " + *why + "\n"};
            co_return admin_response{200, std::string(plain_text), "ready\n"};
        }
        if (path == "/metrics") {
            auto text = co_await metrics_text();
            co_return admin_response{200, "text/plain; version=0.0.4; charset=utf-8", std::move(text)};
        }
        if (path == "/status" || path == "/")
            co_return admin_response{200, "text/html; charset=utf-8", std::string(status_page_html)};
        if (path == "/status.json")
            co_return admin_response{200, "application/json", status_json()};
        co_return admin_response{404, std::string(plain_text), "not found; try /metrics, /healthz, /readyz or /status\n"};
    } catch (const std::exception& e) {
        log_.error("admin: {} failed: {}", escape_for_log(path), e.what());
    }
    co_return admin_response{500, std::string(plain_text), "internal error\n"};
}

asio::awaitable<std::optional<std::string>> server::not_ready_reason()
{
    if (!started_)
        co_return "starting";
    if (requests_.draining() || finished_)
        co_return "draining";
    if (!acceptor_.is_open() || !udp_.is_open() || (tls_ && !tls_acceptor_.is_open()))
        co_return "a listener is closed";
    if (!workers_.has_room())
        co_return "the worker queue is full (workers.queue_limit)";
    const auto* checks = &readiness_;
    const auto failure = co_await workers_.run([checks]() -> std::optional<std::string> {
        for (const auto& [what, check] : *checks) {
            try {
                if (auto why = check())
                    return what + ": " + *why;
            } catch (const std::exception& e) {
                return what + ": " + e.what();
            }
        }
        return std::nullopt;
    });
    co_return failure;
}

void server::refresh_gauges()
{
    stats_.worker_queue_depth = workers_.depth();
    stats_.hash_queue_depth = hashes_.depth();
    if (files_) {
        stats_.bytes_stored = files_->cached_bytes_stored();
        stats_.partials_held = files_->cached_partials();
    }
}

asio::awaitable<std::string> server::metrics_text()
{
    gauges g;
    g.connections_tls = stats_.tls_open;
    g.connections_tcp = stats_.connections_open - stats_.tls_open;
    g.connections_rejecting = rejecting_;
    g.requests_in_flight = requests_.in_flight();
    g.buffered_bytes = memory_.held();
    g.worker_queue_limit = cfg_.workers.queue_limit;
    g.hash_queue_limit = cfg_.workers.hash_queue_limit;
    if (objects_)
        g.object_store_up = !objects_->unavailable_reason();

    // One worker job asks the database for the user count and the bytes of
    // partial uploads and runs the readiness checks; with the queue full,
    // they are left out of this scrape (and fxd_ready is 0).
    const bool serving = started_ && !requests_.draining() && !finished_;
    if (store_ && workers_.has_room()) {
        const auto* checks = &readiness_;
        auto* store = store_.get();
        const auto probe = co_await workers_.run([checks, store] {
            storage_probe p;
            for (const auto& [what, check] : *checks) {
                try {
                    p.not_ready = check();
                } catch (const std::exception& e) {
                    p.not_ready = e.what();
                }
                if (p.not_ready)
                    break;
            }
            try {
                p.users = store->names().size();
                std::uint64_t held = 0;
                for (const auto& partial : store->all_partials())
                    held += partial.second.bytes;
                p.partial_bytes = held;
            } catch (const std::exception&) {
                // the readiness check above says why
            }
            return p;
        });
        g.users = probe.users;
        g.partial_bytes = probe.partial_bytes;
        g.ready = serving && !probe.not_ready;
    }
    refresh_gauges();
    co_return render_metrics(stats_, timings_, g, sample_process(), version);
}

std::string server::status_json()
{
    refresh_gauges();
    std::string out = "{\"version\":";
    out += boost::json::serialize(boost::json::string(version));
    out += ",\"draining\":";
    out += requests_.draining() ? "true" : "false";
    out += ",\"in_flight\":" + std::to_string(requests_.in_flight());
    out += ",\"stats\":";
    out += services::stats_json(stats_);
    out += '}';
    return out;
}

} // namespace fxd::daemon
