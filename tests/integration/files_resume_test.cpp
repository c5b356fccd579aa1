// Interrupted uploads against the real daemon: kept as a partial, resumed
// (once or in steps; a large one in small pieces, its partial hashed as held
// while the rest arrives), a replacement cut short keeps the old version, a
// fresh upload or a delete over a partial, partial_ttl_s, and bad_offset.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <cstdint>
#include <optional>
#include <string>

using fxd::client::reply;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace utf = boost::unit_test;

// ---- Interrupted uploads, offsets ----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_resume)

BOOST_AUTO_TEST_CASE(an_interrupted_upload_is_kept_as_a_partial_and_resumes_to_the_whole_file, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::uint64_t total = 3 * MiB + 5;
    const std::uint64_t cut = MiB + 3;
    const pattern p{401};
    const std::string whole = p.bytes(0, total);
    const std::string sha = sha256_of(whole);

    interrupt_upload(fxd, "alice", "res.bin", whole, cut, sha);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "res.bin"), "partial") == static_cast<std::int64_t>(cut); }));
    const auto st = stat_file(conn, "res.bin");
    BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
    BOOST_TEST(st.ok());
    BOOST_TEST(flag(st, "exists") == 0);
    BOOST_TEST(!st.header.contains("sha256"));
    BOOST_TEST(!st.header.contains("total"));
    check_error(download(conn, "res.bin"), "download", "not_found");
    BOOST_TEST(list_names(conn).empty());
    // stats' totals follow the catalog a moment later.
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 1; }));

    const auto r = upload_resume(conn, "res.bin", whole, cut, sha);
    check_upload_ok(r, "res.bin", total, sha);
    const auto d = download(conn, "res.bin");
    BOOST_TEST(same_bytes(d.body, whole));
    BOOST_TEST(str(d, "sha256") == sha);
    const auto after = stat_file(conn, "res.bin");
    BOOST_TEST(flag(after, "exists") == 1);
    BOOST_TEST(num(after, "partial") == 0);
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 0);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
}

BOOST_AUTO_TEST_CASE(an_upload_interrupted_twice_resumes_in_steps_and_hashes_the_whole_file, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string whole = pattern{402}.bytes(0, 2 * MiB + 77);
    const std::uint64_t first = 300001;
    const std::uint64_t second = MiB + 12345;

    interrupt_upload(fxd, "alice", "steps.bin", whole, first, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "steps.bin"), "partial") == static_cast<std::int64_t>(first); }));
    {
        // The second attempt resumes, then is cut again.
        auto c2 = login_session(fxd.tcp_port(), "alice");
        c2.send_raw(upload_prefix("steps.bin", whole.size(), first, std::nullopt) +
                    whole.substr(first, second - first));
        BOOST_TEST(eventually([&] { return largest_blob(user_folder(fxd, "alice")) == second; }));
    }
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "steps.bin"), "partial") == static_cast<std::int64_t>(second); }));
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).size() == 1u);
    // No sha256 sent: the reply's still covers every byte, not just the last piece.
    const auto r = upload_resume(conn, "steps.bin", whole, second, std::nullopt);
    check_upload_ok(r, "steps.bin", whole.size(), sha256_of(whole));
    BOOST_TEST(same_bytes(download(conn, "steps.bin").body, whole));
}

