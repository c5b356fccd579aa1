// fxbench: a load generator for fxd (see docs/benchmarks.md).

#include "common.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/string.hpp>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

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

Options:
  --host HOST            server address (default 127.0.0.1)
  --port PORT            TCP port (default 7070)
  --udp-port PORT        UDP port (default 7071)
  -c, --connections N    connections (default 1)
  -p, --pipeline P       echo: requests outstanding per connection (default 1)
  -w, --window W         udp: datagrams in flight (default 64)
  -s, --size BYTES       echo/udp body (default 64); upload/download file size
                         (default 1G); suffixes K, M, G (powers of 1024)
  -t, --seconds T        echo/udp: measured seconds (default 5)
  --warmup T             echo/udp: seconds before measuring (default 1; echo also
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

std::uint64_t parse_size(std::string_view s)
{
    std::uint64_t mult = 1;
    if (!s.empty()) {
        switch (s.back()) {
        case 'k': case 'K': mult = 1ull << 10; break;
        case 'm': case 'M': mult = 1ull << 20; break;
        case 'g': case 'G': mult = 1ull << 30; break;
        default: break;
        }
        if (mult != 1)
            s.remove_suffix(1);
    }
    std::size_t used = 0;
    const std::string str(s);
    unsigned long long v = 0;
    try {
        v = std::stoull(str, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (str.empty() || used != str.size())
        throw usage_error("not a size: " + str);
    return v * mult;
}

double parse_double(const std::string& s, const std::string& opt)
{
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != s.size() || !(v >= 0))
        throw usage_error(opt + " takes a number >= 0, not " + s);
    return v;
}

long parse_int(const std::string& s, const std::string& opt, long lo, long hi)
{
    std::size_t used = 0;
    long v = 0;
    try {
        v = std::stol(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != s.size() || v < lo || v > hi)
        throw usage_error(opt + " takes an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                          ", not " + s);
    return v;
}

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

fxd::bench::options parse(int argc, char** argv)
{
    fxd::bench::options o;
    bool size_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        std::string value;
        bool has_value = false;
        if (arg.starts_with("--") && arg.find('=') != std::string::npos) {
            value = arg.substr(arg.find('=') + 1);
            arg = arg.substr(0, arg.find('='));
            has_value = true;
        }
        auto next = [&]() -> std::string {
            if (has_value)
                return value;
            if (i + 1 >= argc)
                throw usage_error(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "-h" || arg == "--help") {
            std::cout << help;
            std::exit(0);
        } else if (arg == "--host") o.host = next();
        else if (arg == "--port") o.port = static_cast<std::uint16_t>(parse_int(next(), arg, 1, 65535));
        else if (arg == "--udp-port") o.udp_port = static_cast<std::uint16_t>(parse_int(next(), arg, 1, 65535));
        else if (arg == "-c" || arg == "--connections") o.connections = static_cast<int>(parse_int(next(), arg, 1, 1000000));
        else if (arg == "-p" || arg == "--pipeline") o.pipeline = static_cast<int>(parse_int(next(), arg, 1, 100000));
        else if (arg == "-w" || arg == "--window") o.window = static_cast<int>(parse_int(next(), arg, 1, 4096));
        else if (arg == "-s" || arg == "--size") { o.size = parse_size(next()); size_given = true; }
        else if (arg == "-t" || arg == "--seconds") o.seconds = parse_double(next(), arg);
        else if (arg == "--warmup") o.warmup = parse_double(next(), arg);
        else if (arg == "--udp-timeout") o.udp_timeout_ms = parse_double(next(), arg);
        else if (arg == "--hold") o.hold = parse_double(next(), arg);
        else if (arg == "--max-seconds") o.max_seconds = parse_double(next(), arg);
        else if (arg == "--raw") o.raw = true;
        else if (arg == "--raw-idle") o.raw_idle = true;
        else if (arg == "--raw-ping") o.raw_ping = unescape(next());
        else if (arg == "--json") o.json = true;
        else if (arg == "--user") o.user = next();
        else if (arg == "--password") o.password = next();
        else if (arg == "--file") o.file = next();
        else if (arg == "--name") o.name = next();
        else if (arg == "--pid") o.pid = static_cast<pid_t>(parse_int(next(), arg, 1, 1L << 30));
        else if (!arg.starts_with("-") && o.mode.empty()) o.mode = arg;
        else throw usage_error("unknown option " + arg);
    }
    if (o.mode.empty())
        throw usage_error("name a mode: echo, udp, upload, download or idle");
    if (o.mode != "echo" && o.mode != "udp" && o.mode != "upload" && o.mode != "download" && o.mode != "idle")
        throw usage_error("unknown mode " + o.mode);
    if (!size_given)
        o.size = (o.mode == "upload" || o.mode == "download") ? (1ull << 30) : 64;
    if (o.mode == "udp" && o.size < 16)
        throw usage_error("udp needs --size of at least 16 bytes (the sequence number travels in the body)");
    if (o.mode == "echo" && o.size > (64u << 20))
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
        o = parse(argc, argv);
    } catch (const usage_error& e) {
        std::cerr << "fxbench: " << e.what() << " (see fxbench --help)\n";
        return 2;
    }
    raise_nofile_limit();
    report r(o.mode);
    r.set("host", boost::json::string(o.host));
    try {
        if (o.mode == "echo")
            run_echo(o, r);
        else if (o.mode == "udp")
            run_udp(o, r);
        else if (o.mode == "upload")
            run_upload(o, r);
        else if (o.mode == "download")
            run_download(o, r);
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
