// fxc, the command-line client, run as a program against the real daemon:
// every command's success and error exits, --json output, resumed uploads
// and downloads, a corrupted .part, the progress bar on a terminal and not
// elsewhere, and the interactive shell driven through a pseudo-terminal.
//
// File-op tests check hello's "ops" first: while the daemon does not offer
// "upload" they print a message and return without asserting.

#include "daemon_process.hpp"

#include <fxd/client/client.hpp>
#include <fxd/client/session.hpp>
#include <fxd/client/sha256.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using fxd::test::daemon_process;
using fxd::test::temp_dir;

const std::string password = "correct-horse-1";

std::string fxc_binary()
{
    if (const char* env = std::getenv("FXC_BINARY"))
        return env;
    return FXC_BINARY_PATH;
}

struct run_result {
    int status = -1;
    std::string out;
    std::string err;
};

std::ostream& operator<<(std::ostream& os, const run_result& r)
{
    return os << "exit " << r.status << "\n--- stdout ---\n" << r.out << "\n--- stderr ---\n" << r.err;
}

using env_map = std::map<std::string, std::optional<std::string>>;

/// The environment for a child: ours, without FXC_* unless given, plus `changes`
/// (a nullopt value removes the variable).
std::vector<std::string> child_environment(const env_map& changes)
{
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const auto key = entry.substr(0, entry.find('='));
        if (key.starts_with("FXC_") || changes.contains(key))
            continue;
        env.push_back(entry);
    }
    for (const auto& [key, value] : changes) {
        if (value)
            env.push_back(key + "=" + *value);
    }
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v)
{
    std::vector<char*> out;
    for (auto& s : v)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/// Runs fxc with pipes for stdin, stdout and stderr and no controlling
/// terminal (so it can never prompt); kills it after the safety deadline.
run_result run_fxc(std::vector<std::string> args, const env_map& env = {}, const std::string& input = {},
                   std::chrono::seconds deadline = 120s)
{
    args.insert(args.begin(), fxc_binary());
    auto envs = child_environment(env);
    auto argv = c_strings(args);
    auto envp = c_strings(envs);
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::setsid();
        ::dup2(in_pipe[0], STDIN_FILENO);
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
        ::execve(argv[0], argv.data(), envp.data());
        std::perror("execve");
        ::_exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (!input.empty()) {
        ::signal(SIGPIPE, SIG_IGN);
        [[maybe_unused]] const auto n = ::write(in_pipe[1], input.data(), input.size());
    }
    ::close(in_pipe[1]);

    run_result r;
    const auto end = std::chrono::steady_clock::now() + deadline;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    while (open_fds > 0 && std::chrono::steady_clock::now() < end) {
        if (::poll(fds, 2, 200) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& p : fds) {
        if (p.fd >= 0) {
            ::kill(pid, SIGKILL);
            ::close(p.fd);
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.status = decode_status(status);
    return r;
}

/// fxc on a pseudo-terminal: its stdin, stdout and stderr are the terminal.
class pty_process {
public:
    pty_process(std::vector<std::string> args, const env_map& env = {})
    {
        args.insert(args.begin(), fxc_binary());
        auto envs = child_environment(env);
        auto argv = c_strings(args);
        auto envp = c_strings(envs);
        winsize ws{};
        ws.ws_row = 40;
        ws.ws_col = 120;
        pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
        if (pid_ < 0)
            throw std::runtime_error(std::string("forkpty: ") + std::strerror(errno));
        if (pid_ == 0) {
            ::execve(argv[0], argv.data(), envp.data());
            std::perror("execve");
            ::_exit(127);
        }
    }
    ~pty_process()
    {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
        if (master_ >= 0)
            ::close(master_);
    }
    pty_process(const pty_process&) = delete;
    pty_process& operator=(const pty_process&) = delete;

    /// Reads until the output after the last expect() contains needle; false at the deadline or at the end.
    bool expect(const std::string& needle, std::chrono::seconds deadline = 60s)
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
    void send_line(const std::string& line)
    {
        const std::string bytes = line + "\r";
        [[maybe_unused]] const auto n = ::write(master_, bytes.data(), bytes.size());
    }
    /// Reads to the end and returns the exit status (-1 at the deadline).
    int wait(std::chrono::seconds deadline = 60s)
    {
        const auto end = std::chrono::steady_clock::now() + deadline;
        while (!eof_ && std::chrono::steady_clock::now() < end)
            read_some(200ms);
        while (!status_ && std::chrono::steady_clock::now() < end) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_)
                status_ = decode_status(status);
            else
                std::this_thread::sleep_for(10ms);
        }
        return status_.value_or(-1);
    }
    const std::string& output() const noexcept { return output_; }

private:
    void read_some(std::chrono::milliseconds wait_for)
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

    pid_t pid_ = -1;
    int master_ = -1;
    std::string output_;
    std::size_t mark_ = 0;
    bool eof_ = false;
    std::optional<int> status_;
};

std::string random_bytes(std::size_t n, unsigned seed)
{
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(gen() & 0xFF);
    return s;
}

void write_file(const fs::path& p, const std::string& bytes)
{
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f)
        throw std::runtime_error("cannot write " + p.string());
}

std::string read_file(const fs::path& p)
{
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

/// The single JSON object fxc --json printed (empty, after a failed check, when it is not one).
json::object json_out(const run_result& r)
{
    BOOST_TEST_INFO(r);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    BOOST_TEST_INFO(r);
    BOOST_TEST((!ec && v.is_object()), "stdout is one JSON object");
    return !ec && v.is_object() ? std::move(v.get_object()) : json::object{};
}

bool jbool(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_bool() && v->get_bool();
}

std::string jstr(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::uint64_t jnum(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_number() ? v->to_number<std::uint64_t>() : ~std::uint64_t{0};
}

/// A port nothing listens on (bound once, then released).
std::uint16_t closed_port()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// A daemon, a scratch folder, and fxc pointed at them.
struct fxc_env {
    daemon_process daemon;
    temp_dir work;

    std::vector<std::string> with_ports(std::vector<std::string> args) const
    {
        std::vector<std::string> full{"--port", std::to_string(daemon.tcp_port()), "--udp-port",
                                      std::to_string(daemon.udp_port())};
        full.insert(full.end(), args.begin(), args.end());
        return full;
    }
    run_result fxc(std::vector<std::string> args, const env_map& env = {}, const std::string& input = {}) const
    {
        return run_fxc(with_ports(std::move(args)), env, input);
    }
    /// fxc as `user` with the password in FXC_PASSWORD.
    run_result as(const std::string& user, std::vector<std::string> args) const
    {
        args.insert(args.begin(), {"--user", user});
        return fxc(std::move(args), {{"FXC_PASSWORD", password}});
    }
    fs::path path(const std::string& name) const { return work.path() / name; }

    void register_user(const std::string& user) const
    {
        const auto r = as(user, {"register"});
        BOOST_TEST_INFO(r);
        BOOST_REQUIRE(r.status == 0);
    }
    /// True when the daemon offers the file ops; otherwise says why the caller skips.
    bool offers_files(const std::string& test) const
    {
        fxd::client::session s("127.0.0.1", daemon.tcp_port());
        if (s.offers("upload"))
            return true;
        const std::string note = test + ": skipped, the daemon does not offer upload yet (hello's ops)";
        BOOST_TEST_MESSAGE(note);
        std::cout << note << std::endl;
        return false;
    }
};

#define FXC_REQUIRE_FILE_OPS(env)                                                                                    \
    if (!(env).offers_files(boost::unit_test::framework::current_test_case().p_name))                              \
    return

} // namespace

BOOST_AUTO_TEST_SUITE(fxc_basics)

BOOST_AUTO_TEST_CASE(ping_answers_and_exits_0, *utf::timeout(60))
{
    fxc_env env;
    const auto r = env.fxc({"ping"});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.find("pong") != std::string::npos);

    const auto j = env.fxc({"--json", "ping"});
    const auto o = json_out(j);
    BOOST_TEST(j.status == 0);
    BOOST_TEST(jstr(o, "command") == "ping");
    BOOST_TEST(jbool(o, "ok"));
    BOOST_TEST(jnum(o, "port") == env.daemon.tcp_port());

    // Options may also follow the command (the Dockerfile's health check style).
    const auto after = run_fxc({"ping", "--port", std::to_string(env.daemon.tcp_port())});
    BOOST_TEST_INFO(after);
    BOOST_TEST(after.status == 0);
}

BOOST_AUTO_TEST_CASE(nothing_listening_exits_3_with_a_hint, *utf::timeout(60))
{
    const auto port = std::to_string(closed_port());
    const auto r = run_fxc({"--port", port, "ping"});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 3);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(r.err.find("is fxd running on 127.0.0.1:" + port + "?") != std::string::npos);

    const auto j = run_fxc({"--port", port, "--json", "ping"});
    const auto o = json_out(j);
    BOOST_TEST(j.status == 3);
    BOOST_TEST(!jbool(o, "ok"));
    BOOST_TEST(jnum(o, "exit") == 3u);
    BOOST_TEST(jstr(o, "code") == "connect_failed");

    const auto files = run_fxc({"--port", port, "--user", "nobody", "ls"}, {{"FXC_PASSWORD", password}});
    BOOST_TEST_INFO(files);
    BOOST_TEST(files.status == 3);
}

