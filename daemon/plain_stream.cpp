#include "plain_stream.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace fxd::daemon {

namespace {

/// Most bytes one sendfile(2) call is asked for: big, so a fast client costs few calls.
constexpr std::uint64_t max_sendfile_bytes = 4 << 20;

/// A failed call as an attempt: a full or empty socket would block; the rest closes.
io_attempt failed_with(int error)
{
    if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR)
        return {io_attempt::result::would_block, 0, {}};
    return {io_attempt::result::closed, 0, {error, boost::system::system_category()}};
}

} // namespace

io_attempt plain_stream::read_now(std::span<char> into)
{
    const ssize_t n = ::recv(socket_.native_handle(), into.data(), into.size(), 0);
    if (n > 0)
        return {io_attempt::result::done, static_cast<std::size_t>(n), {}};
    if (n == 0)
        return {io_attempt::result::closed, 0, {}}; // the client's end of stream
    return failed_with(errno);
}

io_attempt plain_stream::write_now(std::span<const char> from)
{
    const ssize_t n = ::send(socket_.native_handle(), from.data(), from.size(), MSG_NOSIGNAL);
    if (n >= 0)
        return {io_attempt::result::done, static_cast<std::size_t>(n), {}};
    return failed_with(errno);
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
            return failed_with(errno);
        use_sendfile_ = false; // this file or socket cannot: read and write from now on
    }
    return write_file_piece(*this, socket_, fd, offset, count);
}

} // namespace fxd::daemon
