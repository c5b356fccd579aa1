#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace fxd::test {

namespace {

using namespace std::chrono_literals;

/// Both ends of a pipe, closed on destruction unless released.
struct pipe_pair {
    int read = -1;
    int write = -1;
    pipe_pair()
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
        read = fds[0];
        write = fds[1];
    }
    ~pipe_pair()
    {
        close_read();
        close_write();
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    void close_read()
    {
        if (read >= 0)
            ::close(std::exchange(read, -1));
    }
    void close_write()
    {
        if (write >= 0)
            ::close(std::exchange(write, -1));
    }
};

/// argv or envp for exec: pointers into strings that outlive the call.
std::vector<char*> c_strings(const std::vector<std::string>& v)
{
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (const auto& s : v)
        out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

/// In the child after fork: exec or report and exit 127.
[[noreturn]] void exec_child(const std::vector<char*>& argv, const std::vector<char*>* envp)
{
    if (envp)
        ::execve(argv[0], argv.data(), envp->data());
    else
        ::execv(argv[0], argv.data());
    std::perror("exec");
    ::_exit(127);
}

void write_all(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // the child stopped reading; what it did with the rest shows in its output
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

} // namespace

int decode_status(int wait_status)
{
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status))
        return 128 + WTERMSIG(wait_status);
    return -1;
}

std::ostream& operator<<(std::ostream& os, const run_result& r)
{
    return os << "exit " << r.status << "\n--- stdout ---\n" << r.out << "\n--- stderr ---\n" << r.err;
}

std::vector<std::string> environment_with(const env_changes& changes, const std::vector<std::string>& drop_prefixes)
{
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const auto key = entry.substr(0, entry.find('='));
        bool drop = changes.contains(key);
        for (const auto& prefix : drop_prefixes)
            drop = drop || key.starts_with(prefix);
        if (!drop)
            env.push_back(entry);
    }
    for (const auto& [key, value] : changes) {
        if (value)
            env.push_back(key + "=" + *value);
    }
    return env;
}

run_result run_program(const std::vector<std::string>& args, const run_options& options)
{
    ::signal(SIGPIPE, SIG_IGN); // the child may exit before reading its input
    const auto argv = c_strings(args);
    std::optional<std::vector<char*>> envp;
    if (options.environment)
        envp = c_strings(*options.environment);
    pipe_pair in, out, err;
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        if (options.new_session)
            ::setsid();
        if (!options.working_dir.empty() && ::chdir(options.working_dir.c_str()) != 0)
            ::_exit(127);
        ::dup2(in.read, STDIN_FILENO);
        ::dup2(out.write, STDOUT_FILENO);
        ::dup2(err.write, STDERR_FILENO);
        exec_child(argv, envp ? &*envp : nullptr);
    }
    in.close_read();
    out.close_write();
    err.close_write();
    write_all(in.write, options.input);
    in.close_write();

    run_result result;
    const auto deadline = std::chrono::steady_clock::now() + options.deadline;
    std::array<pollfd, 2> fds{{{out.read, POLLIN, 0}, {err.read, POLLIN, 0}}};
    std::array<std::string*, 2> sinks{&result.out, &result.err};
    int open = 2;
    while (open > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                fds[i].fd = -1; // closed with its pipe_pair
                --open;
            }
        }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (const auto status = wait_pid(pid, std::max(left, 0ms))) {
        result.status = *status;
    } else {
        ::kill(pid, SIGKILL);
        int reaped = 0;
        ::waitpid(pid, &reaped, 0);
        result.status = -1;
    }
    return result;
}

spawned_child spawn_reading_first_line(const std::vector<std::string>& args)
{
    const auto argv = c_strings(args);
    pipe_pair out;
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::dup2(out.write, STDOUT_FILENO);
        const int devnull = ::open("/dev/null", O_RDWR);
        ::dup2(devnull, STDERR_FILENO);
        ::dup2(devnull, STDIN_FILENO);
        exec_child(argv, nullptr);
    }
    out.close_write();
    spawned_child s{pid, {}};
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    char c = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{out.read, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        if (::read(out.read, &c, 1) != 1)
            break;
        s.first_line += c;
        if (c == '\n')
            break;
    }
    return s;
}

std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid)
            return decode_status(status);
        if (std::chrono::steady_clock::now() >= deadline)
            return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
}

pty_process::pty_process(const std::vector<std::string>& args, const std::vector<std::string>& environment)
{
    const auto argv = c_strings(args);
    const auto envp = c_strings(environment);
    winsize ws{};
    ws.ws_row = 40;
    ws.ws_col = 120;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ < 0)
        throw std::runtime_error(std::string("forkpty: ") + std::strerror(errno));
    if (pid_ == 0)
        exec_child(argv, &envp);
}

pty_process::~pty_process()
{
    if (pid_ > 0 && !status_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (master_ >= 0)
        ::close(master_);
}

bool pty_process::expect(const std::string& needle, std::chrono::seconds deadline)
{
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        if (const auto at = output_.find(needle, mark_); at != std::string::npos) {
            mark_ = at + needle.size();
            return true;
        }
        if (eof_ || std::chrono::steady_clock::now() >= end)
            return false;
        read_some(200ms);
    }
}

void pty_process::send_line(const std::string& line)
{
    write_all(master_, line + "\r");
}

int pty_process::wait(std::chrono::seconds deadline)
{
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!eof_ && std::chrono::steady_clock::now() < end)
        read_some(200ms);
    if (!status_) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        status_ = wait_pid(pid_, std::max(left, 0ms));
    }
    return status_.value_or(-1);
}

void pty_process::read_some(std::chrono::milliseconds wait_for)
{
    pollfd p{master_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait_for.count())) <= 0)
        return;
    char buf[65536];
    const ssize_t n = ::read(master_, buf, sizeof buf);
    if (n > 0)
        output_.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
        eof_ = true; // EIO once the child is gone
}

} // namespace fxd::test
