#include "daemon_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fxd::test {

namespace fs = std::filesystem;

namespace {

/// Reads from fd until the deadline; stops at a newline when one_line is set.
std::string read_until(int fd, std::chrono::steady_clock::time_point deadline, bool one_line)
{
    std::string text;
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            break;
        const ssize_t n = ::read(fd, buf, one_line ? 1 : sizeof buf);
        if (n <= 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (one_line && text.back() == '\n')
            break;
    }
    return text;
}

pid_t spawn(const std::vector<std::string>& args, int out_fd, int err_fd)
{
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        ::dup2(out_fd, STDOUT_FILENO);
        ::dup2(err_fd, STDERR_FILENO);
        const int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            ::dup2(devnull, STDIN_FILENO);
        ::execv(argv[0], argv.data());
        std::perror("execv");
        ::_exit(127);
    }
    return pid;
}

} // namespace

std::vector<std::string> fast(std::vector<std::string> more)
{
    std::vector<std::string> args{"--set", "auth.hash_memory_bytes=65536", "--set", "auth.hash_passes=1"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

std::string fxd_binary()
{
    if (const char* env = std::getenv("FXD_BINARY"))
        return env;
    return FXD_BINARY_PATH;
}

daemon_process::daemon_process(std::vector<std::string> extra, std::optional<fs::path> storage)
{
    if (storage) {
        storage_ = *storage;
    } else {
        own_storage_ = std::make_unique<temp_dir>();
        storage_ = own_storage_->path() / "storage";
    }
    log_file_ = storage_.parent_path() / ("fxd-" + std::to_string(::getpid()) + "-" +
                                          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".log");

    std::vector<std::string> args{fxd_binary(), "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0",
                                  "--set", "storage.dir=" + storage_.string(), "--set", "log.level=debug", "--print-ports"};
    args.insert(args.end(), extra.begin(), extra.end());

    int out_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    fs::create_directories(log_file_.parent_path());
    const int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_ = spawn(args, out_pipe[1], log_fd);
    ::close(out_pipe[1]);
    ::close(log_fd);

    const std::string line = read_until(out_pipe[0], std::chrono::steady_clock::now() + std::chrono::seconds(20), true);
    ::close(out_pipe[0]);
    unsigned tcp = 0;
    unsigned udp = 0;
    if (std::sscanf(line.c_str(), "tcp=%u udp=%u", &tcp, &udp) != 2) {
        signal(SIGKILL);
        wait_exit(std::chrono::seconds(5));
        throw std::runtime_error("fxd did not report its ports; it said: " + line + "\n" + log());
    }
    tcp_port_ = static_cast<std::uint16_t>(tcp);
    udp_port_ = static_cast<std::uint16_t>(udp);
}

daemon_process::~daemon_process()
{
    if (!status_ && pid_ > 0) {
        signal(SIGTERM);
        if (!wait_exit(std::chrono::seconds(10))) {
            signal(SIGKILL);
            wait_exit(std::chrono::seconds(5));
        }
    }
    std::error_code ec;
    fs::remove(log_file_, ec);
}

void daemon_process::signal(int signo) const
{
    if (pid_ > 0 && !status_)
        ::kill(pid_, signo);
}

std::optional<int> daemon_process::wait_exit(std::chrono::milliseconds timeout)
{
    if (status_)
        return status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            status_ = decode_status(status);
            return status_;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::string daemon_process::log() const
{
    std::ifstream in(log_file_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

run_result run_fxd(const std::vector<std::string>& args, std::chrono::milliseconds timeout, const std::string& input)
{
    std::vector<std::string> argv{fxd_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    run_options options;
    options.input = input;
    options.deadline = timeout;
    return run_program(argv, options);
}

run_result fxd_user(const fs::path& storage, const std::vector<std::string>& command, const std::string& input)
{
    auto args = fast({"--set", "storage.dir=" + storage.string(), "user"});
    args.insert(args.end(), command.begin(), command.end());
    return run_fxd(args, std::chrono::seconds(60), input);
}

} // namespace fxd::test