BOOST_AUTO_TEST_CASE(a_large_resumed_upload_hashes_the_partials_bytes_and_the_rest, *utf::timeout(300))
{
    // The partial's bytes are read back and hashed while the rest arrives (in
    // many small reads); the digest covers the whole file either way.
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice", 120s);
    const std::uint64_t total = 36 * MiB + 999;
    const std::uint64_t cut = 21 * MiB + 13;
    const pattern p{403};
    const std::string whole = p.bytes(0, total);
    const std::string sha = sha256_of(whole);
    const auto folder = user_folder(fxd, "alice");

    for (const bool announced : {true, false}) {
        const std::string name = announced ? "with.bin" : "without.bin";
        const std::optional<std::string> given = announced ? std::optional(sha) : std::nullopt;
        interrupt_upload(fxd, "alice", name, whole, cut, given);
        BOOST_TEST(eventually([&] { return num(stat_file(conn, name), "partial") == static_cast<std::int64_t>(cut); }));
        conn.send_raw(upload_prefix(name, total, cut, given));
        send_pattern_in_small_pieces(conn, p, cut, total);
        check_upload_ok(conn.receive(), name, total, sha);
        const auto d = download_streamed(conn, name);
        BOOST_TEST(d.bytes == total, name);
        BOOST_TEST(d.sha == sha, name);
    }

    // The digest is of the partial's bytes as held, not of what was sent
    // first: one byte changed on disk while the partial waits is seen.
    std::string changed = whole;
    const std::size_t at = MiB + 7;
    changed[at] = static_cast<char>(changed[at] ^ 1);
    const auto hold_changed_partial = [&] {
        interrupt_upload(fxd, "alice", "changed.bin", whole, cut, std::nullopt);
        BOOST_TEST(eventually([&] { return num(stat_file(conn, "changed.bin"), "partial") == static_cast<std::int64_t>(cut); }));
        const auto blobs = blobs_in(folder);
        BOOST_REQUIRE_EQUAL(blobs.size(), 1U);
        std::fstream held(blobs.front(), std::ios::in | std::ios::out | std::ios::binary);
        held.seekp(static_cast<std::streamoff>(at));
        held.put(changed[at]);
    };
    hold_changed_partial();
    check_upload_ok(upload_resume(conn, "changed.bin", whole, cut), "changed.bin", total, sha256_of(changed));
    BOOST_TEST(delete_file(conn, "changed.bin").ok());
    hold_changed_partial();
    check_error(upload_resume(conn, "changed.bin", whole, cut, sha), "upload", "checksum_mismatch");
}

BOOST_AUTO_TEST_CASE(an_interrupted_replacement_keeps_the_old_version_and_reports_the_partial, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v1 = pattern{403}.bytes(0, 123456);
    const std::string v2 = pattern{404}.bytes(0, 2 * MiB);
    check_upload_ok(upload(conn, "doc.bin", v1), "doc.bin", v1.size(), sha256_of(v1));

    interrupt_upload(fxd, "alice", "doc.bin", v2, 777777, sha256_of(v2));
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "doc.bin"), "partial") == 777777; }));
    const auto st = stat_file(conn, "doc.bin");
    BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
    BOOST_TEST(flag(st, "exists") == 1);
    BOOST_TEST(num(st, "total") == static_cast<std::int64_t>(v1.size()));
    BOOST_TEST(str(st, "sha256") == sha256_of(v1));
    BOOST_TEST(same_bytes(download(conn, "doc.bin").body, v1));
    BOOST_TEST(list_sizes(conn)["doc.bin"] == v1.size());

    check_upload_ok(upload_resume(conn, "doc.bin", v2, 777777, sha256_of(v2)), "doc.bin", v2.size(), sha256_of(v2));
    BOOST_TEST(same_bytes(download(conn, "doc.bin").body, v2));
    BOOST_TEST(num(stat_file(conn, "doc.bin"), "partial") == 0);
}

BOOST_AUTO_TEST_CASE(a_fresh_upload_over_a_partial_replaces_it, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v = pattern{405}.bytes(0, 500000);
    interrupt_upload(fxd, "alice", "p.bin", v, 200000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p.bin"), "partial") == 200000; }));
    const std::string other = pattern{406}.bytes(0, 1000);
    check_upload_ok(upload(conn, "p.bin", other), "p.bin", other.size(), sha256_of(other));
    BOOST_TEST(same_bytes(download(conn, "p.bin").body, other));
    BOOST_TEST(num(stat_file(conn, "p.bin"), "partial") == 0);
    BOOST_TEST(eventually([&] { return blobs_in(user_folder(fxd, "alice")).empty(); }));
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 0);
}

