// Issue 14, finding 7, against the real daemon: the per-address limit over
// IPv6, the warning when started as root, and the switch to process.user.

#include "daemon_process.hpp"
#include "files.hpp"
#include "temp_dir.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using fxd::client::connection;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;
namespace fs = std::filesystem;

namespace {

boost::test_tools::assertion_result running_as_root(utf::test_unit_id)
{
    boost::test_tools::assertion_result result(::geteuid() == 0);
    result.message() << "needs root (the warning and the switch happen only then)";
    return result;
}

boost::test_tools::assertion_result have_ipv6_loopback(utf::test_unit_id)
{
    // The loopback interface lists ::1 here when IPv6 is on.
    std::ifstream interfaces("/proc/net/if_inet6");
    const std::string text((std::istreambuf_iterator<char>(interfaces)), std::istreambuf_iterator<char>());
    boost::test_tools::assertion_result result(text.find("00000000000000000000000000000001") != std::string::npos);
    result.message() << "needs ::1";
    return result;
}

/// The "Uid:" line of /proc/PID/status: real, effective, saved, filesystem.
std::string uid_line(int pid)
{
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("Uid:"))
            return line;
    return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(hardening_small)

BOOST_AUTO_TEST_CASE(ipv6_loopback_connections_count_against_the_per_address_limit,
                     *utf::timeout(60) * utf::precondition(have_ipv6_loopback))
{
    daemon_process fxd({"--set", "tcp.bind=::1", "--set", "limits.max_connections_per_address=1"});
    connection first("::1", fxd.tcp_port());
    check_usable(first);
    connection second("::1", fxd.tcp_port());
    check_error(second.receive(), "busy");
}

BOOST_AUTO_TEST_CASE(started_as_root_without_process_user_it_warns,
                     *utf::timeout(60) * utf::precondition(running_as_root))
{
    daemon_process fxd;
    BOOST_TEST(fxd.log().find("running as root") != std::string::npos, fxd.log());
}

BOOST_AUTO_TEST_CASE(process_user_drops_root_after_binding_and_storage_still_works,
                     *utf::timeout(120) * utf::precondition(running_as_root))
{
    // The folder above storage must let the unprivileged user through, as it
    // would have to on a real machine.
    temp_dir top;
    fs::permissions(top.path(), fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    daemon_process fxd(fast({"--set", "process.user=nobody"}), top.path() / "storage");

    BOOST_TEST(uid_line(fxd.pid()) == "Uid:\t65534\t65534\t65534\t65534");
    BOOST_TEST(fxd.log().find("running as root") == std::string::npos, fxd.log());
    BOOST_TEST(fxd.log().find("switched to user nobody") != std::string::npos, fxd.log());

    // Accounts and files still work as that user: the storage was handed over.
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{71}.bytes(0, 100000);
    check_upload_ok(upload(conn, "after-drop.bin", data), "after-drop.bin", data.size(), sha256_of(data));
    struct stat st {};
    BOOST_REQUIRE(::stat((user_folder(fxd, "alice") / "after-drop.bin").c_str(), &st) == 0);
    BOOST_TEST(st.st_uid == 65534u);
}

BOOST_AUTO_TEST_CASE(a_process_user_it_cannot_switch_to_refuses_the_start, *utf::timeout(60))
{
    temp_dir top;
    const auto r = run_fxd({"--set", "storage.dir=" + (top.path() / "storage").string(), "--set", "tcp.port=0",
                            "--set", "udp.port=0", "--set", "admin.port=0", "--set", "process.user=no-such-fxd-user"});
    BOOST_TEST(r.status == 1, r);
    BOOST_TEST(r.err.find("process.user 'no-such-fxd-user': no such user") != std::string::npos, r);
}

BOOST_AUTO_TEST_SUITE_END()
