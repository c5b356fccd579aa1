#include "stream_socket.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <algorithm>

namespace fxd::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
/// A download read from its file in pieces this large (several TLS records).
constexpr std::size_t file_chunk_bytes = 256 * 1024;
} // namespace

stream_socket::stream_socket(tcp::socket socket) : socket_(std::move(socket))
{
    socket_.non_blocking(true);
}

asio::awaitable<wait_result> stream_socket::wait(bool readable)
{
    return socket_.async_wait(readable ? tcp::socket::wait_read : tcp::socket::wait_write,
                              asio::as_tuple(asio::use_awaitable));
}

bool stream_socket::shutdown_send() noexcept
{
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    return !ec;
}

void stream_socket::cancel() noexcept
{
    boost::system::error_code ignored;
    socket_.cancel(ignored);
}

void stream_socket::close() noexcept
{
    boost::system::error_code ignored;
    socket_.close(ignored);
}

std::span<const char> stream_socket::read_file(int fd, std::uint64_t offset, std::uint64_t count)
{
    file_chunk_.resize(file_chunk_bytes);
    const ssize_t got = ::pread(fd, file_chunk_.data(), std::min<std::uint64_t>(count, file_chunk_.size()),
                                static_cast<off_t>(offset));
    if (got <= 0)
        return {};
    return {file_chunk_.data(), static_cast<std::size_t>(got)};
}

} // namespace fxd::daemon