BOOST_AUTO_TEST_CASE(delete_of_a_name_with_only_a_partial_removes_the_partial, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v = pattern{407}.bytes(0, 300000);
    interrupt_upload(fxd, "alice", "p.bin", v, 100000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p.bin"), "partial") == 100000; }));
    check_ok(delete_file(conn, "p.bin"), "delete");
    check_error(stat_file(conn, "p.bin"), "stat", "not_found");
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    const auto r = upload_resume(conn, "p.bin", v, 100000, std::nullopt);
    check_error(r, "upload", "bad_offset");
    BOOST_TEST(num(r, "partial") == 0);
    check_error(delete_file(conn, "p.bin"), "delete", "not_found");
}

BOOST_AUTO_TEST_CASE(partials_older_than_partial_ttl_s_are_removed, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "storage.partial_ttl_s=3"}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string whole = pattern{410}.bytes(0, 50000);
    interrupt_upload(fxd, "alice", "old.bin", whole, 20000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "old.bin"), "partial") == 20000; }));
    // Expiry runs periodically: the partial goes, its bytes too.
    BOOST_TEST(eventually([&] { return stat_file(conn, "old.bin").code() == "not_found"; }, 30s));
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 0; }));
    const auto r = upload_resume(conn, "old.bin", whole, 20000);
    check_error(r, "upload", "bad_offset");
    BOOST_TEST(num(r, "partial") == 0);
}

BOOST_AUTO_TEST_CASE(an_offset_other_than_the_partial_is_bad_offset_with_the_partial_held, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string whole = pattern{408}.bytes(0, 300000);
    const std::uint64_t held = 100000;
    interrupt_upload(fxd, "alice", "p.bin", whole, held, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p.bin"), "partial") == static_cast<std::int64_t>(held); }));

    struct attempt {
        std::uint64_t size;
        std::uint64_t offset;
        const char* what;
    };
    const attempt wrong[] = {
        {whole.size(), held - 1, "one byte short"},
        {whole.size(), held + 1, "one byte past"},
        {whole.size(), 1, "offset 1"},
        {whole.size() + 1, held, "the right offset with another size"},
        {whole.size() - 1, held, "the right offset with a smaller size"},
    };
    for (const auto& w : wrong) {
        BOOST_TEST_CONTEXT(w.what)
        {
            const std::string body = pattern{409}.bytes(0, w.size - w.offset);
            conn.send_raw(upload_prefix("p.bin", w.size, w.offset, std::nullopt) + body);
            const auto r = conn.receive();
            check_error(r, "upload", "bad_offset");
            BOOST_TEST(num(r, "partial") == static_cast<std::int64_t>(held));
            check_usable(conn); // the rest-of-body was read and dropped
        }
    }
    // offset past size: bad_offset, nothing to send.
    conn.send_raw(upload_prefix("p.bin", 10, 11, std::nullopt));
    check_error(conn.receive(), "upload", "bad_offset");
    check_usable(conn);
    // Not an unsigned integer: bad_request.
    for (const json::value& bad : {json::value(-1), json::value("5"), json::value(1.5), json::value(nullptr)}) {
        BOOST_TEST_CONTEXT("offset " << json::serialize(bad))
        {
            json::object h{{"op", "upload"}, {"name", "p.bin"}, {"offset", bad}};
            check_error(conn.call(h, "abc"), "upload", "bad_request");
            check_usable(conn);
        }
    }
    // A name with no partial: bad_offset with partial 0.
    const auto none = upload_resume(conn, "other.bin", whole, 5, std::nullopt);
    check_error(none, "upload", "bad_offset");
    BOOST_TEST(num(none, "partial") == 0);
    check_error(stat_file(conn, "other.bin"), "stat", "not_found");

    // All those refusals left the partial as it was: it still resumes.
    BOOST_TEST(num(stat_file(conn, "p.bin"), "partial") == static_cast<std::int64_t>(held));
    check_upload_ok(upload_resume(conn, "p.bin", whole, held, sha256_of(whole)), "p.bin", whole.size(), sha256_of(whole));
    BOOST_TEST(same_bytes(download(conn, "p.bin").body, whole));
}

BOOST_AUTO_TEST_SUITE_END()
