#include "common.hpp"

#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unordered_map>

namespace fxd::bench {

endpoint resolve(const std::string& host, std::uint16_t port, int socktype)
{
    try {
        return util::resolve(host, port, socktype).front();
    } catch (const util::resolve_error& e) {
        throw connect_error(e.what());
    }
}

void set_nonblocking(int fd)
{
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void set_nodelay(int fd)
{
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::vector<util::unique_fd> connect_many(const endpoint& ep, int n, double timeout_s, int parallel)
{
    std::vector<util::unique_fd> done;
    done.reserve(static_cast<std::size_t>(n));
    std::unordered_map<int, util::unique_fd> connecting; // by descriptor, as epoll reports them
    const util::unique_fd ep_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep_fd)
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    const auto deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
    int started = 0;
    std::vector<epoll_event> events(256);
    while (static_cast<int>(done.size()) < n) {
        while (static_cast<int>(connecting.size()) < parallel && started < n) {
            util::unique_fd fd(::socket(ep.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
            if (!fd)
                throw connect_error(std::string("socket: ") + std::strerror(errno) + " after " +
                                    std::to_string(done.size()) + " connections (raise the open-file limit)");
            if (::connect(fd.get(), ep.address(), ep.length) != 0 && errno != EINPROGRESS)
                throw connect_error(std::string("connect: ") + std::strerror(errno));
            epoll_event ev{};
            ev.events = EPOLLOUT;
            ev.data.fd = fd.get();
            ::epoll_ctl(ep_fd.get(), EPOLL_CTL_ADD, fd.get(), &ev);
            const int key = fd.get();
            connecting.emplace(key, std::move(fd));
            ++started;
        }
        const auto left_ms = (deadline - now_ns()) / 1'000'000;
        if (left_ms <= 0)
            throw connect_error("timed out connecting: " + std::to_string(done.size()) + " of " + std::to_string(n) +
                                " connected");
        const int got = ::epoll_wait(ep_fd.get(), events.data(), static_cast<int>(events.size()),
                                     static_cast<int>(std::min<std::int64_t>(left_ms, 100)));
        for (int i = 0; i < got; ++i) {
            auto fd = std::move(connecting.extract(events[static_cast<std::size_t>(i)].data.fd).mapped());
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            ::epoll_ctl(ep_fd.get(), EPOLL_CTL_DEL, fd.get(), nullptr);
            if (err != 0)
                throw connect_error(std::string("connect: ") + std::strerror(err) + " after " +
                                    std::to_string(done.size()) + " connections");
            set_nodelay(fd.get());
            done.push_back(std::move(fd));
        }
    }
    return done;
}

pid_t find_listener_pid(std::uint16_t port)
{
    const std::string cmd = "ss -ltnpH 'sport = :" + std::to_string(port) + "' 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p)
        return 0;
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p))
        out += buf;
    ::pclose(p);
    const auto at = out.find("pid=");
    if (at == std::string::npos)
        return 0;
    return static_cast<pid_t>(std::strtol(out.c_str() + at + 4, nullptr, 10));
}

double process_cpu_seconds(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (all.empty())
        throw bench_error("cannot read /proc/" + std::to_string(pid) + "/stat");
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    std::istringstream rest(all.substr(all.rfind(')') + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            utime = std::stoull(field);
        if (i == 15)
            stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::uint64_t process_rss_bytes(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stoull(line.substr(6)) * 1024;
    throw bench_error("cannot read VmRSS of pid " + std::to_string(pid));
}

pid_t server_pid(const options& o)
{
    if (o.pid > 0)
        return o.pid;
    const pid_t pid = find_listener_pid(o.port);
    if (pid <= 0)
        throw bench_error("cannot find the pid listening on port " + std::to_string(o.port) + "; pass --pid");
    return pid;
}

report::report(std::string_view mode)
{
    json_["mode"] = mode;
}

void report::figure(std::string_view key, double value, std::string_view label, std::string_view unit, int precision)
{
    json_[key] = value;
    std::ostringstream s;
    s << std::fixed << std::setprecision(precision) << value;
    if (!unit.empty())
        s << ' ' << unit;
    lines_.emplace_back(std::string(label), s.str());
}

void report::count(std::string_view key, std::uint64_t value, std::string_view label)
{
    json_[key] = value;
    lines_.emplace_back(std::string(label), std::to_string(value));
}

void report::latency(const histogram& h)
{
    boost::json::object l;
    l["p50"] = h.quantile(0.50) / 1e3;
    l["p99"] = h.quantile(0.99) / 1e3;
    l["p999"] = h.quantile(0.999) / 1e3;
    l["mean"] = h.mean() / 1e3;
    l["max"] = static_cast<double>(h.max()) / 1e3;
    json_["latency_us"] = std::move(l);
    std::ostringstream s;
    s << std::fixed << std::setprecision(1) << "p50 " << h.quantile(0.50) / 1e3 << "  p99 " << h.quantile(0.99) / 1e3
      << "  p99.9 " << h.quantile(0.999) / 1e3 << "  mean " << h.mean() / 1e3 << "  max "
      << static_cast<double>(h.max()) / 1e3 << " us";
    lines_.emplace_back("latency", s.str());
}

void report::print(bool json) const
{
    if (json) {
        std::cout << boost::json::serialize(json_) << '\n';
        return;
    }
    std::size_t width = 0;
    for (const auto& [label, value] : lines_)
        width = std::max(width, label.size());
    for (const auto& [label, value] : lines_)
        std::cout << std::left << std::setw(static_cast<int>(width) + 2) << (label + ":") << value << '\n';
}

} // namespace fxd::bench
