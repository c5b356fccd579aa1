// upload / download: one file of S bytes over C logged-in connections at
// once. Accounts and the request headers go through fxd::client::connection;
// the bytes then move on non-blocking sockets in one epoll loop (sendfile up,
// recv into a throw-away buffer down). The daemon's CPU time comes from
// /proc/PID/stat before and after. With --tls every step goes through
// OpenSSL on fxbench's own sockets (stream.hpp): the set-up calls block with
// poll, and an upload's body is read from the file into a buffer and
// encrypted (no sendfile through TLS).

#include "common.hpp"
#include "frames.hpp"
#include "stream.hpp"

#include <fxd/client/client.hpp>
#include <fxd/protocol/encoder.hpp>
#include <fxd/util/sha256.hpp>

#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>

namespace fxd::bench {

namespace {

struct local_file {
    std::string path;
    std::uint64_t size = 0;
    std::string sha256;
};

/// The bench file: reused when it exists with the right size, otherwise
/// filled with pseudo-random bytes. Its SHA-256 is cached beside it.
local_file prepare_file(const options& o)
{
    local_file f;
    f.size = o.size;
    f.path = o.file.empty() ? "/tmp/fxbench-" + std::to_string(o.size) + ".bin" : o.file;
    struct stat st{};
    if (::stat(f.path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != f.size) {
        util::unique_fd fd(::open(f.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!fd)
            throw bench_error("cannot create " + f.path + ": " + std::strerror(errno));
        std::vector<std::uint64_t> buf(1 << 19); // 4 MiB
        std::uint64_t x = 0x9e3779b97f4a7c15ull;
        for (std::uint64_t left = f.size; left > 0;) {
            for (auto& w : buf) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w = x;
            }
            const auto n = std::min<std::uint64_t>(left, buf.size() * sizeof(std::uint64_t));
            if (::write(fd.get(), buf.data(), n) != static_cast<ssize_t>(n))
                throw bench_error("cannot write " + f.path + ": " + std::strerror(errno));
            left -= n;
        }
        fd.reset();
        ::stat(f.path.c_str(), &st);
    }
    const std::string stamp = std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                              std::to_string(st.st_mtim.tv_nsec);
    const std::string cache = f.path + ".sha256";
    {
        std::ifstream in(cache);
        std::string s, sha;
        if (std::getline(in, s) && std::getline(in, sha) && s == stamp && sha.size() == 64) {
            f.sha256 = sha;
            return f;
        }
    }
    f.sha256 = util::sha256_file(f.path);
    std::ofstream(cache) << stamp << '\n' << f.sha256 << '\n';
    return f;
}

client::reply must(client::reply r, std::string_view what)
{
    if (!r.ok()) {
        const auto* m = r.header.if_contains("message");
        throw bench_error(std::string(what) + ": the server answered " + r.code() +
                          (m && m->is_string() ? ": " + std::string(m->get_string()) : std::string()));
    }
    return r;
}

/// Registers the bench user (an existing one is fine) and returns C logged-in connections.
std::vector<client::connection> logged_in(const options& o, int n)
{
    std::vector<client::connection> conns;
    try {
        client::connection first(o.host, o.port, std::chrono::seconds(30));
        const auto r = first.call({{"op", "register"}, {"user", o.user}, {"password", o.password}});
        if (!r.ok() && r.code() != "user_exists")
            must(r, "register " + o.user + " (add the user with `fxd user add`, or pass --user/--password)");
        for (int i = 0; i < n; ++i) {
            client::connection c(o.host, o.port, std::chrono::seconds(30));
            must(c.call({{"op", "login"}, {"user", o.user}, {"password", o.password}}), "login");
            conns.push_back(std::move(c));
        }
    } catch (const client::connection_error& e) {
        throw connect_error(e.what());
    }
    return conns;
}

// --- the set-up steps over TLS (blocking, on fxbench's own streams) -----------

constexpr double tls_setup_s = 30;

/// Reads one reply and returns its header. Reads only what the server sent
/// so far, so nothing past this reply is taken: set-up is strictly one
/// request, one reply.
boost::json::object tls_receive(stream& s)
{
    const auto deadline = now_ns() + static_cast<std::int64_t>(tls_setup_s * 1e9);
    std::string in;
    char buf[4096];
    while (true) {
        const auto extent = protocol::scan_reply(in);
        if (extent && in.size() >= extent->frame_bytes())
            return protocol::decode_reply(std::string_view(in).substr(0, static_cast<std::size_t>(extent->frame_bytes())))
                .header;
        std::size_t got = 0;
        const auto r = s.read(buf, sizeof buf, got);
        if (r == io::closed)
            throw bench_error("the server closed a connection during set-up");
        if (r == io::ok)
            in.append(buf, got);
        else
            s.wait(r, deadline);
    }
}

/// Sends a request and returns the reply's header.
boost::json::object tls_call(stream& s, boost::json::object header)
{
    s.write_all(client::make_frame(std::move(header)), now_ns() + static_cast<std::int64_t>(tls_setup_s * 1e9));
    return tls_receive(s);
}

std::string code_of(const boost::json::object& h)
{
    const auto* c = h.if_contains("code");
    return c && c->is_string() ? std::string(c->get_string()) : std::string();
}

bool is_ok(const boost::json::object& h)
{
    const auto* st = h.if_contains("status");
    return st && st->is_string() && st->get_string() == "ok";
}

/// Like must(): throws what the server said unless the reply is ok.
void must_ok(const boost::json::object& h, std::string_view what)
{
    if (is_ok(h))
        return;
    const auto* m = h.if_contains("message");
    throw bench_error(std::string(what) + ": the server answered " + code_of(h) +
                      (m && m->is_string() ? ": " + std::string(m->get_string()) : std::string()));
}

/// Sends a request's header announcing a body of size bytes.
void tls_send_header(stream& s, boost::json::object header, std::uint64_t size)
{
    header["size"] = size;
    std::string out;
    protocol::append_request(out, boost::json::serialize(header));
    s.write_all(out, now_ns() + static_cast<std::int64_t>(tls_setup_s * 1e9));
}

/// The TLS counterpart of logged_in(): registers the user (an existing one is
/// fine) and returns n logged-in TLS streams, handshakes done.
std::vector<stream> tls_logged_in(const options& o, int n, const tls_client& tls)
{
    const auto ep = resolve(o.host, o.port, SOCK_STREAM);
    auto streams = open_streams(ep, n + 1, tls_setup_s, &tls);
    const auto r = tls_call(streams[0], {{"op", "register"}, {"user", o.user}, {"password", o.password}});
    if (!is_ok(r) && code_of(r) != "user_exists")
        must_ok(r, "register " + o.user + " (add the user with `fxd user add`, or pass --user/--password)");
    streams.erase(streams.begin());
    for (auto& s : streams)
        must_ok(tls_call(s, {{"op", "login"}, {"user", o.user}, {"password", o.password}}), "login");
    return streams;
}

double self_cpu_seconds()
{
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct transfer_state {
    int fd = -1;
    stream* tls = nullptr;      // set: the transfer runs through TLS on this stream
    std::vector<char> chunk;    // TLS upload: file bytes read, not yet all encrypted
    std::size_t chunk_sent = 0;
    std::uint64_t offset = 0;   // upload: file bytes sent
    bool sending = false;
    protocol::reply_decoder reply; // until the header is complete; the body is only counted
    bool header_done = false;
    std::uint64_t body_left = 0;
    std::uint64_t body_size = 0; // the reply's size field
    bool done = false;
    std::int64_t sent_at = 0;
    std::int64_t done_at = 0;
};

struct measure {
    pid_t pid;
    double cpu0;
    double self0;
    std::int64_t t0;
};

/// The daemon's and fxbench's CPU time and the clock, read when a transfer starts.
measure start_measuring(const options& o)
{
    const pid_t pid = server_pid(o);
    return {pid, process_cpu_seconds(pid), self_cpu_seconds(), now_ns()};
}

void report_transfer(const options& o, report& r, const measure& m, std::uint64_t bytes,
                     const std::vector<transfer_state>& st, bool upload)
{
    const auto t1 = now_ns();
    const double cpu = process_cpu_seconds(m.pid) - m.cpu0;
    const double self = self_cpu_seconds() - m.self0;
    std::int64_t last_done = m.t0, last_sent = m.t0;
    for (const auto& s : st) {
        last_done = std::max(last_done, s.done_at);
        last_sent = std::max(last_sent, s.sent_at);
    }
    const double elapsed = seconds_between(m.t0, last_done ? last_done : t1);
    const double gb = static_cast<double>(bytes) / 1e9;
    r.count("connections", static_cast<std::uint64_t>(o.connections), "connections");
    r.count("size", o.size, "file bytes");
    r.count("bytes", bytes, "bytes moved");
    r.figure("seconds", elapsed, upload ? "seconds (to the last ok reply)" : "seconds", "s", 3);
    r.figure("mb_per_s", static_cast<double>(bytes) / 1e6 / elapsed, "throughput", "MB/s", 1);
    if (upload) {
        r.figure("send_mb_per_s", static_cast<double>(bytes) / 1e6 / seconds_between(m.t0, last_sent),
                 "throughput to the last byte sent", "MB/s", 1);
        r.figure("commit_ms", seconds_between(last_sent, last_done) * 1e3, "last byte to ok (sha check, fsync)", "ms",
                 1);
    }
    r.set("pid", m.pid);
    r.figure("server_cpu_s", cpu, "daemon CPU", "s", 2);
    r.figure("server_cpu_s_per_gb", gb > 0 ? cpu / gb : 0.0, "daemon CPU per GB", "s/GB", 3);
    r.figure("client_cpu_s_per_gb", gb > 0 ? self / gb : 0.0, "fxbench CPU per GB", "s/GB", 3);
}

std::string conn_name(const options& o, int i)
{
    return o.name + "-up-" + std::to_string(i);
}

void add_fd(int epfd, int fd, std::uint32_t events, std::size_t i)
{
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/// Reads what a transfer's socket holds; returns false when the peer closed.
bool read_reply_bytes(transfer_state& s, std::vector<char>& scratch)
{
    while (true) {
        ssize_t n = 0;
        if (s.tls) {
            std::size_t got = 0;
            // Reading on until OpenSSL wants the socket also empties what SSL_pending would report.
            // A read that wants the socket writable (a TLS 1.3 key update, which fxd does not
            // start) would wait on EPOLLIN here; --max-seconds bounds that.
            const auto r = s.tls->read(scratch.data(), scratch.size(), got);
            if (r == io::closed)
                return false;
            if (r != io::ok)
                return true;
            n = static_cast<ssize_t>(got);
        } else {
            n = ::recv(s.fd, scratch.data(), scratch.size(), 0);
            if (n == 0)
                return false;
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return true;
                if (errno == EINTR)
                    continue;
                throw bench_error(std::string("recv: ") + std::strerror(errno));
            }
        }
        if (!s.header_done) {
            s.reply.feed(std::span<const char>(scratch.data(), static_cast<std::size_t>(n)));
            if (s.reply.next() == protocol::reply_decoder::event::need_more)
                continue;
            require_ok(s.reply.header());
            s.header_done = true;
            s.body_size = s.reply.body_size();
            s.body_left = s.body_size - s.reply.release_body().size();
        } else {
            s.body_left -= std::min<std::uint64_t>(s.body_left, static_cast<std::uint64_t>(n));
        }
        if (s.body_left == 0) {
            s.done = true;
            s.done_at = now_ns();
            return true;
        }
    }
}

/// TLS upload: encrypts file bytes until the socket is full or the file is sent.
void send_tls_chunks(transfer_state& s, int file_fd, std::uint64_t size)
{
    constexpr std::size_t chunk = 256 * 1024;
    while (s.sending) {
        if (s.chunk_sent == s.chunk.size()) {
            s.chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - s.offset)));
            const ssize_t got = ::pread(file_fd, s.chunk.data(), s.chunk.size(), static_cast<off_t>(s.offset));
            if (got != static_cast<ssize_t>(s.chunk.size()))
                throw bench_error("cannot read the bench file");
            s.chunk_sent = 0;
        }
        std::size_t put = 0;
        // A write that wants the socket readable (a TLS key update) is retried on the next EPOLLOUT.
        if (s.tls->write(s.chunk.data() + s.chunk_sent, s.chunk.size() - s.chunk_sent, put) != io::ok)
            return;
        s.chunk_sent += put;
        s.offset += put;
        if (s.offset == size) {
            s.sending = false;
            s.sent_at = now_ns();
        }
    }
}

void drive(int epfd, std::vector<transfer_state>& st, int file_fd, std::uint64_t size, const options& o)
{
    std::vector<char> scratch(1 << 20);
    std::vector<epoll_event> events(64);
    const auto deadline = now_ns() + static_cast<std::int64_t>(o.max_seconds * 1e9);
    std::size_t left = st.size();
    while (left > 0) {
        if (now_ns() > deadline)
            throw bench_error("the transfer did not finish within --max-seconds");
        const int got = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), 100);
        for (int k = 0; k < got; ++k) {
            auto& s = st[events[static_cast<std::size_t>(k)].data.u64];
            const auto what = events[static_cast<std::size_t>(k)].events;
            if (s.done)
                continue;
            if ((what & EPOLLOUT) && s.sending && s.tls) {
                send_tls_chunks(s, file_fd, size);
                if (!s.sending) {
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u64 = events[static_cast<std::size_t>(k)].data.u64;
                    ::epoll_ctl(epfd, EPOLL_CTL_MOD, s.fd, &ev);
                }
            } else if ((what & EPOLLOUT) && s.sending) {
                off_t off = static_cast<off_t>(s.offset);
                const ssize_t n = ::sendfile(s.fd, file_fd, &off, std::min<std::uint64_t>(size - s.offset, 4u << 20));
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                    throw bench_error(std::string("sendfile: ") + std::strerror(errno));
                if (n > 0)
                    s.offset += static_cast<std::uint64_t>(n);
                if (s.offset == size) {
                    s.sending = false;
                    s.sent_at = now_ns();
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u64 = events[static_cast<std::size_t>(k)].data.u64;
                    ::epoll_ctl(epfd, EPOLL_CTL_MOD, s.fd, &ev);
                }
            }
            if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (!read_reply_bytes(s, scratch) && !s.done)
                    throw bench_error("the server closed a connection during the transfer");
                if (s.done) {
                    ::epoll_ctl(epfd, EPOLL_CTL_DEL, s.fd, nullptr);
                    --left;
                }
            }
        }
    }
}

