// fxbench: a load generator for fxd (see docs/benchmarks.md).

#include "common.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/string.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace {

constexpr std::string_view help = R"(Usage: fxbench MODE [OPTIONS]

Load for fxd on one thread (non-blocking sockets and epoll). Modes:
  echo       C connections, P echo requests outstanding on each at all times,
             B-byte bodies, for T seconds after a warm-up: requests/s, MB/s,
             latency p50/p99/p99.9 (send to reply, per request)
  udp        W echo datagrams in flight, B-byte bodies (B >= 16): datagrams/s,
             loss (replies missing after --udp-timeout, then resent), latency
  upload     a file of S bytes uploaded over C connections at once (as the
             --user, registered when missing): MB/s, the daemon's CPU per GB
  download   the same file downloaded over C connections (uploaded first when
             the server does not hold it): MB/s, the daemon's CPU per GB
  idle       N connections, one ping each, held still: the daemon's RSS per
             connection and its CPU while they are held
  handshake  C connections at a time, each connecting, (with --tls) doing a
             full TLS handshake, sending one ping and closing once answered,
             again and again for T seconds after a warm-up: new connections/s
             and the time each took
  connect    the same loop with one B-byte echo instead of the ping (connect,
             one echo, close), its reply checked whole: new connections/s
             (each one request) and the time each took

Options:
  --host HOST            server address (default 127.0.0.1)
  --port PORT            TCP port (default 7070)
  --udp-port PORT        UDP port (default 7071)
  -c, --connections N    connections (default 1)
  -p, --pipeline P       echo: requests outstanding per connection (default 1)
  --batch                echo: send P requests, wait for all P replies, then
                         send the next P (redis-benchmark -P's way; by default
                         each reply is answered at once with a new request)
  -w, --window W         udp: datagrams in flight (default 64)
  -s, --size BYTES       echo/udp/connect body (default 64); upload/download file size
                         (default 1G); suffixes K, M, G (powers of 1024)
  -t, --seconds T        echo/udp/handshake/connect: measured seconds (default 5)
  --warmup T             echo/udp/handshake/connect: seconds before measuring (default 1; echo also
                         waits for a first reply on every connection)
  --udp-timeout MS       udp: resend a datagram unanswered this long (default 100)
  --raw                  udp: the server echoes the bytes unchanged (udp_reference)
  --raw-idle             idle: connect and hold only (servers other than fxd)
  --raw-ping TEXT        idle with --raw-idle: send TEXT on each connection
                         (\r and \n understood, e.g. 'PING\r\n' for redis)
                         and wait for any reply
  --hold T               idle: seconds the connections are held (default 5)
  --user NAME            upload/download: the account (default bench)
  --password PW          its password (default bench-password)
  --file PATH            upload/download: the local file (default
                         /tmp/fxbench-SIZE.bin, generated when missing)
  --name NAME            upload/download: name prefix on the server (default fxbench)
  --max-seconds T        upload/download: give up after T seconds (default 600)
  --tls                  echo, upload, download, handshake, connect: speak TLS to --port
                         (fxd's tls port); the server's certificate is NOT
                         verified unless --cacert is given
  --cacert FILE          with --tls: verify the server's certificate against
                         this CA file and --host
  --pid PID              the server's pid for CPU and RSS figures (default: the
                         process listening on --port, found with ss)
  --json                 print one JSON object instead of lines for people
  -h, --help             print this help

Start fxd with room for the load:
  fxd --set limits.max_connections=100000 --set limits.max_connections_per_address=100000 \
      --set udp.rate_per_source=0

Exit status: 0 done, 1 the run failed (error reply, broken frame, timeout),
2 usage error, 3 could not connect.
)";

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string unescape(const std::string& s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'r' || s[i + 1] == 'n' || s[i + 1] == '\\')) {
            out += s[i + 1] == 'r' ? '\r' : s[i + 1] == 'n' ? '\n' : '\\';
            ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

/// For CLI11: seconds and milliseconds are numbers, 0 or more ("" when the text is one).
std::string non_negative(const std::string& text)
{
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(v >= 0))
        return "takes a number >= 0, not '" + text + "'";
    return {};
}

