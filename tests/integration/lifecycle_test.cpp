// The daemon's life: shutdown on SIGTERM/SIGINT with its drain, and the
// command line (ports, config checks, exit statuses).

#include "child_process.hpp"
#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

using fxd::client::connection;
using fxd::client::connection_error;
using fxd::client::make_frame;
using fxd::test::daemon_process;
using fxd::test::run_fxd;
using fxd::test::temp_dir;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace {

/// Arguments that keep a daemon that does start off the default ports and storage.
std::vector<std::string> safe_args(const temp_dir& dir, std::vector<std::string> more = {})
{
    std::vector<std::string> args{"--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0", "--set",
                                  "storage.dir=" + (dir.path() / "storage").string()};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

std::string write_file(const temp_dir& dir, const std::string& name, const std::string& text)
{
    const auto path = dir.path() / name;
    fxd::test::write_file(path, text);
    return path.string();
}

/// Waits until the daemon has taken in `bytes` more bytes than at `baseline`
/// (stats bytes.in, less the stats requests used to look), so that a request
/// sent in part is known to be in flight before a signal is sent.
void wait_bytes_in(connection& observer, std::uint64_t baseline, std::uint64_t bytes)
{
    const auto stats_frame = make_frame({{"op", "stats"}}).size();
    std::uint64_t looks = 0;
    const bool seen = eventually([&] {
        const auto s = body_object(observer.call({{"op", "stats"}}));
        ++looks;
        return counter(s, "bytes.in") >= baseline + bytes + looks * stats_frame;
    });
    BOOST_TEST_REQUIRE(seen, "the daemon never read the partial request");
}

std::uint64_t bytes_in(connection& observer)
{
    return counter(body_object(observer.call({{"op", "stats"}})), "bytes.in");
}

/// Pings until the answer is shutting_down: the drain has begun.
void wait_draining(connection& observer)
{
    std::int64_t id = 1000;
    const bool draining = eventually([&] {
        const auto r = observer.call({{"op", "ping"}, {"id", ++id}});
        if (r.ok())
            return false;
        BOOST_TEST(r.code() == "shutting_down");
        BOOST_TEST(r.header.at("id").to_number<std::int64_t>() == id);
        return true;
    });
    BOOST_TEST_REQUIRE(draining, "pings were never refused with shutting_down");
}

bool connect_refused(std::uint16_t port)
{
    try {
        connection conn(localhost, port, 5s);
        return false;
    } catch (const connection_error&) {
        return true;
    }
}

/// SIGTERM or SIGINT with a request half-sent: it finishes, the rest is refused.
void drain_lets_the_request_in_flight_finish(int signo)
{
    daemon_process daemon({"--set", "timeouts.drain_s=30"});
    connection observer(localhost, daemon.tcp_port());
    connection worker(localhost, daemon.tcp_port());
    std::string body;
    for (int i = 0; i < 1000; ++i)
        body += static_cast<char>('a' + i % 26);
    const std::string frame = make_frame({{"op", "echo"}, {"id", 1}}, body);
    const std::size_t first_part = frame.size() - body.size() / 2;

    const auto baseline = bytes_in(observer);
    worker.send_raw(std::string_view(frame).substr(0, first_part));
    wait_bytes_in(observer, baseline, first_part);

    daemon.signal(signo);
    wait_draining(observer);
    BOOST_TEST(connect_refused(daemon.tcp_port()), "a new connection was accepted while draining");
    BOOST_TEST(!daemon.wait_exit(0ms).has_value(), "exited with a request in flight");

    // The rest of the body, and a new request in the same write.
    worker.send_raw(std::string(std::string_view(frame).substr(first_part)) + make_frame({{"op", "ping"}, {"id", 2}}));
    const auto echo = worker.receive();
    BOOST_TEST(echo.ok());
    BOOST_TEST(echo.header.at("id").to_number<int>() == 1);
    BOOST_TEST(echo.body.size() == body.size());
    BOOST_TEST((echo.body.find_first_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos));
    const auto refused = worker.receive();
    BOOST_TEST(refused.code() == "shutting_down");
    BOOST_TEST(refused.header.at("id").to_number<int>() == 2);

    const auto status = daemon.wait_exit(10s);
    BOOST_TEST_REQUIRE(status.has_value(), "still running 10 s after its last request finished");
    BOOST_TEST(*status == 0);
}

/// fxd with stdout on a pipe, its first line read.
spawned_child spawn_fxd_reading_first_line(const std::vector<std::string>& args)
{
    std::vector<std::string> argv{fxd_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return spawn_reading_first_line(argv);
}

} // namespace

BOOST_AUTO_TEST_SUITE(signals)

BOOST_AUTO_TEST_CASE(sigterm_lets_a_request_in_flight_finish_then_exits_zero, *utf::timeout(60))
{
    drain_lets_the_request_in_flight_finish(SIGTERM);
}

BOOST_AUTO_TEST_CASE(sigint_drains_like_sigterm, *utf::timeout(60))
{
    drain_lets_the_request_in_flight_finish(SIGINT);
}

BOOST_AUTO_TEST_CASE(sigterm_with_no_connections_exits_zero, *utf::timeout(30))
{
    daemon_process daemon;
    daemon.signal(SIGTERM);
    const auto status = daemon.wait_exit(10s);
    BOOST_TEST_REQUIRE(status.has_value());
    BOOST_TEST(*status == 0);
}

BOOST_AUTO_TEST_CASE(sigterm_with_idle_connections_only_exits_zero_and_closes_them, *utf::timeout(30))
{
    daemon_process daemon;
    std::vector<connection> idle;
    for (int i = 0; i < 3; ++i) {
        idle.emplace_back(localhost, daemon.tcp_port());
        BOOST_TEST(idle.back().call({{"op", "ping"}}).ok());
    }
    daemon.signal(SIGTERM);
    const auto status = daemon.wait_exit(10s);
    BOOST_TEST_REQUIRE(status.has_value(), "idle connections kept the daemon from exiting");
    BOOST_TEST(*status == 0);
    for (auto& conn : idle) {
        const auto end = next_event(conn);
        BOOST_TEST((end == stream_end::eof || end == stream_end::reset), "connection is " << end);
    }
}

BOOST_AUTO_TEST_CASE(sigterm_with_a_request_half_sent_exits_zero_after_drain_s, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.drain_s=0.5", "--set", "timeouts.body_s=600"});
    connection observer(localhost, daemon.tcp_port());
    connection stuck(localhost, daemon.tcp_port());
    const std::string frame = make_frame({{"op", "echo"}, {"id", 1}}, std::string(1000, 'x'));
    const auto baseline = bytes_in(observer);
    stuck.send_raw(std::string_view(frame).substr(0, frame.size() - 500));
    wait_bytes_in(observer, baseline, frame.size() - 500);

    daemon.signal(SIGTERM);
    const auto status = daemon.wait_exit(10s);
    BOOST_TEST_REQUIRE(status.has_value(), "still running 10 s after a 0.5 s drain deadline");
    BOOST_TEST(*status == 0);
    const auto end = next_event(stuck);
    BOOST_TEST((end == stream_end::eof || end == stream_end::reset), "the cut request's connection is " << end);
}

BOOST_AUTO_TEST_CASE(second_signal_stops_at_once, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.drain_s=600", "--set", "timeouts.body_s=600"});
    connection observer(localhost, daemon.tcp_port());
    connection stuck(localhost, daemon.tcp_port());
    const std::string frame = make_frame({{"op", "echo"}}, std::string(1000, 'x'));
    const auto baseline = bytes_in(observer);
    stuck.send_raw(std::string_view(frame).substr(0, frame.size() - 500));
    wait_bytes_in(observer, baseline, frame.size() - 500);

    daemon.signal(SIGTERM);
    wait_draining(observer);
    BOOST_TEST(!daemon.wait_exit(0ms).has_value(), "exited with a request in flight");
    daemon.signal(SIGTERM);
    const auto status = daemon.wait_exit(10s);
    BOOST_TEST_REQUIRE(status.has_value(), "a second SIGTERM did not stop the drain");
    BOOST_TEST(*status == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(command_line)

BOOST_AUTO_TEST_CASE(print_ports_prints_both_ports_on_one_line_once_ready, *utf::timeout(60))
{
    temp_dir dir;
    // Without the admin listener the line is exactly the two protocol ports.
    const auto child = spawn_fxd_reading_first_line(safe_args(dir, {"--print-ports", "--set", "admin.enabled=false"}));
    std::smatch m;
    const bool matches = std::regex_match(child.first_line, m, std::regex(R"(tcp=(\d+) udp=(\d+)\n)"));
    BOOST_TEST(matches, "first stdout line: " << show(child.first_line));
    if (matches) {
        const auto tcp = static_cast<std::uint16_t>(std::stoi(m[1]));
        const auto udp = static_cast<std::uint16_t>(std::stoi(m[2]));
        BOOST_TEST(tcp != 0);
        BOOST_TEST(udp != 0);
        connection conn(localhost, tcp);
        BOOST_TEST(conn.call({{"op", "ping"}}).ok());
        const auto got = fxd::client::udp_exchange(localhost, udp, make_frame({{"op", "ping"}}));
        BOOST_TEST_REQUIRE(got.has_value());
        BOOST_TEST(fxd::client::parse_frame(*got).ok());
    }
    ::kill(child.pid, SIGTERM);
    auto status = wait_pid(child.pid, 10s);
    if (!status) {
        ::kill(child.pid, SIGKILL);
        status = wait_pid(child.pid, 10s);
    }
    BOOST_TEST(status.value_or(-1) == 0);
}

BOOST_AUTO_TEST_CASE(check_config_prints_config_ok_and_exits_zero, *utf::timeout(30))
{
    temp_dir dir;
    const auto r = run_fxd(safe_args(dir, {"--check-config"}));
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out == "config ok\n");
}

BOOST_AUTO_TEST_CASE(shipped_config_file_passes_check_config, *utf::timeout(30))
{
    const auto r = run_fxd({"--config", std::string(FXD_SOURCE_DIR) + "/config/fxd.json", "--check-config"});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out == "config ok\n");
}

BOOST_AUTO_TEST_CASE(config_file_applies_and_set_overrides_it, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = write_file(dir, "fxd.json", R"(// a comment
{
  "tcp": { "port": 7070 },
  "limits": { "max_header_bytes": 2000, "max_echo_bytes": 999 }
})");
    daemon_process daemon({"--config", file, "--set", "limits.max_echo_bytes=123"});
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "hello"}});
    const auto& limits = r.header.at("limits").as_object();
    BOOST_TEST(limits.at("max_header_bytes").to_number<std::uint64_t>() == 2000u);
    BOOST_TEST(limits.at("max_echo_bytes").to_number<std::uint64_t>() == 123u);
}

