#include <fxd/client/client.hpp>

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/reply.hpp>
#include <fxd/util/net.hpp>

#include <boost/json/serialize.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

namespace fxd::client {

namespace {

[[noreturn]] void fail(const std::string& what)
{
    throw connection_error(what);
}

std::vector<util::endpoint> resolve(const std::string& host, std::uint16_t port, int socktype)
{
    try {
        return util::resolve(host, port, socktype);
    } catch (const util::resolve_error& e) {
        fail(e.what());
    }
}

} // namespace

bool reply::ok() const
{
    const auto* status = header.if_contains("status");
    return status && status->is_string() && status->get_string() == "ok";
}

std::string reply::code() const
{
    const auto* code = header.if_contains("code");
    return code && code->is_string() ? std::string(code->get_string()) : std::string();
}

connection::connection(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                       const std::string& source_address)
    : timeout_(timeout)
{
    std::string last_error = "no address";
    for (const auto& ep : resolve(host, port, SOCK_STREAM)) {
        // fd_ holds each attempt's socket (wait() polls it); the next attempt's reset closes a failed one.
        fd_.reset(::socket(ep.family, ep.socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ep.protocol));
        if (!fd_)
            continue;
        if (!source_address.empty()) {
            const auto local = resolve(source_address, 0, SOCK_STREAM).front();
            if (::bind(fd_.get(), local.address(), local.length) != 0) {
                last_error = std::string("bind ") + source_address + ": " + std::strerror(errno);
                continue;
            }
        }
        if (::connect(fd_.get(), ep.address(), ep.length) != 0) {
            if (errno != EINPROGRESS) {
                last_error = std::strerror(errno);
                continue;
            }
            try {
                wait(POLLOUT);
            } catch (const connection_error& e) {
                last_error = e.what();
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                last_error = std::strerror(err);
                continue;
            }
        }
        const int one = 1;
        ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    fail("cannot connect to " + host + ":" + std::to_string(port) + ": " + last_error);
}

short connection::wait(short events)
{
    pollfd p{fd_.get(), events, 0};
    for (;;) {
        const int rc = ::poll(&p, 1, static_cast<int>(timeout_.count()));
        if (rc > 0)
            return p.revents;
        if (rc == 0)
            fail("timed out after " + std::to_string(timeout_.count()) + " ms");
        if (errno != EINTR)
            fail(std::string("poll: ") + std::strerror(errno));
    }
}

void connection::send_raw(std::string_view bytes)
{
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait(POLLOUT);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            fail(std::string("send: ") + std::strerror(errno));
        }
    }
}

std::size_t connection::receive_some(std::span<char> into, const char* closed_message)
{
    for (;;) {
        const ssize_t r = ::recv(fd_.get(), into.data(), into.size(), 0);
        if (r > 0)
            return static_cast<std::size_t>(r);
        if (r == 0)
            fail(closed_message);
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            wait(POLLIN);
        else if (errno != EINTR)
            fail(std::string("recv: ") + std::strerror(errno));
    }
}

std::string connection::receive_exact(std::size_t n)
{
    std::string out(n, '\0');
    for (std::size_t got = 0; got < n;)
        got += receive_some({out.data() + got, n - got}, "connection closed by the server");
    return out;
}

bool connection::closed_by_peer()
{
    char byte = 0;
    for (;;) {
        const ssize_t r = ::recv(fd_.get(), &byte, 1, 0);
        if (r == 0)
            return true;
        if (r > 0)
            return false;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            try {
                wait(POLLIN);
            } catch (const connection_error&) {
                return false;
            }
        } else if (errno == ECONNRESET) {
            return true;
        } else if (errno != EINTR) {
            return false;
        }
    }
}

void connection::shutdown_send()
{
    ::shutdown(fd_.get(), SHUT_WR);
}

std::string make_frame(boost::json::object header, std::string_view body)
{
    header["size"] = body.size();
    std::string out;
    protocol::append_request(out, boost::json::serialize(header), std::span(body.data(), body.size()));
    return out;
}

void connection::send(boost::json::object header, std::span<const char> body)
{
    send_raw(make_frame(std::move(header), std::string_view(body.data(), body.size())));
}

void connection::send_header(boost::json::object header, std::uint64_t size)
{
    header["size"] = size;
    std::string out;
    protocol::append_request(out, boost::json::serialize(header));
    send_raw(out);
}

