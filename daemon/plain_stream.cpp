#include "plain_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
/// Most bytes one sendfile(2) call is asked for: big, so a fast client costs few calls.
constexpr std::uint64_t max_sendfile_bytes = 4 << 20;
constexpr std::size_t fallback_chunk_bytes = 256 * 1024;

bool would_block(const boost::system::error_code& ec)
{
    return ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::interrupted;
}

io_attempt from_errno(int error)
{
    if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR)
        return {io_attempt::result::would_block, 0, {}};
    return {io_attempt::result::closed, 0, {error, boost::system::system_category()}};
}

} // namespace

plain_stream::plain_stream(tcp::socket socket) : socket_(std::move(socket))
{
    socket_.non_blocking(true); // attempts return would_block instead of waiting
}

io_attempt plain_stream::read_now(std::span<char> into)
{
    boost::system::error_code ec;
    const auto n = socket_.read_some(asio::buffer(into.data(), into.size()), ec);
    if (would_block(ec))
        return {io_attempt::result::would_block, 0, {}};
    if (ec == asio::error::eof)
        return {io_attempt::result::closed, 0, {}};
    if (ec)
        return {io_attempt::result::closed, 0, ec};
    return {io_attempt::result::done, n, {}};
}

io_attempt plain_stream::write_now(std::span<const char> from)
{
    boost::system::error_code ec;
    const auto n = socket_.write_some(asio::buffer(from.data(), from.size()), ec);
    if (would_block(ec))
        return {io_attempt::result::would_block, 0, {}};
    if (ec)
        return {io_attempt::result::closed, 0, ec};
    return {io_attempt::result::done, n, {}};
}

io_attempt plain_stream::send_file_now(int fd, std::uint64_t& offset, std::uint64_t count)
{
    if (use_sendfile_) {
        auto position = static_cast<off_t>(offset);
        const ssize_t n = ::sendfile(socket_.native_handle(), fd, &position,
                                     static_cast<std::size_t>(std::min(count, max_sendfile_bytes)));
        if (n >= 0) {
            offset = static_cast<std::uint64_t>(position);
            // 0: the file is shorter than its record; cut rather than send garbage.
            return n == 0 ? io_attempt{io_attempt::result::closed, 0, {}}
                          : io_attempt{io_attempt::result::done, static_cast<std::size_t>(n), {}};
        }
        if (errno != EINVAL && errno != ENOSYS)
            return from_errno(errno);
        use_sendfile_ = false; // this file or socket cannot: read and write from now on
    }
    file_chunk_.resize(fallback_chunk_bytes);
    const ssize_t got = ::pread(fd, file_chunk_.data(), std::min<std::uint64_t>(count, file_chunk_.size()),
                                static_cast<off_t>(offset));
    if (got <= 0)
        return {io_attempt::result::closed, 0, {}};
    // What the socket does not take now is read again on the next call.
    const auto sent = write_now({file_chunk_.data(), static_cast<std::size_t>(got)});
    if (sent.state == io_attempt::result::done)
        offset += sent.bytes;
    return sent;
}

asio::awaitable<boost::system::error_code> plain_stream::wait_readable()
{
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, use_tuple);
    co_return ec;
}

asio::awaitable<boost::system::error_code> plain_stream::wait_writable()
{
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_write, use_tuple);
    co_return ec;
}

bool plain_stream::shutdown_send() noexcept
{
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    return !ec;
}

void plain_stream::cancel() noexcept
{
    boost::system::error_code ignored;
    socket_.cancel(ignored);
}

void plain_stream::close() noexcept
{
    boost::system::error_code ignored;
    socket_.close(ignored);
}

} // namespace fxd::daemon
