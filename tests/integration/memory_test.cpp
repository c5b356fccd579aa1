// Issue 14, finding 6, against the real daemon: clients that pipeline large
// echoes and read nothing must not take the daemon's memory past
// limits.max_buffered_bytes (plus what each connection's buffers keep), and a
// client that behaves is still served meanwhile.

#include "daemon_process.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

using fxd::client::connection;
using fxd::client::make_frame;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

/// Under AddressSanitizer the daemon's resident size says nothing about what it
/// holds (freed memory sits in ASan's quarantine, plus shadow memory).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool resident_size_is_meaningful = false;
#else
constexpr bool resident_size_is_meaningful = true;
#endif

constexpr std::uint64_t mib = 1024 * 1024;

/// The daemon's resident memory now, from /proc (VmRSS, in bytes).
std::uint64_t resident_bytes(int pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    while (status >> key) {
        if (key == "VmRSS:") {
            std::uint64_t kib = 0;
            status >> kib;
            return kib * 1024;
        }
        status.ignore(4096, '\n');
    }
    BOOST_FAIL("no VmRSS in /proc/" << pid << "/status");
    return 0;
}

/// One client that sends echo frames as fast as the daemon takes them and never reads a reply.
struct hog {
    std::unique_ptr<connection> conn;
    std::size_t frames_left;
    std::size_t offset = 0; ///< into the frame being sent
    bool cut = false;       ///< the daemon closed or reset it

    bool active() const noexcept { return !cut && frames_left > 0; }

    /// Sends what the socket takes now; true when any byte went out.
    bool push(const std::string& frame)
    {
        bool progressed = false;
        while (active()) {
            const ssize_t n = ::send(conn->native_handle(), frame.data() + offset, frame.size() - offset,
                                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                progressed = true;
                offset += static_cast<std::size_t>(n);
                if (offset == frame.size()) {
                    offset = 0;
                    --frames_left;
                }
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            cut = true; // EPIPE or ECONNRESET: the daemon cut it
        }
        return progressed;
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(clients_pipelining_echoes_and_reading_nothing_stay_within_max_buffered_bytes,
                     *utf::timeout(180))
{
    // 20 clients, each pipelining three 1 MiB echoes and reading nothing (just
    // below max_pending_reply_bytes, 4 MiB, so no one is cut for it): without
    // a global bound each pins its replies plus its gathered body, about
    // 80 MiB in all.
    constexpr std::uint64_t bound = 8 * mib;
    constexpr std::uint64_t echo_bytes = mib;
    constexpr std::size_t clients = 20;
    constexpr std::size_t frames_each = 3;
    daemon_process daemon({"--set", "limits.max_buffered_bytes=" + std::to_string(bound), "--set",
                           "limits.max_echo_bytes=" + std::to_string(echo_bytes), "--set", "timeouts.body_s=600"});
    {
        connection warm(localhost, daemon.tcp_port()); // the first connection's one-off allocations
        check_usable(warm);
    }
    const auto baseline = resident_bytes(daemon.pid());

    const std::string frame = make_frame({{"op", "echo"}}, std::string(echo_bytes, 'm'));
    std::vector<hog> hogs;
    for (std::size_t i = 0; i < clients; ++i) {
        auto conn = std::make_unique<connection>(localhost, daemon.tcp_port());
        // A small receive window: the replies pile up in the daemon, not in this kernel.
        const int window = 64 * 1024;
        ::setsockopt(conn->native_handle(), SOL_SOCKET, SO_RCVBUF, &window, sizeof window);
        hogs.push_back(hog{std::move(conn), frames_each});
    }

    // Push until every client is cut, done, or stalled (the daemon stopped
    // reading it) for a while, then until the daemon has seen every echo it
    // will read; the peak resident size is what is checked.
    std::uint64_t peak = baseline;
    auto last_progress = std::chrono::steady_clock::now();
    const auto give_up = last_progress + 90s;
    for (;;) {
        bool any_active = false;
        for (auto& h : hogs) {
            if (h.push(frame))
                last_progress = std::chrono::steady_clock::now();
            any_active = any_active || h.active();
        }
        peak = std::max(peak, resident_bytes(daemon.pid()));
        const auto now = std::chrono::steady_clock::now();
        if (!any_active || now - last_progress > 3s || now > give_up)
            break;
        std::vector<pollfd> fds;
        for (const auto& h : hogs)
            if (h.active())
                fds.push_back({h.conn->native_handle(), POLLOUT, 0});
        ::poll(fds.data(), fds.size(), 50);
    }
    eventually(
        [&] {
            peak = std::max(peak, resident_bytes(daemon.pid()));
            return counter(stats_snapshot(daemon.tcp_port()), "requests.echo") >= clients * frames_each;
        },
        5s);

    // A client that reads its replies is still served, even a large echo.
    connection polite(localhost, daemon.tcp_port());
    const std::string body(echo_bytes, 'p');
    const auto r = polite.call({{"op", "echo"}, {"id", 7}}, body);
    BOOST_TEST_REQUIRE(r.ok(), boost::json::serialize(r.header));
    BOOST_TEST(r.body == upper_ascii(body));
    check_usable(polite);
    peak = std::max(peak, resident_bytes(daemon.pid()));

    // The bound: the budget itself (buffer capacities, not sizes), as much
    // again for allocator slack, and a fixed margin. Without the bound the
    // growth is about 70 MiB.
    const std::uint64_t allowed = 2 * bound + 16 * mib;
    BOOST_TEST_MESSAGE("resident: baseline " << baseline / mib << " MiB, peak " << peak / mib << " MiB, growth allowed "
                                             << allowed / mib << " MiB");
    if constexpr (resident_size_is_meaningful)
        BOOST_TEST(peak - baseline < allowed);
    else
        BOOST_TEST_MESSAGE("AddressSanitizer build: its quarantine keeps freed memory resident, so the RSS bound is not checked");

    const auto stats = stats_snapshot(daemon.tcp_port());
    const auto cut = counter(stats, "connections.cut_memory");
    const auto busy = counter(stats, "errors.by_code.busy");
    BOOST_TEST_MESSAGE("cut for memory: " << cut << ", refused busy: " << busy);
    BOOST_TEST(cut + busy > 0u);
}

BOOST_AUTO_TEST_CASE(the_smallest_bound_allowed_still_serves_the_largest_echo, *utf::timeout(60))
{
    // limits.max_buffered_bytes may be as small as 2 * max_echo_bytes + 65536:
    // a lone client's largest echo (its body and its reply) still fits.
    daemon_process daemon({"--set", "limits.max_buffered_bytes=" + std::to_string(2 * mib + 65536), "--set",
                           "limits.max_echo_bytes=" + std::to_string(mib)});
    connection alone(localhost, daemon.tcp_port());
    const std::string body(mib, 'a');
    for (int id = 1; id <= 3; ++id) {
        const auto r = alone.call({{"op", "echo"}, {"id", id}}, body);
        BOOST_TEST_REQUIRE(r.ok(), "echo " << id << ": " << boost::json::serialize(r.header));
        BOOST_TEST(r.body.size() == body.size());
    }
    const auto stats = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(stats, "connections.cut_memory") == 0u);
    BOOST_TEST(counter(stats, "errors.by_code.busy") == 0u);
}
