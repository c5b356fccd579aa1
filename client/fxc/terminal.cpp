// Terminal helpers: secrets read without echo, and whether stderr is a terminal.

#include "fxc.hpp"

#include <fxd/util/unique_fd.hpp>

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

namespace fxc {

namespace {

// The terminal state to put back if a signal arrives while echo is off.
int saved_fd = -1;
termios saved_state{};

extern "C" void restore_and_reraise(int signo)
{
    if (saved_fd >= 0)
        ::tcsetattr(saved_fd, TCSANOW, &saved_state);
    std::signal(signo, SIG_DFL);
    ::raise(signo);
}

/// Turns echo off on fd for its lifetime (when fd is a terminal).
class echo_off {
public:
    explicit echo_off(int fd)
    {
        if (::tcgetattr(fd, &saved_state) != 0)
            return;
        termios quiet = saved_state;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        quiet.c_lflag |= ECHONL;
        saved_fd = fd;
        old_int_ = std::signal(SIGINT, restore_and_reraise);
        old_term_ = std::signal(SIGTERM, restore_and_reraise);
        // TCSANOW, not TCSAFLUSH: keep what was typed ahead.
        active_ = ::tcsetattr(fd, TCSANOW, &quiet) == 0;
    }
    ~echo_off()
    {
        if (saved_fd >= 0) {
            if (active_)
                ::tcsetattr(saved_fd, TCSANOW, &saved_state);
            std::signal(SIGINT, old_int_);
            std::signal(SIGTERM, old_term_);
            saved_fd = -1;
        }
    }
    echo_off(const echo_off&) = delete;
    echo_off& operator=(const echo_off&) = delete;

private:
    bool active_ = false;
    void (*old_int_)(int) = SIG_DFL;
    void (*old_term_)(int) = SIG_DFL;
};

} // namespace

bool stderr_is_terminal()
{
    return ::isatty(STDERR_FILENO) == 1;
}

std::optional<std::string> read_secret_from_tty(const std::string& prompt)
{
    const fxd::util::unique_fd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (!tty)
        return std::nullopt;
    const int fd = tty.get();
    std::string line;
    {
        // Echo goes off before the prompt shows, so nothing typed after it is echoed.
        echo_off quiet(fd);
        if (::write(fd, prompt.data(), prompt.size()) < 0)
            return std::nullopt;
        char c = 0;
        for (;;) {
            const ssize_t n = ::read(fd, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (line.empty())
                    return std::nullopt;
                break;
            }
            if (c == '\n')
                break;
            if (c != '\r')
                line += c;
        }
    }
    return line;
}

std::optional<std::string> read_secret_from_stdin(const std::string& prompt)
{
    std::string line;
    bool got = false;
    if (::isatty(STDIN_FILENO) == 1) {
        echo_off quiet(STDIN_FILENO);
        std::cout << prompt << std::flush;
        got = static_cast<bool>(std::getline(std::cin, line));
    } else {
        std::cout << prompt << std::flush;
        got = static_cast<bool>(std::getline(std::cin, line));
        std::cout << "\n";
    }
    if (!got)
        return std::nullopt;
    if (!line.empty() && line.back() == '\r')
        line.pop_back();
    return line;
}

std::string password_for(const std::string& user, bool confirm)
{
    if (const char* env = std::getenv("FXC_PASSWORD"))
        return env;
    auto first = read_secret_from_tty("Password for " + user + ": ");
    if (!first)
        throw usage_error("no password: set FXC_PASSWORD, or run fxc on a terminal to be asked");
    if (confirm) {
        const auto again = read_secret_from_tty("Repeat the password: ");
        if (!again || *again != *first)
            throw usage_error("the two passwords differ");
    }
    return *first;
}

} // namespace fxc
