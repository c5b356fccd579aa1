#pragma once
/// Per-connection state the reaper and the drain can see. The session
/// coroutine owns the rest (decoder, output) on its own frame.

#include <fxd/protocol/decoder.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <string>

namespace fxd::daemon {

using clock = std::chrono::steady_clock;

struct connection {
    explicit connection(boost::asio::ip::tcp::socket s) : socket(std::move(s)) {}

    boost::asio::ip::tcp::socket socket;
    boost::asio::ip::address peer; ///< the client's address, counted in server::per_address_
    /// When the current wait must end; the reaper cancels the socket's I/O after it.
    clock::time_point deadline = clock::time_point::max();
    bool expired = false;   ///< the reaper cancelled I/O because the deadline passed
    bool stopping = false;  ///< the drain is over: close without further replies
    /// Parked between requests holding no partial frame: the reaper may free buffers.
    bool parked = false;
    clock::time_point parked_since;
    protocol::decoder* decoder = nullptr;
    std::string* output = nullptr;

    void set_deadline(clock::duration d) noexcept
    {
        deadline = clock::now() + d;
        expired = false;
    }
};

/// Seconds from the config as a clock duration.
inline clock::duration seconds(double s)
{
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

} // namespace fxd::daemon