void delete_files(const options& o, const std::vector<std::string>& names)
{
    client::connection c(o.host, o.port, std::chrono::seconds(30));
    must(c.call({{"op", "login"}, {"user", o.user}, {"password", o.password}}), "login");
    for (const auto& n : names)
        c.call({{"op", "delete"}, {"name", n}});
}

/// Sends the whole file as a body, blocking (the download's unmeasured upload over TLS).
void tls_send_file(stream& s, int file_fd, std::uint64_t size)
{
    std::vector<char> buf(256 * 1024);
    const auto deadline = now_ns() + 120'000'000'000LL;
    for (std::uint64_t off = 0; off < size;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
        if (::pread(file_fd, buf.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
            throw bench_error("cannot read the bench file");
        s.write_all(std::string_view(buf.data(), n), deadline);
        off += n;
    }
}

int run_upload_tls(const options& o, report& r)
{
    const auto file = prepare_file(o);
    const util::unique_fd file_fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file_fd)
        throw bench_error("cannot open " + file.path);
    const tls_client tls(o.cacert, o.host);
    auto conns = tls_logged_in(o, o.connections, tls);
    const measure m = start_measuring(o);
    const util::unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    std::vector<transfer_state> st(conns.size());
    std::vector<std::string> names;
    for (std::size_t i = 0; i < conns.size(); ++i) {
        names.push_back(conn_name(o, static_cast<int>(i)));
        tls_send_header(conns[i], {{"op", "upload"}, {"name", names.back()}, {"sha256", file.sha256}}, file.size);
        st[i].fd = conns[i].fd();
        st[i].tls = &conns[i];
        st[i].sending = file.size > 0;
        add_fd(epfd.get(), st[i].fd, EPOLLIN | (st[i].sending ? EPOLLOUT : 0u), i);
    }
    drive(epfd.get(), st, file_fd.get(), file.size, o);
    report_transfer(o, r, m, file.size * conns.size(), st, true);
    for (const auto& n : names)
        tls_call(conns[0], {{"op", "delete"}, {"name", n}});
    return 0;
}

int run_download_tls(const options& o, report& r)
{
    const auto file = prepare_file(o);
    const std::string name = o.name + "-down-" + std::to_string(file.size);
    const tls_client tls(o.cacert, o.host);
    auto conns = tls_logged_in(o, o.connections, tls);
    {
        // Put the file on the server once (kept for later runs).
        const auto h = tls_call(conns[0], {{"op", "stat"}, {"name", name}});
        if (!is_ok(h) && code_of(h) != "not_found")
            must_ok(h, "stat");
        const auto* sha = h.if_contains("sha256");
        const auto* exists = h.if_contains("exists");
        if (!(exists && exists->is_bool() && exists->get_bool() && sha && sha->is_string() &&
              sha->get_string() == file.sha256)) {
            const util::unique_fd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
            tls_send_header(conns[0], {{"op", "upload"}, {"name", name}, {"sha256", file.sha256}}, file.size);
            tls_send_file(conns[0], fd.get(), file.size);
            must_ok(tls_receive(conns[0]), "upload of the file to download");
        }
    }
    const measure m = start_measuring(o);
    const util::unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    std::vector<transfer_state> st(conns.size());
    const auto deadline = now_ns() + static_cast<std::int64_t>(tls_setup_s * 1e9);
    for (std::size_t i = 0; i < conns.size(); ++i) {
        conns[i].write_all(client::make_frame({{"op", "download"}, {"name", name}}), deadline);
        st[i].fd = conns[i].fd();
        st[i].tls = &conns[i];
        add_fd(epfd.get(), st[i].fd, EPOLLIN, i);
    }
    drive(epfd.get(), st, -1, 0, o);
    for (const auto& s : st)
        if (s.body_size != file.size)
            throw bench_error("the download's size is " + std::to_string(s.body_size) + ", not " +
                              std::to_string(file.size));
    report_transfer(o, r, m, file.size * conns.size(), st, false);
    return 0;
}

} // namespace

