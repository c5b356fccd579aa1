#pragma once
/// What the fxbench modes share: the options, the clock, socket set-up,
/// reading a process's CPU time and RSS from /proc, and the report.

#include "histogram.hpp"

#include <fxd/util/net.hpp>
#include <fxd/util/unique_fd.hpp>

#include <boost/json/object.hpp>

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::bench {

struct options {
    std::string mode;
    std::string host = "127.0.0.1";
    std::uint16_t port = 7070;
    std::uint16_t udp_port = 7071;
    int connections = 1;
    int pipeline = 1;
    int window = 64;                 ///< udp: datagrams in flight
    std::uint64_t size = 0;          ///< body bytes (echo, udp, connect) or file bytes (upload, download); 0: the mode's default
    double seconds = 5;              ///< measured time (echo, udp, handshake, connect)
    double warmup = 1;               ///< unmeasured time before it
    double hold = 5;                 ///< idle: seconds the connections are held
    double udp_timeout_ms = 100;     ///< udp: resend after this long without a reply
    double max_seconds = 600;        ///< upload, download: give up after this long
    bool batch = false;              ///< echo: P requests, then wait for all P replies (redis-benchmark -P)
    bool raw = false;                ///< udp: the server echoes bytes unchanged
    bool raw_idle = false;           ///< idle: connect and hold, send nothing
    std::string raw_ping;            ///< idle with raw_idle: bytes to send on each connection, any reply will do
    bool json = false;
    std::string user = "bench";
    std::string password = "bench-password";
    std::string file;                ///< upload, download: the local file (generated when missing)
    std::string name = "fxbench";    ///< upload, download: the name on the server (a suffix per connection)
    pid_t pid = 0;                   ///< the server's pid; 0: found from the port with ss
    bool tls = false;                ///< echo, upload, download, handshake, connect: speak TLS on --port
    std::string cacert;              ///< with tls: verify the server against this CA file (else no check)
};

/// A run failed in a way the user should hear about (exit status 1).
class bench_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Could not connect (exit status 3).
class connect_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline std::int64_t now_ns() noexcept
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline double seconds_between(std::int64_t a, std::int64_t b) noexcept { return static_cast<double>(b - a) / 1e9; }

using util::endpoint;
using util::raise_nofile_limit;

/// The first address of host:port; throws connect_error when it cannot be resolved.
endpoint resolve(const std::string& host, std::uint16_t port, int socktype);

void set_nonblocking(int fd);
void set_nodelay(int fd);

/// Opens n TCP connections, at most `parallel` handshakes at a time (so the
/// server's accept queue does not overflow), within timeout_s. Returns
/// non-blocking sockets with TCP_NODELAY set; throws connect_error.
std::vector<util::unique_fd> connect_many(const endpoint& ep, int n, double timeout_s, int parallel = 256);

/// The pid listening on TCP port (from `ss -ltnpH`); 0 when not found.
pid_t find_listener_pid(std::uint16_t port);

/// utime + stime of a process, in seconds (all its threads).
double process_cpu_seconds(pid_t pid);

/// VmRSS of a process, in bytes.
std::uint64_t process_rss_bytes(pid_t pid);

/// The pid to measure: options.pid, or the listener on options.port; throws when neither.
pid_t server_pid(const options& o);

/// The figures of one run: a JSON object for --json, aligned lines otherwise.
class report {
public:
    explicit report(std::string_view mode);
    void set(std::string_view key, boost::json::value v) { json_[key] = std::move(v); }
    /// A figure shown to people as "label  value unit" (and stored under key).
    void figure(std::string_view key, double value, std::string_view label, std::string_view unit, int precision = 1);
    void count(std::string_view key, std::uint64_t value, std::string_view label);
    /// p50/p99/p99.9/mean/max of a latency histogram in nanoseconds, shown in microseconds.
    void latency(const histogram& h);
    void print(bool json) const;

private:
    boost::json::object json_;
    std::vector<std::pair<std::string, std::string>> lines_;
};

int run_echo(const options& o, report& r);
int run_udp(const options& o, report& r);
int run_upload(const options& o, report& r);
int run_download(const options& o, report& r);
int run_idle(const options& o, report& r);
int run_handshake(const options& o, report& r);
int run_connect(const options& o, report& r);

} // namespace fxd::bench
