// fxc, the command-line client, run as a program against the real daemon:
// every command's success and error exits, --json output, resumed uploads
// and downloads, a corrupted .part, the progress bar on a terminal and not
// elsewhere, and the interactive shell driven through a pseudo-terminal.
// fxc_habits (issue 19): safe local writes, many files, remembered logins,
// file times, the config file and messages. tests/cli/fxc_tmux_test.py checks
// the bar's width and the shell's editing and completion on a real terminal.
//
// File-op tests first require hello to offer the file ops: they fail, not
// skip, when it stops offering them.

#include "child_process.hpp"
#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>
#include <fxd/client/session.hpp>
#include <fxd/util/sha256.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using namespace fxd::test;

const std::string password = "correct-horse-1";

std::string fxc_binary()
{
    if (const char* env = std::getenv("FXC_BINARY"))
        return env;
    return FXC_BINARY_PATH;
}

/// fxc's environment: ours without FXC_* (so a developer's settings cannot leak in), plus `changes`.
/// Unless `changes` names them, fxc's config and state folders are ones that do
/// not exist: no ~/.config/fxc of the developer's is read, nothing is written there.
std::vector<std::string> fxc_environment(env_changes changes)
{
    changes.try_emplace("XDG_CONFIG_HOME", "/nonexistent/fxc-test-config");
    changes.try_emplace("XDG_STATE_HOME", "/nonexistent/fxc-test-state");
    return environment_with(changes, {"FXC_"});
}

/// Runs fxc with pipes for stdin, stdout and stderr and no controlling
/// terminal (so it can never prompt); kills it after the safety deadline.
run_result run_fxc(std::vector<std::string> args, const env_changes& env = {}, const std::string& input = {},
                   const fs::path& working_dir = {})
{
    args.insert(args.begin(), fxc_binary());
    run_options options;
    options.working_dir = working_dir.string();
    options.input = input;
    options.environment = fxc_environment(env);
    options.new_session = true;
    options.deadline = 120s;
    return run_program(args, options);
}

/// fxc on a pseudo-terminal: its stdin, stdout and stderr are the terminal.
pty_process fxc_on_tty(std::vector<std::string> args, const env_changes& env = {})
{
    args.insert(args.begin(), fxc_binary());
    return pty_process(args, fxc_environment(env));
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
    run_result fxc(std::vector<std::string> args, const env_changes& env = {}, const std::string& input = {}) const
    {
        return run_fxc(with_ports(std::move(args)), env, input);
    }
    /// fxc as `user` with the password in FXC_PASSWORD.
    run_result as(const std::string& user, std::vector<std::string> args) const
    {
        args.insert(args.begin(), {"--user", user});
        return fxc(std::move(args), {{"FXC_PASSWORD", password}});
    }
    /// The same, run in the scratch folder (relative names, as typed in a shell).
    run_result as_in_work(const std::string& user, std::vector<std::string> args) const
    {
        args.insert(args.begin(), {"--user", user});
        return run_fxc(with_ports(std::move(args)), {{"FXC_PASSWORD", password}}, {}, work.path());
    }
    fs::path path(const std::string& name) const { return work.path() / name; }

    void register_user(const std::string& user) const
    {
        const auto r = as(user, {"register"});
        BOOST_TEST_INFO(r);
        BOOST_REQUIRE(r.status == 0);
    }
    /// Stops the case with a failure unless hello offers every file op fxc uses.
    void require_file_ops() const
    {
        fxd::client::session s(localhost, daemon.tcp_port());
        for (const auto* op : {"upload", "download", "stat", "list", "delete"})
            BOOST_TEST_REQUIRE(s.offers(op), "hello does not offer " << op);
    }
};

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
    BOOST_TEST(str(o, "command") == "ping");
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
    BOOST_TEST(str(o, "code") == "connect_failed");

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
                             "--quiet", "--json", "FXC_USER", "FXC_PASSWORD", "Exit status", "--tls", "--cacert",
                             "--cert FILE", "--key FILE", "FXC_TLS", "7443", "login", "logout", "--force",
                             "--as NAME", "-o -", "credentials", "XDG_CONFIG_HOME", "summary"})
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
    BOOST_TEST(str(o, "text") == "-DASH");
    BOOST_TEST(str(o, "transport") == "udp");

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
    BOOST_TEST(str(o, "code") == "user_exists");
    BOOST_TEST(!str(o, "message").empty());
    BOOST_TEST(again.err.find("user_exists") != std::string::npos);

    // FXC_USER stands in for --user.
    const auto who = env.fxc({"whoami"}, {{"FXC_USER", "alice"}, {"FXC_PASSWORD", password}});
    BOOST_TEST_INFO(who);
    BOOST_TEST(who.status == 0);
    BOOST_TEST(who.out == "alice\n");

    const auto wrong = env.fxc({"--user", "alice", "--json", "whoami"}, {{"FXC_PASSWORD", "not-the-password"}});
    BOOST_TEST(wrong.status == 1);
    BOOST_TEST(str(json_out(wrong), "code") == "bad_credentials");

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
    auto p = fxc_on_tty(env.with_ports({"--user", "dora", "register"}));
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
    BOOST_TEST(str(json_out(r), "code") == "connection_broken");
    BOOST_TEST(r.err.find("broke") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fxc_files)