BOOST_AUTO_TEST_CASE(bad_usage_exits_2_before_connecting, *utf::timeout(60))
{
    // No daemon at all: usage errors must not depend on one.
    const auto port = std::to_string(closed_port());
    const std::vector<std::vector<std::string>> lines{
        {},
        {"frobnicate"},
        {"--bogus", "ping"},
        {"--port", "seventy", "ping"},
        {"--port", "70000", "ping"},
        {"--timeout", "0", "ping"},
        {"--port", port, "echo"},
        {"--port", port, "ping", "extra"},
        {"--port", port, "upload"},
        {"--port", port, "download"},
        {"--port", port, "stat", "a", "b"},
        {"--port", port, "ls", "-o", "x"},
        {"--port", port, "stats", "--udp"},
        {"--port", port, "--user", "alice", "stat", ".hidden"},
        {"--port", port, "--user", "alice", "rm", "a/b"},
        {"--port", port, "--user", "Not A User", "ls"},
        {"--port", port, "ls"},       // no user
        {"--port", port, "register"}, // no user
        {"--port", port, "upload", "file"},
    };
    for (const auto& args : lines) {
        const auto r = run_fxc(args);
        BOOST_TEST_INFO("fxc " << boost::json::serialize(json::value_from(args)) << ": " << r);
        BOOST_TEST(r.status == 2);
        BOOST_TEST(r.out.empty());
        BOOST_TEST(!r.err.empty());
    }
}

