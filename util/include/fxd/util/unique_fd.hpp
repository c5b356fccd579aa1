#pragma once
/// File descriptors: the one owner type, and the process's limit on how many may be open.

#include <unistd.h>

#include <cstdint>
#include <utility>

namespace fxd::util {

/// Owns one file descriptor and closes it when destroyed; -1 owns nothing.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept
    {
        reset(other.release());
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Gives the descriptor up without closing it.
    int release() noexcept { return std::exchange(fd_, -1); }
    /// Closes the descriptor held, if any, and takes fd.
    void reset(int fd = -1) noexcept
    {
        if (fd_ >= 0 && fd_ != fd)
            ::close(fd_);
        fd_ = fd;
    }
    /// Closes now and reports close()'s result (0, or -1 with errno), for
    /// callers that must know a write reached the file; owns nothing after.
    int close() noexcept { return fd_ >= 0 ? ::close(release()) : 0; }

private:
    int fd_ = -1;
};

/// Raises the soft RLIMIT_NOFILE to the hard limit (each connection is a
/// descriptor, and the usual soft limit of 1024 is far too low for a server or
/// a load generator). Returns the soft limit now in force, UINT64_MAX for
/// unlimited, 0 when it cannot be read.
std::uint64_t raise_nofile_limit() noexcept;

} // namespace fxd::util