BOOST_AUTO_TEST_CASE(upload_stat_ls_download_rm_round_trip, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    const auto content = random_bytes(3 * 1024 * 1024 + 17, 1);
    const auto sha = fxd::util::sha256_hex(content);
    write_file(env.path("data.bin"), content);

    const auto up = env.as("alice", {"--json", "upload", env.path("data.bin").string()});
    const auto u = json_out(up);
    BOOST_TEST(up.status == 0);
    BOOST_TEST(str(u, "name") == "data.bin");
    BOOST_TEST(jnum(u, "size") == content.size());
    BOOST_TEST(str(u, "sha256") == sha);
    BOOST_TEST(jnum(u, "resumed_from") == 0u);

    const auto renamed = env.as("alice", {"upload", env.path("data.bin").string(), "--as", "copy one.bin"});
    BOOST_TEST_INFO(renamed);
    BOOST_TEST(renamed.status == 0);
    BOOST_TEST(renamed.out.find("copy one.bin") != std::string::npos);

    const auto st = env.as("alice", {"--json", "stat", "data.bin"});
    const auto s = json_out(st);
    BOOST_TEST(st.status == 0);
    BOOST_TEST(jbool(s, "exists"));
    BOOST_TEST(jnum(s, "size") == content.size());
    BOOST_TEST(str(s, "sha256") == sha);
    BOOST_TEST(jnum(s, "partial") == 0u);
    const auto st_text = env.as("alice", {"stat", "data.bin"});
    BOOST_TEST_INFO(st_text);
    BOOST_TEST(st_text.out.find(sha) != std::string::npos);

    const auto ls = env.as("alice", {"--json", "ls"});
    const auto l = json_out(ls);
    BOOST_TEST(ls.status == 0);
    const auto& files = l.at("files").as_array();
    BOOST_REQUIRE(files.size() == 2u);
    BOOST_TEST(str(files[0].as_object(), "name") == "copy one.bin"); // sorted by name
    BOOST_TEST(str(files[1].as_object(), "name") == "data.bin");
    BOOST_TEST(jnum(files[1].as_object(), "size") == content.size());
    const auto ls_text = env.as("alice", {"ls"});
    BOOST_TEST_INFO(ls_text);
    BOOST_TEST(ls_text.out.find("data.bin") != std::string::npos);

    const auto down = env.as("alice", {"--json", "download", "data.bin", "-o", env.path("back.bin").string()});
    const auto d = json_out(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(str(d, "sha256") == sha);
    BOOST_TEST(read_file(env.path("back.bin")) == content);
    BOOST_TEST(!fs::exists(env.path("back.bin.part")));

    // Another user sees none of it.
    env.register_user("bob");
    const auto other = env.as("bob", {"--json", "ls"});
    BOOST_TEST(json_out(other).at("files").as_array().empty());
    BOOST_TEST(env.as("bob", {"download", "data.bin", "-o", env.path("stolen").string()}).status == 1);

    const auto missing = env.as("alice", {"--json", "download", "nope.bin", "-o", env.path("nope.bin").string()});
    BOOST_TEST(missing.status == 1);
    BOOST_TEST(str(json_out(missing), "code") == "not_found");
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
    BOOST_TEST(str(json_out(gone), "code") == "not_found");
    const auto rm_again = env.as("alice", {"rm", "data.bin"});
    BOOST_TEST_INFO(rm_again);
    BOOST_TEST(rm_again.status == 1);
    BOOST_TEST(rm_again.err.find("not_found") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_file_round_trip, *utf::timeout(120))
{
    fxc_env env;
    env.require_file_ops();
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
    env.require_file_ops();
    env.register_user("alice");
    const auto content = random_bytes(4 * 1024 * 1024, 2);
    const auto sha = fxd::util::sha256_hex(content);
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
    BOOST_TEST(str(u, "sha256") == sha);
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
    env.require_file_ops();
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
    env.require_file_ops();
    env.register_user("alice");
    const auto content = random_bytes(2 * 1024 * 1024 + 5, 5);
    write_file(env.path("src.bin"), content);
    BOOST_REQUIRE(env.as("alice", {"upload", env.path("src.bin").string(), "--as", "file.bin"}).status == 0);

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
    env.require_file_ops();
    env.register_user("alice");
    const auto content = random_bytes(1024 * 1024, 6);
    write_file(env.path("src.bin"), content);
    BOOST_REQUIRE(env.as("alice", {"upload", env.path("src.bin").string(), "--as", "file.bin"}).status == 0);

    auto corrupted = content.substr(0, 300000);
    corrupted[12345] = static_cast<char>(corrupted[12345] ^ 0x40);
    write_file(env.path("out.bin.part"), corrupted);
    const auto r = env.as("alice", {"--json", "download", "file.bin", "-o", env.path("out.bin").string()});
    const auto o = json_out(r);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(str(o, "code") == "checksum_mismatch");
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
    env.require_file_ops();
    env.register_user("alice");
    write_file(env.path("p.bin"), random_bytes(8 * 1024 * 1024, 7));

    // On a terminal: the bar is drawn in place (carriage returns) with percent, rate and time left.
    auto tty = fxc_on_tty(env.with_ports({"--user", "alice", "upload", env.path("p.bin").string()}),
                    {{"FXC_PASSWORD", password}});
    BOOST_TEST(tty.wait() == 0);
    const auto& screen = tty.output();
    BOOST_TEST_INFO("terminal output: " << screen);
    BOOST_TEST(screen.find("\rupload p.bin [") != std::string::npos);
    BOOST_TEST(screen.find("100%") != std::string::npos);
    BOOST_TEST(screen.find("ETA") != std::string::npos);
    BOOST_TEST(screen.find("/s") != std::string::npos);
    BOOST_TEST(screen.find("uploaded") != std::string::npos);

    auto tty_down = fxc_on_tty(env.with_ports({"--user", "alice", "download", "p.bin", "-o", env.path("d.bin").string()}),
                         {{"FXC_PASSWORD", password}});
    BOOST_TEST(tty_down.wait() == 0);
    BOOST_TEST(tty_down.output().find("\rdownload p.bin [") != std::string::npos);

    // Not a terminal: no bar at all, one plain line at the end.
    const auto piped = env.as("alice", {"upload", env.path("p.bin").string(), "--as", "p2.bin"});
    BOOST_TEST_INFO(piped);
    BOOST_TEST(piped.status == 0);
    BOOST_TEST(piped.err.find('\r') == std::string::npos);
    BOOST_TEST(piped.err.find("ETA") == std::string::npos);
    BOOST_TEST(piped.err.find('[') == std::string::npos);
    BOOST_TEST(piped.err.find("upload p2.bin: 8.0 MiB in") != std::string::npos);
    BOOST_TEST(std::count(piped.err.begin(), piped.err.end(), '\n') == 1);

    // --quiet: nothing on stderr, on a terminal or not.
    const auto quiet = env.as("alice", {"--quiet", "upload", env.path("p.bin").string(), "--as", "p3.bin"});
    BOOST_TEST_INFO(quiet);
    BOOST_TEST(quiet.status == 0);
    BOOST_TEST(quiet.err.empty());
    auto quiet_tty = fxc_on_tty(env.with_ports({"--quiet", "--user", "alice", "upload", env.path("p.bin").string(), "--as", "p4.bin"}),
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
    env.require_file_ops();

    auto sh = fxc_on_tty(env.with_ports({"shell"}));
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
    BOOST_REQUIRE(sh.expect("unknown command"));
    BOOST_REQUIRE(sh.expect("fxc [frank]> "));

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

    sh.send_line("q");
    BOOST_TEST(sh.expect("bye"));
    BOOST_TEST(sh.wait() == 0);
    BOOST_TEST(sh.output().find(password) == std::string::npos, "a password was echoed");
    BOOST_TEST(read_file(env.path("menu.back")) == content);

    // One connection for the whole session (counted by the daemon).
    fxd::client::session s("127.0.0.1", env.daemon.tcp_port());
    const auto stats = s.stats();
    // hello (require_file_ops), the shell, and this one.
    BOOST_TEST(stats.at("connections").as_object().at("total").to_number<std::uint64_t>() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()

// Issue 19: fxc as people use it (scp, rsync, curl and wget habits).
BOOST_AUTO_TEST_SUITE(fxc_habits)

namespace {

/// A file `name` of `content` uploaded by alice, who is registered (through
/// the client library: what is under test is fxc's handling of it).
void upload_as_alice(const fxc_env& env, const std::string& name, const std::string& content)
{
    write_file(env.path("src-" + name), content);
    fxd::client::session s(localhost, env.daemon.tcp_port());
    s.login("alice", password);
    s.upload(env.path("src-" + name), name);
}

std::int64_t mtime_of(const fs::path& p)
{
    struct stat st {};
    BOOST_REQUIRE(::lstat(p.c_str(), &st) == 0);
    return static_cast<std::int64_t>(st.st_mtime);
}

void set_mtime(const fs::path& p, std::int64_t t)
{
    const timespec times[2] = {{static_cast<time_t>(t), 0}, {static_cast<time_t>(t), 0}};
    BOOST_REQUIRE(::utimensat(AT_FDCWD, p.c_str(), times, 0) == 0);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_download_never_writes_through_or_over_a_link_fifo_or_device, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    upload_as_alice(env, "f.bin", "new bytes");

    // A symbolic link to a file: refused, the link and its target as they were.
    write_file(env.path("target"), "old bytes");
    fs::create_symlink(env.path("target"), env.path("link"));
    const auto link = env.as("alice", {"download", "f.bin", "-o", env.path("link").string()});
    BOOST_TEST_INFO(link);
    BOOST_TEST(link.status == 2);
    BOOST_TEST(link.err.find("symbolic link") != std::string::npos);
    BOOST_TEST(fs::is_symlink(env.path("link")));
    BOOST_TEST(read_file(env.path("target")) == "old bytes");
    BOOST_TEST(!fs::exists(env.path("link.part")));

    // A FIFO: refused at once (opening it would wait for a reader), still a FIFO.
    BOOST_REQUIRE(::mkfifo(env.path("fifo").c_str(), 0600) == 0);
    const auto fifo = env.as("alice", {"download", "f.bin", "-o", env.path("fifo").string()});
    BOOST_TEST_INFO(fifo);
    BOOST_TEST(fifo.status == 2);
    BOOST_TEST(fifo.err.find("FIFO") != std::string::npos);
    BOOST_TEST(fs::is_fifo(env.path("fifo")));

    // A device (a null device of our own, never the system's /dev/null, which
    // an fxc with this bug would replace): it stays the device. Making one needs root.
    if (::mknod(env.path("null").c_str(), S_IFCHR | 0600, ::makedev(1, 3)) == 0) {
        const auto device = env.as("alice", {"download", "f.bin", "-o", env.path("null").string()});
        BOOST_TEST_INFO(device);
        BOOST_TEST(device.status == 2);
        BOOST_TEST(device.err.find("device") != std::string::npos);
        BOOST_TEST(fs::is_character_file(env.path("null")));
    } else {
        BOOST_TEST_MESSAGE("not root: the device case is not run");
    }

    // A .part that is a link: the download neither follows nor replaces it.
    write_file(env.path("victim"), "keep me");
    fs::create_symlink(env.path("victim"), env.path("out.bin.part"));
    const auto part = env.as("alice", {"download", "f.bin", "-o", env.path("out.bin").string()});
    BOOST_TEST_INFO(part);
    BOOST_TEST(part.status == 2);
    BOOST_TEST(read_file(env.path("victim")) == "keep me");
    BOOST_TEST(fs::is_symlink(env.path("out.bin.part")));
    BOOST_TEST(!fs::exists(env.path("out.bin")));
}

BOOST_AUTO_TEST_CASE(dash_o_dash_streams_to_standard_output, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    const auto content = random_bytes(300 * 1024 + 9, 21);
    upload_as_alice(env, "s.bin", content);
    const auto r = env.as_in_work("alice", {"download", "s.bin", "-o", "-"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST((r.out == content), "stdout holds the file's bytes");
    BOOST_TEST(r.err.find("standard output") != std::string::npos);
    BOOST_TEST(!fs::exists(env.path("-")), "a file named '-' was written");
    BOOST_TEST(!fs::exists(env.path("-.part")));

    // The SHA-256 is still checked: a stored blob changed behind the server's back is a mismatch, exit 1.
    bool corrupted = false;
    for (const auto& entry : fs::recursive_directory_iterator(env.daemon.storage())) {
        if (entry.is_regular_file() && entry.file_size() == content.size()) {
            auto bytes = read_file(entry.path());
            bytes[1000] = static_cast<char>(bytes[1000] ^ 1);
            write_file(entry.path(), bytes);
            corrupted = true;
        }
    }
    BOOST_REQUIRE(corrupted);
    const auto bad = env.as("alice", {"download", "s.bin", "-o", "-"});
    BOOST_TEST(bad.status == 1);
    BOOST_TEST_INFO(bad.err);
    BOOST_TEST(bad.err.find("SHA-256") != std::string::npos);

    const auto with_json = env.as("alice", {"--json", "download", "s.bin", "-o", "-"});
    BOOST_TEST(with_json.status == 2);
}

BOOST_AUTO_TEST_CASE(an_existing_file_is_skipped_when_identical_and_kept_unless_forced, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    upload_as_alice(env, "doc.txt", "the server's version");

    write_file(env.path("doc.txt"), "my local edits");
    const auto kept = env.as("alice", {"download", "doc.txt", "-o", env.path("doc.txt").string()});
    BOOST_TEST_INFO(kept);
    BOOST_TEST(kept.status == 2);
    BOOST_TEST(kept.err.find("--force") != std::string::npos);
    BOOST_TEST(read_file(env.path("doc.txt")) == "my local edits");
    BOOST_TEST(!fs::exists(env.path("doc.txt.part")));

    const auto forced = env.as("alice", {"download", "-f", "doc.txt", "-o", env.path("doc.txt").string()});
    BOOST_TEST_INFO(forced);
    BOOST_TEST(forced.status == 0);
    BOOST_TEST(read_file(env.path("doc.txt")) == "the server's version");

    const auto same = env.as("alice", {"--json", "download", "doc.txt", "-o", env.path("doc.txt").string()});
    const auto o = json_out(same);
    BOOST_TEST(same.status == 0);
    BOOST_TEST(jbool(o, "skipped"));
    const auto same_text = env.as("alice", {"download", "doc.txt", "-o", env.path("doc.txt").string()});
    BOOST_TEST_INFO(same_text);
    BOOST_TEST(same_text.status == 0);
    BOOST_TEST(same_text.out.find("skipped") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(upload_takes_many_files_under_their_base_names, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    write_file(env.path("a.txt"), "alpha");
    write_file(env.path("b.txt"), "bravo!");
    write_file(env.path("c.txt"), "charlie");

    // What `fxc upload *.txt` passes: each file under its own name, never a.txt stored as b.txt.
    const auto two = env.as_in_work("alice", {"upload", "a.txt", "b.txt"});
    BOOST_TEST_INFO(two);
    BOOST_TEST(two.status == 0);
    BOOST_TEST(two.out.find("2 files, 11 B, 0 failed") != std::string::npos);
    {
        fxd::client::session first(localhost, env.daemon.tcp_port());
        first.login("alice", password);
        const auto b = first.stat("b.txt");
        BOOST_REQUIRE(b.has_value());
        BOOST_TEST(b->size == 6u, "b.txt holds a.txt's bytes");
    }
    const auto three = env.as_in_work("alice", {"--json", "upload", "a.txt", "b.txt", "c.txt"});
    BOOST_TEST_INFO(three);
    BOOST_TEST(three.status == 0);
    BOOST_TEST(std::count(three.out.begin(), three.out.end(), '\n') == 4); // one object per file and the summary
    fxd::client::session s(localhost, env.daemon.tcp_port());
    s.login("alice", password);
    const auto files = s.list();
    BOOST_REQUIRE(files.size() == 3u);
    BOOST_TEST(files[0].name == "a.txt");
    BOOST_TEST(files[0].size == 5u);
    BOOST_TEST(files[1].name == "b.txt");
    BOOST_TEST(files[1].size == 6u);

    // The old rename form is refused with the way to say it now.
    const auto old_form = env.as_in_work("alice", {"upload", "a.txt", "renamed.txt"});
    BOOST_TEST_INFO(old_form);
    BOOST_TEST(old_form.status == 2);
    BOOST_TEST(old_form.err.find("--as renamed.txt") != std::string::npos);
    const auto as_two = env.as("alice", {"upload", env.path("a.txt").string(), env.path("b.txt").string(), "--as", "x"});
    BOOST_TEST(as_two.status == 2);
    const auto as_one = env.as("alice", {"upload", env.path("a.txt").string(), "--as", "renamed.txt"});
    BOOST_TEST_INFO(as_one);
    BOOST_TEST(as_one.status == 0);
    BOOST_TEST(s.stat("renamed.txt").has_value());

    fs::create_directory(env.path("folder"));
    const auto folder = env.as("alice", {"upload", env.path("folder").string()});
    BOOST_TEST_INFO(folder);
    BOOST_TEST(folder.status == 2);
    BOOST_TEST(folder.err.find("folder") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(download_and_rm_take_many_names_and_fail_when_any_fails, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    upload_as_alice(env, "one", "1");
    upload_as_alice(env, "two", "22");
    fs::create_directory(env.path("into"));

    const auto down = env.as("alice", {"download", "one", "missing", "two", "-o", env.path("into").string()});
    BOOST_TEST_INFO(down);
    BOOST_TEST(down.status == 1);
    BOOST_TEST(read_file(env.path("into") / "one") == "1");
    BOOST_TEST(read_file(env.path("into") / "two") == "22");
    BOOST_TEST(down.out.find("3 files, 3 B, 1 failed") != std::string::npos);
    BOOST_TEST(down.err.find("not_found") != std::string::npos);

    // Several names need a folder for -o.
    const auto not_folder = env.as("alice", {"download", "one", "two", "-o", env.path("x.bin").string()});
    BOOST_TEST(not_folder.status == 2);

    const auto rm = env.as("alice", {"--json", "rm", "one", "two"});
    BOOST_TEST_INFO(rm);
    BOOST_TEST(rm.status == 0);
    BOOST_TEST(rm.out.find("\"summary\":true") != std::string::npos);
    fxd::client::session s(localhost, env.daemon.tcp_port());
    s.login("alice", password);
    BOOST_TEST(s.list().empty());
    const auto rm_missing = env.as("alice", {"rm", "one", "two"});
    BOOST_TEST(rm_missing.status == 1);
    BOOST_TEST(rm_missing.out.find("2 failed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_file_time_travels_with_the_file, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    const std::int64_t when = 1000000000; // 2001-09-09
    write_file(env.path("old.txt"), "from another century");
    set_mtime(env.path("old.txt"), when);
    const auto up = env.as("alice", {"--json", "upload", env.path("old.txt").string()});
    BOOST_TEST(up.status == 0);
    BOOST_TEST(jnum(json_out(up), "mtime") == static_cast<std::uint64_t>(when));

    const auto st = env.as("alice", {"--json", "stat", "old.txt"});
    BOOST_TEST(jnum(json_out(st), "mtime") == static_cast<std::uint64_t>(when));
    const auto ls = env.as("alice", {"ls"});
    BOOST_TEST_INFO(ls);
    BOOST_TEST(ls.out.find("2001-09-") != std::string::npos);

    const auto down = env.as("alice", {"download", "old.txt", "-o", env.path("back.txt").string()});
    BOOST_TEST_INFO(down);
    BOOST_TEST(down.status == 0);
    BOOST_TEST(mtime_of(env.path("back.txt")) == when);
}

BOOST_AUTO_TEST_CASE(a_hostile_mtime_is_a_bad_request, *utf::timeout(120))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    fxd::client::session s(localhost, env.daemon.tcp_port());
    s.login("alice", password);
    const std::vector<json::value> hostile{json::value(-1), json::value(1.5), json::value("1700000000"),
                                           json::value(253402300800LL), json::value(1e20), json::value(nullptr),
                                           json::value(true), json::array{1}};
    for (const auto& mtime : hostile) {
        const auto r = s.call({{"op", "upload"}, {"name", "t.txt"}, {"mtime", mtime}}, "");
        BOOST_TEST_INFO("mtime " << json::serialize(mtime));
        BOOST_TEST(r.code() == "bad_request");
    }
    const auto fine = s.call({{"op", "upload"}, {"name", "t.txt"}, {"mtime", 253402300799LL}}, "");
    BOOST_TEST(fine.ok());
    BOOST_TEST(s.stat("t.txt")->mtime == 253402300799LL);
}

BOOST_AUTO_TEST_CASE(a_peer_that_is_not_fxd_is_named_as_such, *utf::timeout(60))
{
    // A listener that answers like a web server does to a request it cannot parse.
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    ::listen(listener, 4);
    std::thread web([listener] {
        for (int i = 0; i < 2; ++i) {
            const int c = ::accept(listener, nullptr, nullptr);
            if (c < 0)
                return;
            char buf[256];
            [[maybe_unused]] const auto n = ::recv(c, buf, sizeof buf, 0);
            const std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            [[maybe_unused]] const auto m = ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    });
    const auto port = std::to_string(ntohs(a.sin_port));
    const auto r = run_fxc({"--port", port, "ping"});
    const auto j = run_fxc({"--port", port, "--json", "hello"});
    web.join();
    ::close(listener);
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 3);
    BOOST_TEST(r.err.find("this is not an fxd server") != std::string::npos);
    BOOST_TEST(r.err.find("HTTP") != std::string::npos);
    BOOST_TEST(r.err.find("not sane") == std::string::npos);
    BOOST_TEST(str(json_out(j), "code") == "not_fxd");
}

BOOST_AUTO_TEST_CASE(json_numbers_are_plain_decimals, *utf::timeout(60))
{
    fxc_env env;
    for (int i = 0; i < 3; ++i) {
        const auto r = env.fxc({"--json", "ping"});
        BOOST_TEST_INFO(r);
        BOOST_TEST(r.status == 0);
        BOOST_TEST(r.out.find_first_of("eE", r.out.find("\"ms\":")) == std::string::npos, "an exponent in " << r.out);
        BOOST_TEST(json_out(r).at("ms").is_number());
    }
}

BOOST_AUTO_TEST_CASE(a_resumed_or_restarted_upload_is_told_once, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    const auto content = random_bytes(1024 * 1024, 23);
    write_file(env.path("r.bin"), content);
    const auto other = random_bytes(content.size(), 24);
    {
        // A partial of other bytes: the resume fails its checksum and the file is sent whole.
        fxd::client::session s(localhost, env.daemon.tcp_port());
        s.login("alice", password);
        s.conn().send_header({{"op", "upload"}, {"name", "r.bin"}}, other.size());
        s.conn().send_raw(std::string_view(other).substr(0, other.size() / 2));
    }
    fxd::client::session check(localhost, env.daemon.tcp_port());
    check.login("alice", password);
    bool held = false;
    for (int i = 0; i < 500 && !held; ++i) {
        const auto st = check.stat("r.bin");
        held = st && st->partial == other.size() / 2;
        if (!held)
            std::this_thread::sleep_for(20ms);
    }
    BOOST_REQUIRE(held);
    const auto up = env.as("alice", {"upload", env.path("r.bin").string()});
    BOOST_TEST_INFO(up);
    BOOST_TEST(up.status == 0);
    const auto said = up.out + up.err;
    BOOST_TEST(said.find("resumed") == std::string::npos, "a restarted upload is not also called resumed");
    BOOST_TEST(said.find("whole file was sent") != std::string::npos);
    BOOST_TEST(up.err.find("upload r.bin: 1.0 MiB in") != std::string::npos);
}

namespace {

/// The remembered logins file fxc writes under `config`.
fs::path credentials_in(const fs::path& config)
{
    return config / "fxc" / "credentials";
}

} // namespace

BOOST_AUTO_TEST_CASE(login_is_remembered_until_logout_or_a_password_change, *utf::timeout(300))
{
    fxc_env env;
    env.require_file_ops();
    env.register_user("alice");
    const auto config = env.path("config").string();
    const env_changes with_password{{"XDG_CONFIG_HOME", config}, {"FXC_PASSWORD", password}};
    const env_changes no_password{{"XDG_CONFIG_HOME", config}};

    // Without a remembered login and without a terminal, there is no password to be had.
    const auto before = env.fxc({"--user", "alice", "ls"}, no_password);
    BOOST_TEST(before.status == 2);

    const auto login = env.fxc({"--user", "alice", "login"}, with_password);
    BOOST_TEST_INFO(login);
    BOOST_TEST(login.status == 0);
    BOOST_TEST(login.out.find("fxc logout") != std::string::npos);
    const auto file = credentials_in(config);
    BOOST_REQUIRE(fs::exists(file));
    BOOST_TEST(((fs::status(file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write)),
               "the credentials file is not mode 0600");
    const auto saved = read_file(file);
    BOOST_TEST(saved.find(password) == std::string::npos, "the password was written down");
    BOOST_TEST(saved.find("127.0.0.1:" + std::to_string(env.daemon.tcp_port()) + " alice ") != std::string::npos);

    // Later commands log in with it: no password anywhere, not even --user (the one login on this server).
    const auto ls = env.fxc({"--user", "alice", "ls"}, no_password);
    BOOST_TEST_INFO(ls);
    BOOST_TEST(ls.status == 0);
    write_file(env.path("t.txt"), "token upload");
    const auto up = env.fxc({"upload", env.path("t.txt").string()}, no_password);
    BOOST_TEST_INFO(up);
    BOOST_TEST(up.status == 0);

    // Others may not read it: refused, like ssh refuses such a key.
    fs::permissions(file, fs::perms::group_read, fs::perm_options::add);
    const auto exposed = env.fxc({"--user", "alice", "ls"}, no_password);
    BOOST_TEST_INFO(exposed);
    BOOST_TEST(exposed.status == 2);
    BOOST_TEST(exposed.err.find("chmod 600") != std::string::npos);
    fs::permissions(file, fs::perms::group_read, fs::perm_options::remove);

    // `fxd user passwd` revokes it: the next command says so and forgets it.
    const auto passwd = fxd_user(env.daemon.storage(), {"passwd", "alice"}, "alice-new-password\n");
    BOOST_TEST_INFO(passwd);
    BOOST_REQUIRE(passwd.status == 0);
    const auto revoked = env.fxc({"--user", "alice", "ls"}, no_password);
    BOOST_TEST_INFO(revoked);
    BOOST_TEST(revoked.status == 2);
    BOOST_TEST(revoked.err.find("expired or was revoked") != std::string::npos);
    BOOST_TEST(read_file(file).find(" alice ") == std::string::npos);

    // logout: the server forgets the token, then the file does.
    const env_changes new_password{{"XDG_CONFIG_HOME", config}, {"FXC_PASSWORD", "alice-new-password"}};
    BOOST_REQUIRE(env.fxc({"--user", "alice", "login"}, new_password).status == 0);
    const auto line = read_file(file);
    const auto at = line.find(" alice ") + 7;
    const std::string token = line.substr(at, 64);
    BOOST_TEST(token.find_first_not_of("0123456789abcdef") == std::string::npos);
    const auto out = env.fxc({"--user", "alice", "logout"}, no_password);
    BOOST_TEST_INFO(out);
    BOOST_TEST(out.status == 0);
    BOOST_TEST(out.out.find("revoked") != std::string::npos);
    BOOST_TEST(read_file(file).find(" alice ") == std::string::npos);
    fxd::client::session s(localhost, env.daemon.tcp_port());
    BOOST_CHECK_THROW(s.login_token("alice", token), fxd::client::server_error);
}

BOOST_AUTO_TEST_CASE(tokens_on_the_wire, *utf::timeout(300))
{
    fxc_env env{daemon_process({"--set", "auth.token_ttl_s=120"}), temp_dir()};
    env.register_user("alice");
    env.register_user("bob");
    fxd::client::connection c(localhost, env.daemon.tcp_port());
    const auto before = static_cast<std::int64_t>(std::time(nullptr));
    const auto r = c.call({{"op", "login"}, {"user", "alice"}, {"password", password}, {"remember", true}});
    BOOST_REQUIRE(r.ok());
    const auto token = str(r, "token");
    BOOST_TEST(token.size() == 64u);
    const auto expires = r.header.at("expires").to_number<std::int64_t>();
    BOOST_TEST(expires >= before + 120);
    BOOST_TEST(expires <= static_cast<std::int64_t>(std::time(nullptr)) + 121);
    // Without remember, no token.
    BOOST_TEST(!c.call({{"op", "login"}, {"user", "alice"}, {"password", password}}).header.contains("token"));

    fxd::client::connection t(localhost, env.daemon.tcp_port());
    const auto by_token = t.call({{"op", "login"}, {"user", "alice"}, {"token", token}});
    BOOST_TEST(by_token.ok());
    BOOST_TEST(str(t.call({{"op", "whoami"}}), "user") == "alice");
    BOOST_TEST(t.call({{"op", "list"}}).ok());
    // Another user's name with alice's token: no.
    BOOST_TEST(t.call({{"op", "login"}, {"user", "bob"}, {"token", token}}).code() == "bad_credentials");

    for (const auto& bad : std::vector<json::object>{
             {{"op", "login"}, {"user", "alice"}, {"password", password}, {"token", token}},
             {{"op", "login"}, {"user", "alice"}, {"password", password}, {"remember", "yes"}},
             {{"op", "login"}, {"user", "alice"}, {"token", "not-a-token"}},
             {{"op", "login"}, {"user", "alice"}, {"token", 42}},
             {{"op", "logout"}, {"token", "short"}}}) {
        BOOST_TEST_INFO(json::serialize(bad));
        BOOST_TEST(t.call(bad).code() == "bad_request");
    }

    // An unknown token is a failed login, counted like a wrong password.
    fxd::client::connection guesser(localhost, env.daemon.tcp_port());
    std::string last;
    for (int i = 0; i < 8; ++i)
        last = guesser.call({{"op", "login"}, {"user", "bob"}, {"token", std::string(64, static_cast<char>('a' + i % 6))}}).code();
    BOOST_TEST(last == "rate_limited");

    // logout with the token revokes it; a second time there is nothing to revoke.
    const auto out = t.call({{"op", "logout"}, {"token", token}});
    BOOST_TEST(out.ok());
    BOOST_TEST(out.header.at("revoked").as_bool());
    BOOST_TEST(!t.call({{"op", "logout"}, {"token", token}}).header.at("revoked").as_bool());
    BOOST_TEST(t.call({{"op", "login"}, {"user", "alice"}, {"token", token}}).code() == "bad_credentials");

    // `fxd user del` revokes too.
    const auto again = c.call({{"op", "login"}, {"user", "alice"}, {"password", password}, {"remember", true}});
    const auto fresh = str(again, "token");
    BOOST_REQUIRE(fxd_user(env.daemon.storage(), {"del", "alice"}).status == 0);
    BOOST_TEST(t.call({{"op", "login"}, {"user", "alice"}, {"token", fresh}}).code() == "bad_credentials");
}

BOOST_AUTO_TEST_CASE(the_config_file_gives_defaults_that_options_override, *utf::timeout(120))
{
    fxc_env env;
    env.register_user("alice");
    const auto config = env.path("config");
    fs::create_directories(config / "fxc");
    write_file(config / "fxc" / "config", "# fxc defaults\nhost = 127.0.0.1\nport = " +
                                              std::to_string(env.daemon.tcp_port()) + "\nuser = alice\ntls = false\n");
    const env_changes vars{{"XDG_CONFIG_HOME", config.string()}, {"FXC_PASSWORD", password}};
    const auto who = run_fxc({"whoami"}, vars);
    BOOST_TEST_INFO(who);
    BOOST_TEST(who.status == 0);
    BOOST_TEST(who.out.find("alice") != std::string::npos);

    const auto overridden = run_fxc({"--port", std::to_string(closed_port()), "ping"}, vars);
    BOOST_TEST(overridden.status == 3);

    write_file(config / "fxc" / "config", "port = 7070\ncolour = blue\n");
    const auto unknown = run_fxc({"ping"}, vars);
    BOOST_TEST_INFO(unknown);
    BOOST_TEST(unknown.status == 2);
    BOOST_TEST(unknown.err.find("config:2") != std::string::npos);
    BOOST_TEST(unknown.err.find("colour") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