BOOST_AUTO_TEST_CASE(usage_errors_name_the_option_or_argument_at_fault, *utf::timeout(60))
{
    const auto port = std::to_string(closed_port());
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"--bogus", "ping"}, "--bogus"},
        {{"--port", "seventy", "ping"}, "--port"},
        {{"ping", "--udp-port", "0", "--udp"}, "--udp-port"},
        {{"--timeout", "-1", "ping"}, "--timeout"},
        {{"--port", port, "ping", "--user"}, "--user"}, // a value is missing
        {{"--quiet=loud", "ping"}, "quiet"},            // a switch takes no value
        {{"--port", port, "frobnicate"}, "frobnicate"},
        {{"--port", port, "stats", "--udp"}, "--udp"},
        {{"--port", port, "ls", "-o", "x"}, "-o"},
    };
    for (const auto& [args, named] : cases) {
        const auto r = run_fxc(args);
        BOOST_TEST_INFO("fxc " << boost::json::serialize(json::value_from(args)) << ": " << r);
        BOOST_TEST(r.status == 2);
        BOOST_TEST(r.out.empty());
        BOOST_TEST(r.err.find(named) != std::string::npos, "stderr names " << named);
    }
}

BOOST_AUTO_TEST_CASE(an_empty_fxc_user_counts_as_unset_and_options_take_the_inline_form, *utf::timeout(60))
{
    const auto port = std::to_string(closed_port());
    const auto r = run_fxc({"--port=" + port, "ls"}, {{"FXC_USER", ""}});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("FXC_USER") != std::string::npos);

    // Given a user, the same line gets as far as connecting (and finds nothing there).
    const auto with_user = run_fxc({"--port=" + port, "--timeout=5", "ls"}, {{"FXC_USER", "alice"}, {"FXC_PASSWORD", password}});
    BOOST_TEST_INFO(with_user);
    BOOST_TEST(with_user.status == 3);

    const auto version = run_fxc({"-V"});
    BOOST_TEST(version.status == 0);
    BOOST_TEST(version.out.starts_with("fxc "));
}

BOOST_AUTO_TEST_CASE(help_documents_every_command_and_exit_status, *utf::timeout(30))
{
    const auto r = run_fxc({"--help"});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 0);
    for (const char* word : {"ping", "hello", "echo", "stats", "register", "whoami", "upload", "download", "ls",
                             "stat", "rm", "shell", "--host", "--port", "--udp-port", "--timeout", "--user",
                             "--quiet", "--json", "FXC_USER", "FXC_PASSWORD", "Exit status"})
        BOOST_TEST(r.out.find(word) != std::string::npos, word);
}

BOOST_AUTO_TEST_CASE(hello_shows_server_protocol_and_ops, *utf::timeout(60))
{
    fxc_env env;
    const auto r = env.fxc({"hello"});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.find("fxd") != std::string::npos);
    BOOST_TEST(r.out.find("ping") != std::string::npos);

    const auto j = env.fxc({"--json", "hello"});
    const auto o = json_out(j);
    BOOST_TEST(j.status == 0);
    BOOST_TEST(jnum(o, "protocol") == 1u);
    const auto& ops = o.at("ops").as_array();
    BOOST_TEST((std::find(ops.begin(), ops.end(), json::value("echo")) != ops.end()));
    BOOST_TEST(o.at("limits").as_object().contains("max_echo_bytes"));
}