/// The options, or nullopt after printing --help. Throws usage_error.
std::optional<fxd::bench::options> parse(int argc, char** argv)
{
    fxd::bench::options o;
    CLI::App app("", "fxbench");
    app.option_defaults()->disable_flag_override(); // --raw=x is an error, not a value for --raw
    app.set_help_flag("-h,--help");
    const CLI::Range port(1, 65535);
    app.add_option("--host", o.host);
    app.add_option("--port", o.port)->check(port);
    app.add_option("--udp-port", o.udp_port)->check(port);
    app.add_option("-c,--connections", o.connections)->check(CLI::Range(1, 1'000'000));
    app.add_option("-p,--pipeline", o.pipeline)->check(CLI::Range(1, 100'000));
    app.add_option("-w,--window", o.window)->check(CLI::Range(1, 4096));
    // K, M, G (any case, optionally KiB style) are powers of 1024.
    const auto* size = app.add_option("-s,--size", o.size)->transform(CLI::AsSizeValue(false));
    for (auto [name, value] : {std::pair{"-t,--seconds", &o.seconds}, {"--warmup", &o.warmup},
                               {"--udp-timeout", &o.udp_timeout_ms}, {"--hold", &o.hold},
                               {"--max-seconds", &o.max_seconds}})
        app.add_option(name, *value)->check(CLI::Validator(non_negative, "T"));
    app.add_flag("--raw", o.raw);
    app.add_flag("--batch", o.batch);
    app.add_flag("--raw-idle", o.raw_idle);
    app.add_option_function<std::string>("--raw-ping", [&](const std::string& text) { o.raw_ping = unescape(text); });
    app.add_flag("--json", o.json);
    app.add_option("--user", o.user);
    app.add_option("--password", o.password);
    app.add_option("--file", o.file);
    app.add_option("--name", o.name);
    app.add_flag("--tls", o.tls);
    app.add_option("--cacert", o.cacert)->check(CLI::ExistingFile);
    app.add_option("--pid", o.pid)->check(CLI::Range(1, 1 << 30));
    app.add_option("mode", o.mode)->check(CLI::IsMember({"echo", "udp", "upload", "download", "idle", "handshake", "connect"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << help;
        return std::nullopt;
    } catch (const CLI::ParseError& e) {
        throw usage_error(e.what());
    }
    if (o.mode.empty())
        throw usage_error("name a mode: echo, udp, upload, download, idle, handshake or connect");
    if (size->count() == 0)
        o.size = (o.mode == "upload" || o.mode == "download") ? (1ull << 30) : 64;
    if (o.mode == "udp" && o.size < 16)
        throw usage_error("udp needs --size of at least 16 bytes (the sequence number travels in the body)");
    if (o.tls && (o.mode == "udp" || o.mode == "idle"))
        throw usage_error("--tls works with echo, upload, download, handshake and connect");
    if (o.batch && o.mode != "echo")
        throw usage_error("--batch works with echo only");
    if (!o.cacert.empty() && !o.tls)
        throw usage_error("--cacert needs --tls");
    if ((o.mode == "echo" || o.mode == "connect") && o.size > (64u << 20))
        throw usage_error("echo bodies are limited to 64 MiB here");
    return o;
}

} // namespace

int main(int argc, char** argv)
{
    using namespace fxd::bench;
    std::signal(SIGPIPE, SIG_IGN);
    options o;
    try {
        auto parsed = parse(argc, argv);
        if (!parsed)
            return 0;
        o = std::move(*parsed);
    } catch (const usage_error& e) {
        std::cerr << "fxbench: " << e.what() << " (see fxbench --help)\n";
        return 2;
    }
    raise_nofile_limit();
    report r(o.mode);
    r.set("host", boost::json::string(o.host));
    r.set("tls", o.tls);
    try {
        if (o.mode == "echo")
            run_echo(o, r);
        else if (o.mode == "udp")
            run_udp(o, r);
        else if (o.mode == "upload")
            run_upload(o, r);
        else if (o.mode == "download")
            run_download(o, r);
        else if (o.mode == "handshake")
            run_handshake(o, r);
        else if (o.mode == "connect")
            run_connect(o, r);
        else
            run_idle(o, r);
    } catch (const connect_error& e) {
        std::cerr << "fxbench: " << e.what() << '\n';
        return 3;
    } catch (const fxd::client::connection_error& e) {
        std::cerr << "fxbench: " << e.what() << '\n';
        return 3;
    } catch (const std::exception& e) {
        std::cerr << "fxbench: " << e.what() << '\n';
        return 1;
    }
    r.print(o.json);
    return 0;
}