bool connection::send_file(int file, std::uint64_t offset, std::uint64_t n,
                           const std::function<void(std::span<const char>)>& on_chunk)
{
    constexpr std::size_t chunk = 256 * 1024;
    const auto buf = std::make_unique_for_overwrite<char[]>(chunk);
    while (n > 0) {
        const ssize_t got = ::pread(file, buf.get(), static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk)),
                                    static_cast<off_t>(offset));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            throw std::system_error(errno, std::generic_category(), "read");
        if (got == 0)
            throw std::runtime_error("the file became shorter while it was being sent");
        std::string_view piece(buf.get(), static_cast<std::size_t>(got));
        while (!piece.empty()) {
            // Watch for a reply too: the server answers a refused or failed
            // upload before the body ends, then stops reading.
            const short ev = wait(POLLOUT | POLLIN);
            if (ev & (POLLIN | POLLHUP | POLLERR))
                return false;
            const ssize_t sent = ::send(fd_.get(), piece.data(), piece.size(), MSG_NOSIGNAL);
            if (sent > 0) {
                piece.remove_prefix(static_cast<std::size_t>(sent));
            } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                continue;
            } else if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) {
                return false; // the reply, if any, is still readable
            } else {
                fail(std::string("send: ") + std::strerror(errno));
            }
        }
        if (on_chunk)
            on_chunk(std::span<const char>(buf.get(), static_cast<std::size_t>(got)));
        offset += static_cast<std::uint64_t>(got);
        n -= static_cast<std::uint64_t>(got);
    }
    return true;
}

void connection::receive_body(std::uint64_t n, const std::function<void(std::span<const char>)>& on_chunk)
{
    constexpr std::size_t chunk = 256 * 1024;
    const auto buf = std::make_unique_for_overwrite<char[]>(chunk);
    while (n > 0) {
        const std::size_t got = receive_some({buf.get(), static_cast<std::size_t>(std::min<std::uint64_t>(n, chunk))},
                                             "connection closed by the server in the middle of a body");
        n -= got;
        on_chunk(std::span<const char>(buf.get(), got));
    }
}

reply connection::receive_header()
{
    // Exact reads: nothing past the header leaves the socket, so the body can
    // then be read whole or streamed (receive_body) straight from it.
    protocol::reply_decoder decoder;
    try {
        while (decoder.next() == protocol::reply_decoder::event::need_more)
            decoder.feed(receive_exact(decoder.needed()));
    } catch (const protocol::reply_format_error& e) {
        fail(e.what());
    }
    return {decoder.header(), {}};
}

reply connection::receive()
{
    reply r = receive_header();
    r.body = receive_exact(static_cast<std::size_t>(r.header.at("size").to_number<std::uint64_t>()));
    return r;
}

reply connection::call(boost::json::object header, std::string_view body)
{
    send(std::move(header), body);
    return receive();
}

reply parse_frame(std::string_view frame)
{
    try {
        auto decoded = protocol::decode_reply(frame);
        return {std::move(decoded.header), std::string(decoded.body)};
    } catch (const protocol::reply_format_error& e) {
        fail(e.what());
    }
}

std::optional<std::string> udp_exchange(const std::string& host, std::uint16_t port, std::string_view datagram,
                                        std::chrono::milliseconds timeout)
{
    const auto ep = resolve(host, port, SOCK_DGRAM).front();
    const util::unique_fd fd(::socket(ep.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd)
        fail(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd.get(), ep.address(), ep.length) != 0)
        fail(std::string("connect: ") + std::strerror(errno));
    if (::send(fd.get(), datagram.data(), datagram.size(), 0) < 0)
        fail(std::string("send: ") + std::strerror(errno));
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
        return std::nullopt;
    std::string buf(65536, '\0');
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0)
        return std::nullopt;
    buf.resize(static_cast<std::size_t>(n));
    return buf;
}

reply udp_call(const std::string& host, std::uint16_t port, boost::json::object header, std::string_view body,
               std::chrono::milliseconds timeout)
{
    const auto datagram = udp_exchange(host, port, make_frame(std::move(header), body), timeout);
    if (!datagram)
        fail("no reply over UDP from " + host + ":" + std::to_string(port) + " within " +
             std::to_string(timeout.count()) + " ms");
    return parse_frame(*datagram);
}

} // namespace fxd::client