int run_upload(const options& o, report& r)
{
    if (o.tls)
        return run_upload_tls(o, r);
    const auto file = prepare_file(o);
    const util::unique_fd file_fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file_fd)
        throw bench_error("cannot open " + file.path);
    auto conns = logged_in(o, o.connections);
    const measure m = start_measuring(o);
    const util::unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    std::vector<transfer_state> st(conns.size());
    std::vector<std::string> names;
    for (std::size_t i = 0; i < conns.size(); ++i) {
        names.push_back(conn_name(o, static_cast<int>(i)));
        conns[i].send_header({{"op", "upload"}, {"name", names.back()}, {"sha256", file.sha256}}, file.size);
        st[i].fd = conns[i].native_handle();
        st[i].sending = file.size > 0;
        set_nonblocking(st[i].fd);
        add_fd(epfd.get(), st[i].fd, EPOLLIN | (st[i].sending ? EPOLLOUT : 0u), i);
    }
    drive(epfd.get(), st, file_fd.get(), file.size, o);
    report_transfer(o, r, m, file.size * conns.size(), st, true);
    conns.clear();
    delete_files(o, names);
    return 0;
}

int run_download(const options& o, report& r)
{
    if (o.tls)
        return run_download_tls(o, r);
    const auto file = prepare_file(o);
    const std::string name = o.name + "-down-" + std::to_string(file.size);
    auto conns = logged_in(o, o.connections);
    {
        // Put the file on the server once (kept for later runs).
        const auto st = conns[0].call({{"op", "stat"}, {"name", name}});
        if (!st.ok() && st.code() != "not_found")
            must(st, "stat");
        const auto* sha = st.header.if_contains("sha256");
        const auto* exists = st.header.if_contains("exists");
        if (!(exists && exists->is_bool() && exists->get_bool() && sha && sha->is_string() &&
              sha->get_string() == file.sha256)) {
            const util::unique_fd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
            conns[0].send_header({{"op", "upload"}, {"name", name}, {"sha256", file.sha256}}, file.size);
            conns[0].send_file(fd.get(), 0, file.size);
            const auto old = conns[0].timeout();
            conns[0].set_timeout(std::chrono::seconds(120));
            must(conns[0].receive(), "upload of the file to download");
            conns[0].set_timeout(old);
        }
    }
    const measure m = start_measuring(o);
    const util::unique_fd epfd(::epoll_create1(EPOLL_CLOEXEC));
    std::vector<transfer_state> st(conns.size());
    for (std::size_t i = 0; i < conns.size(); ++i) {
        conns[i].send({{"op", "download"}, {"name", name}});
        st[i].fd = conns[i].native_handle();
        set_nonblocking(st[i].fd);
        add_fd(epfd.get(), st[i].fd, EPOLLIN, i);
    }
    drive(epfd.get(), st, -1, 0, o);
    for (const auto& s : st)
        if (s.body_size != file.size)
            throw bench_error("the download's size is " + std::to_string(s.body_size) + ", not " +
                              std::to_string(file.size));
    report_transfer(o, r, m, file.size * conns.size(), st, false);
    return 0;
}

} // namespace fxd::bench