BOOST_AUTO_TEST_CASE(unknown_option_exits_2_naming_it, *utf::timeout(30))
{
    temp_dir dir;
    const auto r = run_fxd(safe_args(dir, {"--frobnicate"}));
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("--frobnicate") != std::string::npos, "stderr: " << r.err);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_naming_the_option_or_argument, *utf::timeout(60))
{
    temp_dir dir;
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"--set"}, "--set"},                        // a value is missing
        {{"--config"}, "--config"},
        {{"stray"}, "stray"},                        // an argument fxd does not take
        {{"--set", "tcp.port=0", "udp.port=0"}, "udp.port=0"}, // one KEY=VALUE per --set
        {{"--print-ports=yes"}, "print-ports"},      // a switch takes no value
        {{"user"}, "user"},                          // user without its command
        {{"user", "rename", "alice"}, "rename"},
        {{"user", "add"}, "NAME"},
        {{"user", "del", "alice", "bob"}, "bob"},
        {{"user", "list", "alice"}, "alice"},
        {{"user", "passwd", "Alice"}, "'Alice' is not a valid user name"},
    };
    for (const auto& [args, named] : cases) {
        std::string line;
        for (const auto& arg : args)
            line += " " + arg;
        BOOST_TEST_CONTEXT("fxd" << line << " names " << named)
        {
            const auto r = run_fxd(safe_args(dir, args));
            BOOST_TEST(r.status == 2);
            BOOST_TEST(r.out.empty(), "stdout: " << r.out);
            BOOST_TEST(r.err.find(named) != std::string::npos, "stderr: " << r.err);
        }
    }
    BOOST_TEST(!fs::exists(dir.path() / "storage"), "a usage error touched the storage folder");
}

