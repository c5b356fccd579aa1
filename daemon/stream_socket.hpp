#pragma once
/// The TCP socket under a session's stream (plain or TLS): readiness waits,
/// the half-close, cancel and close, and the buffer a download is read into
/// where sendfile(2) cannot be used.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <span>
#include <tuple>
#include <vector>

namespace fxd::daemon {

/// What a wait for readiness ends with: empty, or why it failed (cancelled by the reaper or the drain).
using wait_result = std::tuple<boost::system::error_code>;

class stream_socket {
public:
    /// Puts the socket in non-blocking mode: every attempt on it returns at once.
    explicit stream_socket(boost::asio::ip::tcp::socket socket);

    int native_handle() noexcept { return socket_.native_handle(); }

    /// Readiness, as Asio's own operation (not a coroutine of ours: an idle
    /// connection's wait costs no frame beyond the session's).
    boost::asio::awaitable<wait_result> wait(bool readable);
    /// Ends our sending side; false when the socket is already gone.
    bool shutdown_send() noexcept;
    void cancel() noexcept;
    void close() noexcept;

    /// Reads up to count bytes of fd at offset into a buffer kept for the
    /// next call; empty at the end of the file or on an error.
    std::span<const char> read_file(int fd, std::uint64_t offset, std::uint64_t count);

private:
    boost::asio::ip::tcp::socket socket_;
    std::vector<char> file_chunk_; ///< made on first use: most connections never download
};

} // namespace fxd::daemon