BOOST_AUTO_TEST_CASE(echo_over_tcp_and_udp_uppercases, *utf::timeout(60))
{
    fxc_env env;
    const auto tcp = env.fxc({"echo", "hello", "World", "1-2"});
    BOOST_TEST_INFO(tcp);
    BOOST_TEST(tcp.status == 0);
    BOOST_TEST(tcp.out == "HELLO WORLD 1-2\n");

    const auto udp = env.fxc({"echo", "--udp", "over", "udp"});
    BOOST_TEST_INFO(udp);
    BOOST_TEST(udp.status == 0);
    BOOST_TEST(udp.out == "OVER UDP\n");

    const auto j = env.fxc({"--json", "--udp", "echo", "--", "-dash"});
    const auto o = json_out(j);
    BOOST_TEST(j.status == 0);
    BOOST_TEST(jstr(o, "text") == "-DASH");
    BOOST_TEST(jstr(o, "transport") == "udp");

    const auto ping = env.fxc({"ping", "--udp"});
    BOOST_TEST_INFO(ping);
    BOOST_TEST(ping.status == 0);

    // Nothing on the UDP port: no reply within the timeout is exit 3.
    const auto silent = run_fxc({"--udp-port", std::to_string(closed_port()), "--timeout", "1", "--udp", "echo", "x"});
    BOOST_TEST_INFO(silent);
    BOOST_TEST(silent.status == 3);
}

BOOST_AUTO_TEST_CASE(stats_prints_the_counters, *utf::timeout(60))
{
    fxc_env env;
    const auto text = env.fxc({"stats"});
    BOOST_TEST_INFO(text);
    BOOST_TEST(text.status == 0);
    BOOST_TEST(json::parse(text.out).is_object());

    const auto j = env.fxc({"--json", "stats"});
    const auto o = json_out(j);
    BOOST_TEST(j.status == 0);
    BOOST_TEST(o.at("stats").as_object().contains("requests"));
}

