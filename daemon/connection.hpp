#pragma once
/// What the server's reaper and drain see of a connection, whatever its
/// stream: its deadline, and a way to cancel its I/O and free its buffers.

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <functional>

namespace fxd::daemon {

using clock = std::chrono::steady_clock;

/// Seconds from the config as a clock duration.
inline clock::duration seconds(double s)
{
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

class connection {
public:
    explicit connection(boost::asio::ip::address peer) : peer_(std::move(peer)) {}
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    virtual ~connection() = default;

    /// The client: the socket's peer, or the client a trusted balancer's PROXY header named.
    const boost::asio::ip::address& peer() const noexcept { return peer_; }
    /// The connection counts against limits.max_connections_per_address under
    /// peer() (a balancer's own connections do not): the server undoes it at the end.
    bool counted_per_address() const noexcept { return counted_per_address_; }
    void count_per_address() noexcept { counted_per_address_ = true; }

    /// Cancels the pending wait; the session sees it fail and checks expired() and stopping().
    virtual void cancel_io() noexcept = 0;
    /// Frees the read buffer, parser and output of a connection parked between
    /// requests; returns the bytes freed.
    virtual std::size_t release_idle_memory() noexcept = 0;
    /// Reply bytes queued that the client has not taken yet (the kernel's
    /// buffer is full): what the memory bound cuts first.
    virtual std::size_t unread_bytes() const noexcept = 0;
    /// Ends the connection to free what it holds (limits.max_buffered_bytes):
    /// its share leaves the memory budget at once, its I/O is cancelled.
    virtual void cut_for_memory() noexcept = 0;

    /// The reaper: cancels I/O once the deadline has passed.
    void expire_if_due(clock::time_point now) noexcept
    {
        if (!expired_ && now >= deadline_) {
            expired_ = true;
            cancel_io();
        }
    }
    bool parked_since_before(clock::time_point t) const noexcept { return parked_ && parked_since_ <= t; }

    /// The drain is over (or the connection is cut): the session ends without further replies.
    void stop() noexcept
    {
        stopping_ = true;
        cancel_io();
    }
    bool stopping() const noexcept { return stopping_; }

protected:
    void set_deadline(clock::duration d) noexcept { set_deadline_at(clock::now() + d); }
    void set_deadline_at(clock::time_point t) noexcept
    {
        deadline_ = t;
        expired_ = false;
    }
    /// While the connection waits for the worker pool, no deadline runs.
    void clear_deadline() noexcept { deadline_ = clock::time_point::max(); }
    void park() noexcept
    {
        parked_ = true;
        parked_since_ = clock::now();
    }
    void unpark() noexcept { parked_ = false; }
    bool expired() const noexcept { return expired_; }
    /// A PROXY header named the client, before the connection was counted under its peer.
    void set_peer(boost::asio::ip::address client) noexcept { peer_ = std::move(client); }

private:
    boost::asio::ip::address peer_;
    bool counted_per_address_ = false;
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point parked_since_;
    bool expired_ = false;
    bool stopping_ = false;
    bool parked_ = false;
};

/// Requests admitted and not yet answered, over every connection: the drain
/// waits for them to reach zero.
class request_gate {
public:
    /// on_drained runs when the last request in flight ends while draining.
    explicit request_gate(std::function<void()> on_drained) : on_drained_(std::move(on_drained)) {}

    bool draining() const noexcept { return draining_; }
    std::size_t in_flight() const noexcept { return in_flight_; }

    void started() noexcept { ++in_flight_; }
    void finished()
    {
        --in_flight_;
        if (draining_ && in_flight_ == 0)
            on_drained_();
    }
    /// From now on, new requests are refused; true when nothing is in flight.
    bool close() noexcept
    {
        draining_ = true;
        return in_flight_ == 0;
    }

private:
    std::function<void()> on_drained_;
    std::size_t in_flight_ = 0;
    bool draining_ = false;
};

/// The bytes held for all connections together (request bodies being gathered
/// and replies not yet read), against limits.max_buffered_bytes. Each session
/// reports its own share when it changes; relieving the budget (the server's
/// job: it sees every connection) cuts the ones pinning the most unread bytes.
class memory_budget {
public:
    /// relieve(wanted, asking): make room for `wanted` more bytes, never by cutting `asking`.
    using relief = std::function<void(std::size_t wanted, const connection* asking)>;

    explicit memory_budget(relief relieve) : relieve_(std::move(relieve)) {}

    std::size_t held() const noexcept { return held_; }
    /// One connection's share went from `was` to `now`.
    void update(std::size_t was, std::size_t now) noexcept { held_ = held_ - was + now; }
    void relieve(std::size_t wanted, const connection* asking) { relieve_(wanted, asking); }

private:
    relief relieve_;
    std::size_t held_ = 0;
};

} // namespace fxd::daemon
