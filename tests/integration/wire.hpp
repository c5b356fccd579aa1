#pragma once
/// Helpers shared by the integration tests: raw frames for malformed input,
/// end-of-stream checks, stats snapshots, polling with a deadline, and a UDP
/// socket that keeps its port across datagrams.

#include <fxd/client/client.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace fxd::test {

using namespace std::chrono_literals;
namespace json = boost::json;

inline const std::string localhost = "127.0.0.1";

/// The four-byte big-endian length prefix of a frame.
inline std::string be32(std::uint32_t v)
{
    std::string s(4, '\0');
    s[0] = static_cast<char>((v >> 24) & 0xFF);
    s[1] = static_cast<char>((v >> 16) & 0xFF);
    s[2] = static_cast<char>((v >> 8) & 0xFF);
    s[3] = static_cast<char>(v & 0xFF);
    return s;
}

/// A frame from header text taken as is (it need not be JSON) and a body.
inline std::string raw_frame(std::string_view header_text, std::string_view body = {})
{
    std::string s = be32(static_cast<std::uint32_t>(header_text.size()));
    s += header_text;
    s += body;
    return s;
}

/// Printable form of bytes for failure messages.
inline std::string show(std::string_view s)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += ch;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    return out;
}

/// How a connection's receiving side looks.
enum class stream_end { eof, reset, data, open };

inline std::ostream& operator<<(std::ostream& os, stream_end e)
{
    switch (e) {
    case stream_end::eof: return os << "eof";
    case stream_end::reset: return os << "reset";
    case stream_end::data: return os << "data";
    case stream_end::open: return os << "open";
    }
    return os << "?";
}

/// Waits up to timeout for the next event on the receiving side: a clean EOF,
/// a reset, a byte of data (consumed), or nothing at all (open).
inline stream_end next_event(const client::connection& conn, std::chrono::milliseconds timeout = 10s)
{
    pollfd p{conn.native_handle(), POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0)));
        if (rc == 0)
            return stream_end::open;
        if (rc < 0 && errno == EINTR)
            continue;
        char byte = 0;
        const ssize_t r = ::recv(conn.native_handle(), &byte, 1, MSG_DONTWAIT);
        if (r == 0)
            return stream_end::eof;
        if (r > 0)
            return stream_end::data;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            continue;
        return stream_end::reset;
    }
}

/// Sends bytes, ignoring a failure because the peer closed or reset (a
/// refused request may be cut off while its body is still being sent).
inline bool send_tolerant(client::connection& conn, std::string_view bytes)
{
    try {
        conn.send_raw(bytes);
        return true;
    } catch (const client::connection_error&) {
        return false;
    }
}

/// Polls pred every 20 ms until it holds or the timeout passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        std::this_thread::sleep_for(20ms);
    }
}

/// A reply body parsed as a JSON object (throws when it is not one).
inline json::object body_object(const client::reply& r)
{
    return json::parse(r.body).as_object();
}

/// The stats body, fetched over a fresh connection.
inline json::object stats_snapshot(std::uint16_t tcp_port)
{
    client::connection conn(localhost, tcp_port);
    const auto r = conn.call({{"op", "stats"}});
    if (!r.ok())
        throw std::runtime_error("stats failed: " + json::serialize(r.header));
    return body_object(r);
}

/// A counter by dotted path, e.g. "errors.by_code.bad_frame"; throws when absent.
inline std::uint64_t counter(const json::object& stats, std::string_view path)
{
    const json::value* at = nullptr;
    const json::object* obj = &stats;
    while (!path.empty()) {
        const auto dot = path.find('.');
        const auto key = path.substr(0, dot);
        at = obj->if_contains(key);
        if (!at)
            throw std::runtime_error("stats has no " + std::string(key));
        path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
        if (!path.empty())
            obj = &at->as_object();
    }
    return at->to_number<std::uint64_t>();
}

/// The reply's string field, or "" when missing.
inline std::string str(const client::reply& r, std::string_view key)
{
    const auto* v = r.header.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

/// What echo makes of a body: ASCII letters upper-cased, every other byte as is.
inline std::string upper_ascii(std::string s)
{
    for (auto& c : s) {
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
}

/// An error reply as the contract describes it: status, code, message, size 0.
inline void check_error(const client::reply& r, std::string_view code)
{
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "error");
    BOOST_TEST(r.code() == code);
    BOOST_TEST(!str(r, "message").empty());
    BOOST_TEST(r.header.contains("size"));
    BOOST_TEST(r.body.empty());
}

/// A UDP socket connected to the daemon, kept across datagrams.
class udp_peer {
public:
    /// source, when given, is the local address to send from (e.g. "127.0.0.2").
    explicit udp_peer(std::uint16_t port, const char* source = nullptr)
    {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0)
            throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        if (source) {
            sockaddr_in from{};
            from.sin_family = AF_INET;
            if (::inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
                ::bind(fd_, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0)
                throw std::runtime_error(std::string("bind to ") + source + ": " + std::strerror(errno));
        }
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0)
            throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    }
    ~udp_peer() { ::close(fd_); }
    udp_peer(const udp_peer&) = delete;
    udp_peer& operator=(const udp_peer&) = delete;

    void send(std::string_view datagram)
    {
        if (::send(fd_, datagram.data(), datagram.size(), 0) < 0)
            throw std::runtime_error(std::string("send: ") + std::strerror(errno));
    }

    /// The next datagram, or nullopt when none came within the timeout.
    std::optional<std::string> receive(std::chrono::milliseconds timeout = 10s)
    {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
            return std::nullopt;
        std::string buf(65536, '\0');
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n < 0)
            return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }

private:
    int fd_ = -1;
};

} // namespace fxd::test
