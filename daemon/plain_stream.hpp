#pragma once
/// A plain TCP connection as a session drives it: reads and writes are tried
/// at once and never wait; the session waits for readiness only when an
/// attempt would block, so an idle connection holds no buffer while it waits.
/// A TLS stream offers the same members (the session is generic over them).

#include "stream_socket.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace fxd::daemon {

/// The outcome of one attempt that does not wait.
struct io_attempt {
    enum class result { done, would_block, closed };
    result state = result::done;
    std::size_t bytes = 0;
    boost::system::error_code error; ///< why it closed, when it was not a clean end of stream
};

/// Sends a piece of a file through a stream that cannot use sendfile(2): read
/// at offset, write what the stream takes now, advance offset by it. What it
/// does not take is read again on the next call (TLS needs the same bytes).
template <class Stream>
io_attempt write_file_piece(Stream& stream, stream_socket& socket, int fd, std::uint64_t& offset, std::uint64_t count)
{
    const auto chunk = socket.read_file(fd, offset, count);
    if (chunk.empty())
        return {io_attempt::result::closed, 0, {}};
    const auto sent = stream.write_now(chunk);
    if (sent.state == io_attempt::result::done)
        offset += sent.bytes;
    return sent;
}

class plain_stream {
public:
    static constexpr bool encrypted = false;

    explicit plain_stream(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

    /// Nothing to negotiate: ready at once.
    boost::asio::awaitable<boost::system::error_code> start() { co_return boost::system::error_code{}; }
    std::string failure() const { return {}; }
    std::string peer_subject() const { return {}; }

    io_attempt read_now(std::span<char> into);
    io_attempt write_now(std::span<const char> from);
    /// Sends up to count bytes of fd from offset (advanced by what went out):
    /// sendfile(2) from the page cache, or pread and write where it cannot.
    io_attempt send_file_now(int fd, std::uint64_t& offset, std::uint64_t count);

    boost::asio::awaitable<wait_result> wait_readable() { return socket_.wait(true); }
    boost::asio::awaitable<wait_result> wait_writable() { return socket_.wait(false); }

    /// Ends our sending side: the client reads our last reply, then end of stream.
    bool shutdown_send() noexcept { return socket_.shutdown_send(); }
    void cancel() noexcept { socket_.cancel(); }
    /// The socket itself, for what comes before the stream starts (a PROXY header).
    stream_socket& socket() noexcept { return socket_; }
    void close() noexcept { socket_.close(); }

private:
    stream_socket socket_;
    bool use_sendfile_ = true;
};

} // namespace fxd::daemon