BOOST_AUTO_TEST_CASE(register_and_whoami_success_and_error_exits, *utf::timeout(120))
{
    fxc_env env;
    const auto reg = env.as("alice", {"register"});
    BOOST_TEST_INFO(reg);
    BOOST_TEST(reg.status == 0);
    BOOST_TEST(reg.out.find("alice") != std::string::npos);

    const auto again = env.as("alice", {"--json", "register"});
    const auto o = json_out(again);
    BOOST_TEST(again.status == 1);
    BOOST_TEST(jstr(o, "code") == "user_exists");
    BOOST_TEST(!jstr(o, "message").empty());
    BOOST_TEST(again.err.find("user_exists") != std::string::npos);

    // FXC_USER stands in for --user.
    const auto who = env.fxc({"whoami"}, {{"FXC_USER", "alice"}, {"FXC_PASSWORD", password}});
    BOOST_TEST_INFO(who);
    BOOST_TEST(who.status == 0);
    BOOST_TEST(who.out == "alice\n");

    const auto wrong = env.fxc({"--user", "alice", "--json", "whoami"}, {{"FXC_PASSWORD", "not-the-password"}});
    BOOST_TEST(wrong.status == 1);
    BOOST_TEST(jstr(json_out(wrong), "code") == "bad_credentials");

    const auto nobody = env.fxc({"--json", "whoami"});
    const auto n = json_out(nobody);
    BOOST_TEST(nobody.status == 0);
    BOOST_TEST(n.at("user").is_null());

    const auto short_password = env.fxc({"--user", "bob", "register"}, {{"FXC_PASSWORD", "short"}});
    BOOST_TEST_INFO(short_password);
    BOOST_TEST(short_password.status == 1);
    BOOST_TEST(short_password.err.find("bad_request") != std::string::npos);

    // No FXC_PASSWORD and no terminal to ask on.
    const auto no_password = env.fxc({"--user", "bob", "register"});
    BOOST_TEST_INFO(no_password);
    BOOST_TEST(no_password.status == 2);
    BOOST_TEST(no_password.err.find("FXC_PASSWORD") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(register_asks_for_the_password_on_a_terminal_without_echo, *utf::timeout(120))
{
    fxc_env env;
    pty_process p(env.with_ports({"--user", "dora", "register"}));
    BOOST_REQUIRE(p.expect("Password for dora: "));
    p.send_line("typed-secret-1");
    BOOST_REQUIRE(p.expect("Repeat the password: "));
    p.send_line("typed-secret-1");
    BOOST_TEST(p.expect("registered dora"));
    BOOST_TEST(p.wait() == 0);
    BOOST_TEST(p.output().find("typed-secret-1") == std::string::npos, "the password was echoed");

    const auto who = env.fxc({"--user", "dora", "whoami"}, {{"FXC_PASSWORD", "typed-secret-1"}});
    BOOST_TEST_INFO(who);
    BOOST_TEST(who.status == 0);
}

BOOST_AUTO_TEST_CASE(a_daemon_that_went_away_exits_3, *utf::timeout(120))
{
    fxc_env env;
    env.register_user("erin");
    env.daemon.signal(SIGTERM);
    BOOST_REQUIRE(env.daemon.wait_exit(30s).has_value());
    const auto r = env.as("erin", {"whoami"});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 3);
    BOOST_TEST(r.err.find("is fxd running") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_connection_closed_before_the_reply_exits_3, *utf::timeout(60))
{
    // A server that accepts, reads the request and hangs up without answering.
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    std::thread rude([listener] {
        const int c = ::accept(listener, nullptr, nullptr);
        if (c >= 0) {
            char buf[256];
            [[maybe_unused]] const auto n = ::recv(c, buf, sizeof buf, 0);
            ::close(c);
        }
    });
    const auto r = run_fxc({"--port", std::to_string(ntohs(a.sin_port)), "--json", "ping"});
    rude.join();
    ::close(listener);
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 3);
    BOOST_TEST(jstr(json_out(r), "code") == "connection_broken");
    BOOST_TEST(r.err.find("broke") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fxc_files)

BOOST_AUTO_TEST_CASE(upload_stat_ls_download_rm_round_trip, *utf::timeout(300))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    const auto content = random_bytes(3 * 1024 * 1024 + 17, 1);
    const auto sha = fxd::client::sha256_hex(content);
    write_file(env.path("data.bin"), content);

    const auto up = env.as("alice", {"--json", "upload", env.path("data.bin").string()});
    const auto u = json_out(up);
    BOOST_TEST(up.status == 0);
    BOOST_TEST(jstr(u, "name") == "data.bin");
    BOOST_TEST(jnum(u, "size") == content.size());
    BOOST_TEST(jstr(u, "sha256") == sha);
    BOOST_TEST(jnum(u, "resumed_from") == 0u);

    const auto renamed = env.as("alice", {"upload", env.path("data.bin").string(), "copy one.bin"});
    BOOST_TEST_INFO(renamed);
    BOOST_TEST(renamed.status == 0);
    BOOST_TEST(renamed.out.find("copy one.bin") != std::string::npos);

    const auto st = env.as("alice", {"--json", "stat", "data.bin"});
    const auto s = json_out(st);
    BOOST_TEST(st.status == 0);
    BOOST_TEST(jbool(s, "exists"));
    BOOST_TEST(jnum(s, "size") == content.size());
    BOOST_TEST(jstr(s, "sha256") == sha);
    BOOST_TEST(jnum(s, "partial") == 0u);
    const auto st_text = env.as("alice", {"stat", "data.bin"});
    BOOST_TEST_INFO(st_text);
    BOOST_TEST(st_text.out.find(sha) != std::string::npos);

    const auto ls = env.as("alice", {"--json", "ls"});
    const auto l = json_out(ls);
    BOOST_TEST(ls.status == 0);
    const auto& files = l.at("files").as_array();
    BOOST_REQUIRE(files.size() == 2u);
    BOOST_TEST(jstr(files[0].as_object(), "name") == "copy one.bin"); // sorted by name
    BOOST_TEST(jstr(files[1].as_object(), "name") == "data.bin");
    BOOST_TEST(jnum(files[1].as_object(), "size") == content.size());
    const auto ls_text = env.as("alice", {"ls"});
    BOOST_TEST_INFO(ls_text);
    BOOST_TEST(ls_text.out.find("data.bin") != std::string::npos);

    const auto down = env.as("alice", {"--json", "download", "data.bin", "-o", env.path("back.bin").string()});
    const auto d = json_out(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(jstr(d, "sha256") == sha);
    BOOST_TEST(read_file(env.path("back.bin")) == content);
    BOOST_TEST(!fs::exists(env.path("back.bin.part")));

    // Another user sees none of it.
    env.register_user("bob");
    const auto other = env.as("bob", {"--json", "ls"});
    BOOST_TEST(json_out(other).at("files").as_array().empty());
    BOOST_TEST(env.as("bob", {"download", "data.bin", "-o", env.path("stolen").string()}).status == 1);

    const auto missing = env.as("alice", {"--json", "download", "nope.bin", "-o", env.path("nope.bin").string()});
    BOOST_TEST(missing.status == 1);
    BOOST_TEST(jstr(json_out(missing), "code") == "not_found");
    BOOST_TEST(!fs::exists(env.path("nope.bin.part")));
    BOOST_TEST(!fs::exists(env.path("nope.bin")));

    const auto no_file = env.as("alice", {"upload", env.path("does-not-exist").string()});
    BOOST_TEST_INFO(no_file);
    BOOST_TEST(no_file.status == 2);

    const auto rm = env.as("alice", {"rm", "data.bin"});
    BOOST_TEST_INFO(rm);
    BOOST_TEST(rm.status == 0);
    const auto gone = env.as("alice", {"--json", "stat", "data.bin"});
    BOOST_TEST(gone.status == 1);
    BOOST_TEST(jstr(json_out(gone), "code") == "not_found");
    const auto rm_again = env.as("alice", {"rm", "data.bin"});
    BOOST_TEST_INFO(rm_again);
    BOOST_TEST(rm_again.status == 1);
    BOOST_TEST(rm_again.err.find("not_found") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_file_round_trip, *utf::timeout(120))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    write_file(env.path("empty"), "");
    const auto up = env.as("alice", {"upload", env.path("empty").string()});
    BOOST_TEST_INFO(up);
    BOOST_TEST(up.status == 0);
    const auto down = env.as("alice", {"download", "empty", "-o", env.path("empty.back").string()});
    BOOST_TEST_INFO(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(fs::exists(env.path("empty.back")));
    BOOST_TEST(fs::file_size(env.path("empty.back")) == 0u);
}

BOOST_AUTO_TEST_CASE(an_interrupted_upload_is_resumed_by_the_next_fxc_upload, *utf::timeout(300))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    const auto content = random_bytes(4 * 1024 * 1024, 2);
    const auto sha = fxd::client::sha256_hex(content);
    write_file(env.path("big.bin"), content);
    const std::size_t half = content.size() / 2;

    // Half a body, then the connection is cut.
    {
        fxd::client::session s("127.0.0.1", env.daemon.tcp_port());
        s.login("alice", password);
        s.conn().send_header({{"op", "upload"}, {"name", "big.bin"}, {"sha256", sha}}, content.size());
        s.conn().send_raw(std::string_view(content).substr(0, half));
    }
    fxd::client::session check("127.0.0.1", env.daemon.tcp_port());
    check.login("alice", password);
    std::optional<fxd::client::file_stat> held;
    for (int i = 0; i < 500; ++i) { // until the daemon has noticed the cut (up to ~10 s)
        held = check.stat("big.bin");
        if (held && held->partial == half)
            break;
        std::this_thread::sleep_for(20ms);
    }
    BOOST_REQUIRE(held.has_value());
    BOOST_TEST(!held->exists);
    BOOST_REQUIRE(held->partial == half);

    const auto partial_stat = env.as("alice", {"--json", "stat", "big.bin"});
    BOOST_TEST(partial_stat.status == 0);
    BOOST_TEST(jnum(json_out(partial_stat), "partial") == half);

    const auto up = env.as("alice", {"--json", "upload", env.path("big.bin").string()});
    const auto u = json_out(up);
    BOOST_TEST(up.status == 0);
    BOOST_TEST(jnum(u, "resumed_from") == half);
    BOOST_TEST(jstr(u, "sha256") == sha);
    BOOST_TEST(!jbool(u, "restarted"));

    const auto after = check.stat("big.bin");
    BOOST_REQUIRE(after.has_value());
    BOOST_TEST(after->exists);
    BOOST_TEST(after->size == content.size());
    BOOST_TEST(after->partial == 0u);

    const auto down = env.as("alice", {"download", "big.bin", "-o", env.path("back.bin").string()});
    BOOST_TEST_INFO(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(read_file(env.path("back.bin")) == content);
}

BOOST_AUTO_TEST_CASE(a_partial_of_other_bytes_is_replaced_by_a_whole_upload, *utf::timeout(300))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    const auto content = random_bytes(1024 * 1024, 3);
    write_file(env.path("f.bin"), content);
    const auto other = random_bytes(content.size(), 4);
    {
        fxd::client::session s("127.0.0.1", env.daemon.tcp_port());
        s.login("alice", password);
        s.conn().send_header({{"op", "upload"}, {"name", "f.bin"}}, other.size());
        s.conn().send_raw(std::string_view(other).substr(0, other.size() / 2));
    }
    fxd::client::session check("127.0.0.1", env.daemon.tcp_port());
    check.login("alice", password);
    bool held = false;
    for (int i = 0; i < 500 && !held; ++i) {
        const auto st = check.stat("f.bin");
        held = st && st->partial == other.size() / 2;
        if (!held)
            std::this_thread::sleep_for(20ms);
    }
    BOOST_REQUIRE(held);

    // The resumed bytes do not hash to the file's SHA-256: fxc starts over.
    const auto up = env.as("alice", {"--json", "upload", env.path("f.bin").string()});
    const auto u = json_out(up);
    BOOST_TEST(up.status == 0);
    BOOST_TEST(jbool(u, "restarted"));
    const auto down = env.as("alice", {"download", "f.bin", "-o", env.path("back.bin").string()});
    BOOST_TEST_INFO(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(read_file(env.path("back.bin")) == content);
}

BOOST_AUTO_TEST_CASE(an_interrupted_download_is_resumed_from_its_part_file, *utf::timeout(300))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    const auto content = random_bytes(2 * 1024 * 1024 + 5, 5);
    write_file(env.path("src.bin"), content);
    BOOST_REQUIRE(env.as("alice", {"upload", env.path("src.bin").string(), "file.bin"}).status == 0);

    // What an interrupted download leaves behind: the first bytes in FILE.part.
    const std::size_t have = 777777;
    write_file(env.path("out.bin.part"), content.substr(0, have));
    const auto down = env.as("alice", {"--json", "download", "file.bin", "-o", env.path("out.bin").string()});
    const auto d = json_out(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(jnum(d, "resumed_from") == have);
    BOOST_TEST(jnum(d, "size") == content.size());
    BOOST_TEST(read_file(env.path("out.bin")) == content);
    BOOST_TEST(!fs::exists(env.path("out.bin.part")));

    // A .part as long as the file: nothing left to fetch, still verified.
    write_file(env.path("full.bin.part"), content);
    const auto full = env.as("alice", {"download", "file.bin", "-o", env.path("full.bin").string()});
    BOOST_TEST_INFO(full);
    BOOST_TEST(full.status == 0);
    BOOST_TEST(read_file(env.path("full.bin")) == content);

    // A .part longer than the file belongs to something else: start over.
    write_file(env.path("long.bin.part"), content + "extra bytes");
    const auto longer = env.as("alice", {"--json", "download", "file.bin", "-o", env.path("long.bin").string()});
    const auto l = json_out(longer);
    BOOST_TEST(longer.status == 0);
    BOOST_TEST(jbool(l, "restarted"));
    BOOST_TEST(read_file(env.path("long.bin")) == content);
}

BOOST_AUTO_TEST_CASE(a_corrupted_part_file_is_detected_and_removed, *utf::timeout(300))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    const auto content = random_bytes(1024 * 1024, 6);
    write_file(env.path("src.bin"), content);
    BOOST_REQUIRE(env.as("alice", {"upload", env.path("src.bin").string(), "file.bin"}).status == 0);

    auto corrupted = content.substr(0, 300000);
    corrupted[12345] = static_cast<char>(corrupted[12345] ^ 0x40);
    write_file(env.path("out.bin.part"), corrupted);
    const auto r = env.as("alice", {"--json", "download", "file.bin", "-o", env.path("out.bin").string()});
    const auto o = json_out(r);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(jstr(o, "code") == "checksum_mismatch");
    BOOST_TEST(r.err.find("SHA-256") != std::string::npos);
    BOOST_TEST(!fs::exists(env.path("out.bin.part")));
    BOOST_TEST(!fs::exists(env.path("out.bin")));

    // Run again: a fresh download succeeds.
    const auto again = env.as("alice", {"download", "file.bin", "-o", env.path("out.bin").string()});
    BOOST_TEST_INFO(again);
    BOOST_TEST(again.status == 0);
    BOOST_TEST(read_file(env.path("out.bin")) == content);
}

BOOST_AUTO_TEST_CASE(progress_bar_only_when_stderr_is_a_terminal, *utf::timeout(300))
{
    fxc_env env;
    FXC_REQUIRE_FILE_OPS(env);
    env.register_user("alice");
    write_file(env.path("p.bin"), random_bytes(8 * 1024 * 1024, 7));

    // On a terminal: the bar is drawn in place (carriage returns) with percent, rate and time left.
    pty_process tty(env.with_ports({"--user", "alice", "upload", env.path("p.bin").string()}),
                    {{"FXC_PASSWORD", password}});
    BOOST_TEST(tty.wait() == 0);
    const auto& screen = tty.output();
    BOOST_TEST_INFO("terminal output: " << screen);
    BOOST_TEST(screen.find("\rupload p.bin [") != std::string::npos);
    BOOST_TEST(screen.find("100%") != std::string::npos);
    BOOST_TEST(screen.find("ETA") != std::string::npos);
    BOOST_TEST(screen.find("/s") != std::string::npos);
    BOOST_TEST(screen.find("uploaded") != std::string::npos);

    pty_process tty_down(env.with_ports({"--user", "alice", "download", "p.bin", "-o", env.path("d.bin").string()}),
                         {{"FXC_PASSWORD", password}});
    BOOST_TEST(tty_down.wait() == 0);
    BOOST_TEST(tty_down.output().find("\rdownload p.bin [") != std::string::npos);

    // Not a terminal: no bar at all, one plain line at the end.
    const auto piped = env.as("alice", {"upload", env.path("p.bin").string(), "p2.bin"});
    BOOST_TEST_INFO(piped);
    BOOST_TEST(piped.status == 0);
    BOOST_TEST(piped.err.find('\r') == std::string::npos);
    BOOST_TEST(piped.err.find("ETA") == std::string::npos);
    BOOST_TEST(piped.err.find('[') == std::string::npos);
    BOOST_TEST(piped.err.find("upload p2.bin: 8.0 MiB in") != std::string::npos);
    BOOST_TEST(std::count(piped.err.begin(), piped.err.end(), '\n') == 1);

    // --quiet: nothing on stderr, on a terminal or not.
    const auto quiet = env.as("alice", {"--quiet", "upload", env.path("p.bin").string(), "p3.bin"});
    BOOST_TEST_INFO(quiet);
    BOOST_TEST(quiet.status == 0);
    BOOST_TEST(quiet.err.empty());
    pty_process quiet_tty(env.with_ports({"--quiet", "--user", "alice", "upload", env.path("p.bin").string(), "p4.bin"}),
                          {{"FXC_PASSWORD", password}});
    BOOST_TEST(quiet_tty.wait() == 0);
    BOOST_TEST(quiet_tty.output().find('\r' + std::string("upload")) == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fxc_shell)

BOOST_AUTO_TEST_CASE(shell_menu_register_login_upload_list_download, *utf::timeout(300))
{
    fxc_env env;
    const auto content = random_bytes(512 * 1024 + 3, 8);
    write_file(env.path("menu.bin"), content);
    const bool files = env.offers_files("shell_menu_register_login_upload_list_download (file steps)");

    pty_process sh(env.with_ports({"shell"}));
    BOOST_REQUIRE(sh.expect("1 register"));
    BOOST_REQUIRE(sh.expect("fxc> "));

    sh.send_line("1");
    BOOST_REQUIRE(sh.expect("user: "));
    sh.send_line("frank");
    BOOST_REQUIRE(sh.expect("password: "));
    sh.send_line(password);
    BOOST_REQUIRE(sh.expect("repeat the password: "));
    sh.send_line(password);
    BOOST_REQUIRE(sh.expect("registered frank"));
    BOOST_REQUIRE(sh.expect("fxc> "));

    sh.send_line("2");
    BOOST_REQUIRE(sh.expect("user: "));
    sh.send_line("frank");
    BOOST_REQUIRE(sh.expect("password: "));
    sh.send_line("wrong-password");
    BOOST_REQUIRE(sh.expect("bad_credentials"));
    BOOST_REQUIRE(sh.expect("fxc> "));
    sh.send_line("2");
    BOOST_REQUIRE(sh.expect("user: "));
    sh.send_line("frank");
    BOOST_REQUIRE(sh.expect("password: "));
    sh.send_line(password);
    BOOST_REQUIRE(sh.expect("logged in as frank"));
    BOOST_REQUIRE(sh.expect("fxc [frank]> "));

    sh.send_line("9");
    BOOST_REQUIRE(sh.expect("unknown choice"));
    BOOST_REQUIRE(sh.expect("fxc [frank]> "));

    if (files) {
        sh.send_line("4");
        BOOST_REQUIRE(sh.expect("file: "));
        sh.send_line(env.path("menu.bin").string());
        BOOST_REQUIRE(sh.expect("name [menu.bin]: "));
        sh.send_line("");
        BOOST_REQUIRE(sh.expect("uploaded"));
        BOOST_REQUIRE(sh.expect("fxc [frank]> "));

        sh.send_line("5");
        BOOST_REQUIRE(sh.expect("menu.bin"));
        BOOST_REQUIRE(sh.expect("fxc [frank]> "));

        sh.send_line("3");
        BOOST_REQUIRE(sh.expect("name: "));
        sh.send_line("menu.bin");
        BOOST_REQUIRE(sh.expect("save as [menu.bin]: "));
        sh.send_line(env.path("menu.back").string());
        BOOST_REQUIRE(sh.expect("downloaded"));
        BOOST_REQUIRE(sh.expect("fxc [frank]> "));

        sh.send_line("3");
        BOOST_REQUIRE(sh.expect("name: "));
        sh.send_line("absent.bin");
        BOOST_REQUIRE(sh.expect("save as [absent.bin]: "));
        sh.send_line(env.path("absent.bin").string());
        BOOST_REQUIRE(sh.expect("not_found"));
        BOOST_REQUIRE(sh.expect("fxc [frank]> "));
    }

    sh.send_line("q");
    BOOST_TEST(sh.expect("bye"));
    BOOST_TEST(sh.wait() == 0);
    BOOST_TEST(sh.output().find(password) == std::string::npos, "a password was echoed");
    if (files)
        BOOST_TEST(read_file(env.path("menu.back")) == content);

    // One connection for the whole session (counted by the daemon).
    fxd::client::session s("127.0.0.1", env.daemon.tcp_port());
    const auto stats = s.stats();
    // hello (offers_files), the shell, and this one.
    BOOST_TEST(stats.at("connections").as_object().at("total").to_number<std::uint64_t>() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
