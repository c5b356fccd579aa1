#pragma once
/// stats: the daemon's counters. One instance per io_context, touched only from
/// its thread, so plain integers suffice.

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/ops.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace fxd::services {

/// Why a datagram went unanswered (rate limits are counted apart).
enum class udp_drop : std::uint8_t {
    empty,          ///< an empty datagram: answering would let two services ping-pong
    reply_shaped,   ///< its header has "status": a reply, not a request
    malformed,      ///< not one valid frame
    oversize_reply, ///< the reply would be more than twice the request
    send_failed,    ///< the kernel did not take the reply
    internal,       ///< serving it failed unexpectedly
};

struct counters {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    std::uint64_t connections_open = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t connections_refused = 0; ///< turned away with busy, for any reason
    std::uint64_t connections_refused_per_address = 0; ///< of those, for limits.max_connections_per_address
    std::uint64_t connections_cut_unread = 0; ///< cut for leaving limits.max_pending_reply_bytes unread
    std::uint64_t connections_cut_memory = 0; ///< cut for pinning the most unread replies past limits.max_buffered_bytes
    std::uint64_t timeouts = 0;

    std::array<std::uint64_t, protocol::op_count> requests_by_op{};
    std::uint64_t requests_unknown_op = 0;
    std::array<std::uint64_t, protocol::op_count> errors_by_op{};
    std::uint64_t errors_without_op = 0;
    std::array<std::uint64_t, protocol::errc_count> errors_by_code{};

    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;

    std::uint64_t logins_ok = 0;
    std::uint64_t logins_failed = 0;
    std::uint64_t logins_rate_limited = 0;
    std::uint64_t worker_queue_depth = 0; ///< blocking jobs (SQLite, fsync, files) queued or running
    std::uint64_t hash_queue_depth = 0;   ///< password hashes (register, login) queued or running
    std::uint64_t registrations_ok = 0;
    std::uint64_t registrations_rate_limited = 0; ///< refused by auth.max_registrations_per_address
    std::uint64_t database_unavailable = 0; ///< requests answered `unavailable`: the database could not be reached

    std::uint64_t uploads_ok = 0;
    std::uint64_t uploads_failed = 0;    ///< refused after admission, broken off, or failed to store
    std::uint64_t downloads_ok = 0;
    std::uint64_t downloads_failed = 0;
    std::uint64_t bytes_stored = 0;      ///< sum of finished files' sizes
    std::uint64_t partials_held = 0;

    std::uint64_t udp_in = 0;
    std::uint64_t udp_out = 0;
    std::uint64_t udp_dropped = 0;      ///< every datagram dropped unanswered, whatever the cause below
    /// udp_dropped by cause, in the order of udp_drop.
    std::array<std::uint64_t, 6> udp_dropped_by_cause{};
    std::uint64_t udp_rate_limited = 0; ///< dropped unanswered by udp.rate_per_source

    std::uint64_t tls_open = 0;               ///< of connections.open, those on the TLS port
    std::uint64_t tls_handshakes = 0;         ///< completed
    std::uint64_t tls_handshake_failures = 0; ///< refused, broken off or timed out (timeouts.header_s)

    std::uint64_t proxy_accepted = 0;          ///< valid PROXY headers from proxy.trusted peers
    std::uint64_t proxy_refused_untrusted = 0; ///< PROXY headers from peers not in proxy.trusted
    std::uint64_t proxy_bad_header = 0;        ///< trusted peers' connections closed without a valid header in time

    void count_udp_drop(udp_drop cause) noexcept
    {
        ++udp_dropped;
        ++udp_dropped_by_cause[static_cast<std::size_t>(cause)];
    }

    void count_request(std::optional<protocol::op> op) noexcept
    {
        if (op)
            ++requests_by_op[static_cast<std::size_t>(*op)];
        else
            ++requests_unknown_op;
    }

    void count_error(std::optional<protocol::op> op, protocol::errc code) noexcept
    {
        if (op)
            ++errors_by_op[static_cast<std::size_t>(*op)];
        else
            ++errors_without_op;
        ++errors_by_code[static_cast<std::size_t>(code)];
    }
};

/// The counters as a JSON object (text).
std::string stats_json(const counters& c);

void serve_stats(const protocol::request_header& request, const counters& c, std::string& out);

} // namespace fxd::services
