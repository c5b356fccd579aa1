#pragma once
/// What the integration tests share about the wire: raw frames for malformed
/// input, reply fields and the contract's reply checks, end-of-stream checks,
/// stats snapshots, polling with a deadline, cheap logins, and a UDP socket
/// that keeps its port across datagrams.

#include <fxd/client/client.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace fxd::test {

using namespace std::chrono_literals;

inline const std::string localhost = "127.0.0.1";

// ---- Frames and bytes ----------------------------------------------------------------------

/// The four-byte big-endian length prefix of a frame (protocol's own encoding).
std::string be32(std::uint32_t v);

/// A frame from header text taken as is (it need not be JSON) and a body.
std::string raw_frame(std::string_view header_text, std::string_view body = {});

/// Printable form of bytes for failure messages.
std::string show(std::string_view s);

/// n reproducible pseudo-random bytes.
std::string random_bytes(std::size_t n, unsigned seed);

/// piece, times times over.
std::string repeat(std::string_view piece, std::size_t times);

/// What echo makes of a body: ASCII letters upper-cased, every other byte as is.
std::string upper_ascii(std::string s);

// ---- Replies -------------------------------------------------------------------------------

/// A string field, or "" when missing or not a string.
std::string str(const boost::json::object& o, std::string_view key);
std::string str(const client::reply& r, std::string_view key);

/// A numeric field, or -1 when missing or not a number.
std::int64_t num(const client::reply& r, std::string_view key);

/// A reply body parsed as a JSON object (throws when it is not one).
boost::json::object body_object(const client::reply& r);

/// An error reply as the contract describes it: status, code, message, size 0, no body.
void check_error(const client::reply& r, std::string_view code);
/// The same, for a reply to `op` (which it names).
void check_error(const client::reply& r, std::string_view op, std::string_view code);

/// The connection still serves, and in order: a ping with this id comes back next.
void check_usable(client::connection& conn, std::int64_t id = 424242);

// ---- The connection's state ----------------------------------------------------------------

/// How a connection's receiving side looks.
enum class stream_end { eof, reset, data, open };
std::ostream& operator<<(std::ostream& os, stream_end e);

/// Waits up to timeout for the next event on the receiving side: a clean EOF,
/// a reset, a byte of data (consumed), or nothing at all (open).
stream_end next_event(const client::connection& conn, std::chrono::milliseconds timeout = 10s);

/// True when a byte is waiting on the socket right now (does not consume it).
bool has_data_now(const client::connection& conn);

/// Sends bytes, ignoring a failure because the peer closed or reset (a
/// refused request may be cut off while its body is still being sent).
bool send_tolerant(client::connection& conn, std::string_view bytes);

/// Polls pred every step until it holds or the timeout passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s, std::chrono::milliseconds step = 20ms)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(step);
    }
}

// ---- Stats ---------------------------------------------------------------------------------

/// The stats body, fetched over a fresh connection.
boost::json::object stats_snapshot(std::uint16_t tcp_port);

/// A counter by dotted path, e.g. "errors.by_code.bad_frame"; throws when absent.
std::uint64_t counter(const boost::json::object& stats, std::string_view path);

// ---- UDP -----------------------------------------------------------------------------------

/// A UDP socket connected to the daemon, kept across datagrams.
class udp_peer {
public:
    /// source, when given, is the local address to send from (e.g. "127.0.0.2").
    explicit udp_peer(std::uint16_t port, const char* source = nullptr);
    ~udp_peer();
    udp_peer(const udp_peer&) = delete;
    udp_peer& operator=(const udp_peer&) = delete;

    void send(std::string_view datagram);
    /// The next datagram, or nullopt when none came within the timeout.
    std::optional<std::string> receive(std::chrono::milliseconds timeout = 10s);

private:
    int fd_ = -1;
};

} // namespace fxd::test
