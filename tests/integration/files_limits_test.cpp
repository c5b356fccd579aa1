// Upload limits against the real daemon: the quota decided before any byte is
// stored, and a size above max_upload_bytes.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using fxd::client::connection;
using fxd::client::reply;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

// ---- Limits -------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_limits)

BOOST_AUTO_TEST_CASE(quota_exceeded_is_decided_before_any_byte_is_stored, *utf::timeout(120))
{
    const std::uint64_t quota = MiB;
    daemon_process fxd(fast({"--set", "storage.quota_bytes=" + std::to_string(quota)}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    const auto folder = user_folder(fxd, "alice");
    const std::string one = pattern{501}.bytes(0, 600000);
    const std::string two = pattern{502}.bytes(0, 500000);
    check_upload_ok(upload(conn, "one.bin", one), "one.bin", one.size(), sha256_of(one));

    check_error(upload(conn, "two.bin", two), "upload", "quota_exceeded");
    check_usable(conn);
    check_error(stat_file(conn, "two.bin"), "stat", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"one.bin"});
    BOOST_TEST(blobs_in(folder).empty());
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == one.size());

    // Exactly up to the quota is allowed; one byte more is not.
    const std::string rest = pattern{503}.bytes(0, quota - one.size());
    check_upload_ok(upload(conn, "rest.bin", rest), "rest.bin", rest.size(), sha256_of(rest));
    check_error(upload(conn, "byte.bin", "x"), "upload", "quota_exceeded");
    check_error(stat_file(conn, "byte.bin"), "stat", "not_found");

    // A declared size beyond the discard limit: the reply, then the connection closes.
    {
        connection big = login_session(fxd.tcp_port(), "alice");
        big.send_raw(upload_prefix("huge.bin", 64 * MiB, std::nullopt, std::nullopt));
        check_error(big.receive(), "upload", "quota_exceeded");
        BOOST_TEST(big.closed_by_peer());
    }
    check_error(stat_file(conn, "huge.bin"), "stat", "not_found");
    BOOST_TEST(blobs_in(folder).empty());

    // Deleting frees room.
    check_ok(delete_file(conn, "one.bin"), "delete");
    check_upload_ok(upload(conn, "two.bin", two), "two.bin", two.size(), sha256_of(two));

    // The quota is per user.
    auto bob = user_session(fxd.tcp_port(), "bob");
    const std::string full = pattern{504}.bytes(0, quota);
    check_upload_ok(upload(bob, "full.bin", full), "full.bin", full.size(), sha256_of(full));
    check_error(upload(bob, "more.bin", "y"), "upload", "quota_exceeded");
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == rest.size() + two.size() + full.size());
}

BOOST_AUTO_TEST_CASE(a_size_above_max_upload_bytes_is_body_too_large, *utf::timeout(60))
{
    daemon_process fxd(fast({"--set", "limits.max_upload_bytes=1000"}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    check_error(upload(conn, "big.bin", std::string(1001, 'b')), "upload", "body_too_large");
    check_usable(conn);
    check_error(stat_file(conn, "big.bin"), "stat", "not_found");
    check_upload_ok(upload(conn, "fits.bin", std::string(1000, 'f')), "fits.bin", 1000, sha256_of(std::string(1000, 'f')));
    // A body bigger than limits.max_discard_bytes: the reply, then the connection closes.
    connection big = login_session(fxd.tcp_port(), "alice");
    big.send_raw(upload_prefix("big.bin", 32 * MiB, std::nullopt, std::nullopt));
    check_error(big.receive(), "upload", "body_too_large");
    BOOST_TEST(big.closed_by_peer());
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"fits.bin"});
}

BOOST_AUTO_TEST_SUITE_END()