BOOST_AUTO_TEST_CASE(options_take_the_inline_form_and_may_follow_the_user_command, *utf::timeout(60))
{
    temp_dir dir;
    const auto storage = "storage.dir=" + (dir.path() / "storage").string();
    const auto config = write_file(dir, "fxd.json", R"({"limits": {"max_echo_bytes": 999}})");
    auto r = run_fxd({"--config=" + config, "--set=" + storage, "--check-config"});
    BOOST_TEST(r.status == 0, "stderr: " << r.err);
    BOOST_TEST(r.out == "config ok\n");
    // With no database there, list refuses, naming the one it looked for: the --set's.
    r = run_fxd({"user", "list", "--set", storage, "--config", config});
    BOOST_TEST(r.status == 1, "stderr: " << r.err);
    BOOST_TEST(r.err.find((dir.path() / "storage" / "fxd.db").string()) != std::string::npos,
               "user list ignored the --set after it: " << r.err);
    BOOST_TEST(run_fxd({"-h"}).status == 0);
}

BOOST_AUTO_TEST_CASE(unknown_key_exits_2_naming_it, *utf::timeout(60))
{
    temp_dir dir;
    for (const bool check_only : {true, false}) {
        BOOST_TEST_CONTEXT((check_only ? "with" : "without") << " --check-config")
        {
            auto args = safe_args(dir, {"--set", "tcp.prot=1"});
            if (check_only)
                args.emplace_back("--check-config");
            const auto r = run_fxd(args);
            BOOST_TEST(r.status == 2);
            BOOST_TEST(r.err.find("tcp.prot") != std::string::npos, "stderr: " << r.err);
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_value_exits_2_naming_the_key, *utf::timeout(120))
{
    temp_dir dir;
    const std::vector<std::pair<std::string, std::string>> cases{
        {"tcp.port", "70000"},       {"tcp.port", "-1"},        {"tcp.port", "abc"},      {"udp.port", "65536"},
        {"tcp.bind", "not-an-ip"},   {"log.level", "loud"},      {"log.format", "xml"},    {"timeouts.idle_s", "soon"},
        {"timeouts.idle_s", "-1"},   {"limits.max_header_bytes", "1.5"},
    };
    for (const auto& [key, value] : cases) {
        for (const bool check_only : {true, false}) {
            BOOST_TEST_CONTEXT(key << "=" << value << (check_only ? " with --check-config" : ""))
            {
                auto args = safe_args(dir, {"--set", key + "=" + value});
                if (check_only)
                    args.emplace_back("--check-config");
                const auto r = run_fxd(args);
                BOOST_TEST(r.status == 2);
                BOOST_TEST(r.err.find(key) != std::string::npos, "stderr: " << r.err);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_boolean_key_takes_true_or_false_and_says_so_otherwise, *utf::timeout(60))
{
    temp_dir dir;
    for (const auto* word : {"true", "false"})
        BOOST_TEST(run_fxd(safe_args(dir, {"--set", std::string("auth.allow_register=") + word, "--check-config"})).status ==
                   0);
    for (const bool check_only : {true, false}) {
        BOOST_TEST_CONTEXT((check_only ? "with" : "without") << " --check-config")
        {
            auto args = safe_args(dir, {"--set", "auth.allow_register=yes"});
            if (check_only)
                args.emplace_back("--check-config");
            const auto r = run_fxd(args);
            BOOST_TEST(r.status == 2);
            BOOST_TEST(r.err.find(R"(auth.allow_register': expected true or false, got "yes")") != std::string::npos,
                       "stderr: " << r.err);
            BOOST_TEST(r.err.find("number") == std::string::npos, "stderr: " << r.err);
        }
    }
}

BOOST_AUTO_TEST_CASE(set_without_a_key_value_pair_exits_2, *utf::timeout(30))
{
    temp_dir dir;
    BOOST_TEST(run_fxd(safe_args(dir, {"--set", "tcp.port"})).status == 2);
    BOOST_TEST(run_fxd(safe_args(dir, {"--set"})).status == 2);
    BOOST_TEST(run_fxd(safe_args(dir, {"--config"})).status == 2);
}

BOOST_AUTO_TEST_CASE(bad_config_file_exits_2, *utf::timeout(60))
{
    temp_dir dir;
    const std::vector<std::tuple<std::string, std::string, std::string>> cases{
        {"unknown key", R"({"tcp": {"prot": 1}})", "tcp.prot"},
        {"unknown section", R"({"tcpp": {"port": 1}})", "tcpp.port"},
        {"bad value", R"({"tcp": {"port": 70000}})", "tcp.port"},
        {"wrong type", R"({"timeouts": {"idle_s": "soon"}})", "timeouts.idle_s"},
        {"section not an object", R"({"tcp": 5})", "tcp"},
        {"not JSON", R"({"tcp": )", ""},
        {"not an object", R"([1, 2])", ""},
    };
    int n = 0;
    for (const auto& [name, text, key] : cases) {
        BOOST_TEST_CONTEXT(name)
        {
            const auto file = write_file(dir, "bad" + std::to_string(++n) + ".json", text);
            // File first, then the safe --set overrides, as the contract orders them.
            auto args = std::vector<std::string>{"--config", file};
            const auto safe = safe_args(dir);
            args.insert(args.end(), safe.begin(), safe.end());
            const auto r = run_fxd(args);
            BOOST_TEST(r.status == 2);
            BOOST_TEST(r.err.find(key) != std::string::npos, "stderr: " << r.err);
            BOOST_TEST(run_fxd({"--config", file, "--check-config"}).status == 2);
        }
    }
    BOOST_TEST(run_fxd({"--config", (dir.path() / "missing.json").string(), "--check-config"}).status == 2);
}

BOOST_AUTO_TEST_CASE(version_prints_fxd_and_the_version_that_hello_reports, *utf::timeout(30))
{
    const auto r = run_fxd({"--version"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(std::regex_match(r.out, std::regex(R"(fxd \S+\n)")), "stdout: " << show(r.out));

    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    BOOST_TEST(str(conn.call({{"op", "hello"}}), "server") + "\n" == r.out);
}

BOOST_AUTO_TEST_CASE(help_exits_zero_and_describes_the_options, *utf::timeout(30))
{
    const auto r = run_fxd({"--help"});
    BOOST_TEST(r.status == 0);
    for (const auto* option : {"--config", "--set", "--check-config", "--print-ports", "--version"})
        BOOST_TEST(r.out.find(option) != std::string::npos, "help mentions " << option);
}

/// The bind failure names the listener, its address and port, the cause and the key to change,
/// and nothing from inside Boost (no header file, no function).
void check_port_in_use_message(const std::string& err, const std::string& listener, std::uint16_t port)
{
    const std::string where = "127.0.0.1:" + std::to_string(port);
    BOOST_TEST(err.find("cannot open the " + listener + " listener on " + where) != std::string::npos, "stderr: " << err);
    BOOST_TEST(err.find("address already in use") != std::string::npos, "stderr: " << err);
    BOOST_TEST(err.find("another process") != std::string::npos, "stderr: " << err);
    BOOST_TEST(err.find("--set " + listener + ".port=") != std::string::npos, "stderr: " << err);
    for (const auto* inside : {".hpp", ".ipp", "in function", "system:98", "boost"})
        BOOST_TEST(err.find(inside) == std::string::npos, "stderr shows " << inside << ": " << err);
}

BOOST_AUTO_TEST_CASE(tcp_port_in_use_exits_1_naming_the_listener_and_port, *utf::timeout(30))
{
    daemon_process first;
    temp_dir dir;
    const auto r = run_fxd(safe_args(dir, {"--set", "tcp.port=" + std::to_string(first.tcp_port())}));
    BOOST_TEST(r.status == 1);
    check_port_in_use_message(r.err, "tcp", first.tcp_port());
}

BOOST_AUTO_TEST_CASE(udp_port_in_use_exits_1_naming_the_listener_and_port, *utf::timeout(30))
{
    daemon_process first;
    temp_dir dir;
    const auto r = run_fxd(safe_args(dir, {"--set", "udp.port=" + std::to_string(first.udp_port())}));
    BOOST_TEST(r.status == 1);
    check_port_in_use_message(r.err, "udp", first.udp_port());
}

BOOST_AUTO_TEST_CASE(an_address_not_of_this_host_names_the_bind_key, *utf::timeout(30))
{
    temp_dir dir;
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this host.
    const auto r = run_fxd(safe_args(dir, {"--set", "tcp.bind=192.0.2.1"}));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("cannot open the tcp listener on 192.0.2.1:0") != std::string::npos, "stderr: " << r.err);
    BOOST_TEST(r.err.find("tcp.bind") != std::string::npos, "stderr: " << r.err);
    BOOST_TEST(r.err.find(".hpp") == std::string::npos, "stderr: " << r.err);
}

BOOST_AUTO_TEST_CASE(world_writable_storage_dir_is_refused, *utf::timeout(30))
{
    temp_dir dir;
    const auto open_dir = dir.path() / "open";
    fs::create_directory(open_dir);
    fs::permissions(open_dir, fs::perms::all);
    BOOST_TEST_REQUIRE(((fs::status(open_dir).permissions() & fs::perms::others_write) != fs::perms::none));
    const auto r = run_fxd({"--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0", "--set",
                             "storage.dir=" + open_dir.string()});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("storage.dir") != std::string::npos, "stderr: " << r.err);
}

BOOST_AUTO_TEST_CASE(json_log_format_writes_one_object_per_line, *utf::timeout(30))
{
    daemon_process daemon({"--set", "log.format=json"});
    {
        connection conn(localhost, daemon.tcp_port());
        BOOST_TEST(conn.call({{"op", "ping"}}).ok());
    }
    daemon.signal(SIGTERM);
    BOOST_TEST(daemon.wait_exit(10s).value_or(-1) == 0);
    const auto log = daemon.log();
    std::size_t lines = 0;
    std::size_t at = 0;
    while (at < log.size()) {
        auto end = log.find('\n', at);
        if (end == std::string::npos)
            end = log.size();
        const auto line = log.substr(at, end - at);
        at = end + 1;
        if (line.empty())
            continue;
        ++lines;
        boost::system::error_code ec;
        const auto v = boost::json::parse(line, ec);
        BOOST_TEST((!ec && v.is_object()), "not a JSON object: " << line);
    }
    BOOST_TEST(lines > 0u);
}

BOOST_AUTO_TEST_SUITE_END()
