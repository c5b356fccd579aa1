#include "wire.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/util/hex.hpp>

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
#include <array>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <random>
#include <stdexcept>

namespace fxd::test {

namespace json = boost::json;

std::string be32(std::uint32_t v)
{
    std::array<unsigned char, protocol::prefix_bytes> prefix{};
    protocol::store_u32_be(prefix.data(), v);
    return {prefix.begin(), prefix.end()};
}

std::string raw_frame(std::string_view header_text, std::string_view body)
{
    std::string s = be32(static_cast<std::uint32_t>(header_text.size()));
    s += header_text;
    s += body;
    return s;
}

std::string show(std::string_view s)
{
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += ch;
        } else {
            out += "\\x";
            util::append_hex(out, c);
        }
    }
    return out;
}

std::string random_bytes(std::size_t n, unsigned seed)
{
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> byte(0, 255);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(byte(gen));
    return s;
}

std::string repeat(std::string_view piece, std::size_t times)
{
    std::string s;
    s.reserve(piece.size() * times);
    for (std::size_t i = 0; i < times; ++i)
        s += piece;
    return s;
}

std::string upper_ascii(std::string s)
{
    for (auto& c : s) {
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
}

std::string str(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::string str(const client::reply& r, std::string_view key)
{
    return str(r.header, key);
}

std::int64_t num(const client::reply& r, std::string_view key)
{
    const auto* v = r.header.if_contains(key);
    if (!v || !v->is_number())
        return -1;
    return v->to_number<std::int64_t>();
}

json::object body_object(const client::reply& r)
{
    return json::parse(r.body).as_object();
}

void check_error(const client::reply& r, std::string_view code)
{
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "error");
    BOOST_TEST(r.code() == code);
    BOOST_TEST(!str(r, "message").empty());
    BOOST_TEST(num(r, "size") == 0);
    BOOST_TEST(r.body.empty());
}

void check_error(const client::reply& r, std::string_view op, std::string_view code)
{
    check_error(r, code);
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "op") == op);
}

void check_usable(client::connection& conn, std::int64_t id)
{
    const auto r = conn.call({{"op", "ping"}, {"id", id}});
    BOOST_TEST_INFO("ping reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(str(r, "op") == "ping");
    const auto* got = r.header.if_contains("id");
    BOOST_TEST_REQUIRE(got != nullptr);
    BOOST_TEST(got->to_number<std::int64_t>() == id);
}

std::ostream& operator<<(std::ostream& os, stream_end e)
{
    switch (e) {
    case stream_end::eof: return os << "eof";
    case stream_end::reset: return os << "reset";
    case stream_end::data: return os << "data";
    case stream_end::open: return os << "open";
    }
    return os << "?";
}

stream_end next_event(const client::connection& conn, std::chrono::milliseconds timeout)
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

bool has_data_now(const client::connection& conn)
{
    pollfd p{conn.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

bool send_tolerant(client::connection& conn, std::string_view bytes)
{
    try {
        conn.send_raw(bytes);
        return true;
    } catch (const client::connection_error&) {
        return false;
    }
}

json::object stats_snapshot(std::uint16_t tcp_port)
{
    client::connection conn(localhost, tcp_port);
    const auto r = conn.call({{"op", "stats"}});
    if (!r.ok())
        throw std::runtime_error("stats failed: " + json::serialize(r.header));
    return body_object(r);
}

std::uint64_t counter(const json::object& stats, std::string_view path)
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

udp_peer::udp_peer(std::uint16_t port, const char* source)
{
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (source) {
        sockaddr_in from{};
        from.sin_family = AF_INET;
        if (::inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
            ::bind(fd_, reinterpret_cast<const sockaddr*>(&from), sizeof from) != 0) {
            const std::string why = std::strerror(errno);
            ::close(fd_);
            throw std::runtime_error(std::string("bind to ") + source + ": " + why);
        }
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd_);
        throw std::runtime_error("connect: " + why);
    }
}

udp_peer::~udp_peer()
{
    ::close(fd_);
}

void udp_peer::send(std::string_view datagram)
{
    if (::send(fd_, datagram.data(), datagram.size(), 0) < 0)
        throw std::runtime_error(std::string("send: ") + std::strerror(errno));
}

std::optional<std::string> udp_peer::receive(std::chrono::milliseconds timeout)
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

} // namespace fxd::test
