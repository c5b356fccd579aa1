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

// Issue 14, finding 3: the quota held only against uploads one at a time.
BOOST_AUTO_TEST_CASE(concurrent_uploads_cannot_pass_the_quota_together, *utf::timeout(120))
{
    const std::uint64_t quota = MiB;
    const std::uint64_t each = 600 * 1024;
    daemon_process fxd(fast({"--set", "storage.quota_bytes=" + std::to_string(quota)}));
    register_user(fxd.tcp_port(), "alice");
    std::vector<connection> conns;
    for (int i = 0; i < 4; ++i)
        conns.push_back(login_session(fxd.tcp_port(), "alice"));
    // Every header before any body: no upload can finish before all four are
    // asked for, so only a reservation made at admission can stop them.
    for (std::size_t i = 0; i < conns.size(); ++i)
        conns[i].send_raw(upload_prefix("c" + std::to_string(i) + ".bin", each, std::nullopt, std::nullopt));
    for (std::size_t i = 0; i < conns.size(); ++i)
        send_pattern(conns[i], pattern{600 + i}, 0, each);
    int ok = 0;
    int refused = 0;
    for (auto& conn : conns) {
        const reply r = conn.receive();
        if (r.header.at("status") == "ok")
            ++ok;
        else if (r.header.contains("code") && r.header.at("code") == "quota_exceeded")
            ++refused;
    }
    const auto stored = counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored");
    BOOST_TEST_MESSAGE("4 concurrent uploads of 600 KiB under a 1 MiB quota: " << ok << " stored, " << stored
                                                                               << " bytes held");
    BOOST_TEST(ok == 1);
    BOOST_TEST(refused == 3);
    BOOST_TEST(stored <= quota);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    for (auto& conn : conns)
        check_usable(conn); // each body was read and dropped
}

BOOST_AUTO_TEST_CASE(bytes_held_by_partial_uploads_count_against_the_quota, *utf::timeout(120))
{
    const std::uint64_t quota = MiB;
    daemon_process fxd(fast({"--set", "storage.quota_bytes=" + std::to_string(quota)}));
    register_user(fxd.tcp_port(), "alice");
    const std::string whole = pattern{610}.bytes(0, 900 * 1024);
    interrupt_upload(fxd, "alice", "part.bin", whole, 600 * 1024, std::nullopt);
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 1; }));

    auto conn = login_session(fxd.tcp_port(), "alice");
    const std::string other = pattern{611}.bytes(0, 600 * 1024);
    check_error(upload(conn, "other.bin", other), "upload", "quota_exceeded");
    check_error(stat_file(conn, "other.bin"), "stat", "not_found");

    // The partial's own resume is not counted twice, and then the file holds the room.
    check_upload_ok(upload_resume(conn, "part.bin", whole, 600 * 1024), "part.bin", whole.size(), sha256_of(whole));
    check_error(upload(conn, "more.bin", pattern{612}.bytes(0, 200 * 1024)), "upload", "quota_exceeded");
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == whole.size());
}

BOOST_AUTO_TEST_CASE(max_files_per_user_caps_files_plus_partials, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "storage.max_files_per_user=3"}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    check_upload_ok(upload(conn, "a.bin", "aaa"), "a.bin", 3, sha256_of("aaa"));
    check_upload_ok(upload(conn, "b.bin", "bbb"), "b.bin", 3, sha256_of("bbb"));
    const std::string c = pattern{620}.bytes(0, 1000);
    interrupt_upload(fxd, "alice", "c.bin", c, 500, std::nullopt);
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 1; }));

    const reply refused = upload(conn, "d.bin", "ddd");
    check_error(refused, "upload", "quota_exceeded");
    BOOST_TEST(refused.header.at("message").as_string().find("max_files_per_user") != std::string::npos);
    check_error(stat_file(conn, "d.bin"), "stat", "not_found");

    // Replacing a name or finishing its partial adds no entry.
    check_upload_ok(upload(conn, "a.bin", "AAAA"), "a.bin", 4, sha256_of("AAAA"));
    check_upload_ok(upload_resume(conn, "c.bin", c, 500), "c.bin", c.size(), sha256_of(c));
    check_ok(delete_file(conn, "b.bin"), "delete");
    check_upload_ok(upload(conn, "d.bin", "ddd"), "d.bin", 3, sha256_of("ddd"));
    check_error(upload(conn, "e.bin", "eee"), "upload", "quota_exceeded");
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
