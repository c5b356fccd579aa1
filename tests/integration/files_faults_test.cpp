// File faults against the real daemon: a full disk (a tiny tmpfs; needs root,
// shown as skipped otherwise) and kill -9 mid-upload, repaired at the restart.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using fxd::client::connection;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace utf = boost::unit_test;

// ---- Faults: a full disk, kill -9 -------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_faults)

BOOST_AUTO_TEST_CASE(a_full_disk_is_storage_full_leaves_no_blob_and_the_daemon_serves_on,
                     *utf::timeout(180) * utf::precondition(can_mount_tmpfs))
{
    temp_dir dir;
    // The storage folder is the mount point itself (the daemon's log sits beside it, off the tmpfs).
    tmpfs_mount tiny(dir.path() / "storage", "2m");
    BOOST_TEST_REQUIRE(tiny.mounted(), "cannot mount a 2 MiB tmpfs: " << tiny.error());
    daemon_process fxd(fast(), dir.path() / "storage");
    auto conn = user_session(fxd.tcp_port(), "alice");
    const auto folder = user_folder(fxd, "alice");
    const std::string keep = pattern{601}.bytes(0, 512 * 1024);
    check_upload_ok(upload(conn, "keep.bin", keep), "keep.bin", keep.size(), sha256_of(keep));

    // 4 MiB cannot fit in 2 MiB.
    {
        const pattern big{602};
        const std::uint64_t size = 4 * MiB;
        auto writer = login_session(fxd.tcp_port(), "alice");
        writer.send_raw(upload_prefix("big.bin", size, std::nullopt, big.sha(size)));
        const auto sent = send_pattern_until_answer(writer, big, 0, size);
        BOOST_TEST_MESSAGE("sent " << sent << " of " << size << " body bytes before the daemon answered");
        check_error(writer.receive(), "upload", "storage_full");
    }

    // The daemon serves on, on old and new connections alike.
    check_usable(conn);
    {
        connection fresh(localhost, fxd.tcp_port());
        check_usable(fresh);
    }
    BOOST_TEST(eventually([&] { return blobs_in(folder).empty(); }), "an upload blob was left behind");
    check_error(stat_file(conn, "big.bin"), "stat", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"keep.bin"});
    const auto d = download(conn, "keep.bin");
    BOOST_TEST(same_bytes(d.body, keep));
    BOOST_TEST(str(d, "sha256") == sha256_of(keep));
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.uploads_failed") >= 1u);

    // A small upload fits; after a delete, a larger one does too.
    const std::string small = pattern{603}.bytes(0, 10000);
    check_upload_ok(upload(conn, "small.bin", small), "small.bin", small.size(), sha256_of(small));
    check_ok(delete_file(conn, "keep.bin"), "delete");
    const std::string after = pattern{604}.bytes(0, MiB);
    check_upload_ok(upload(conn, "after.bin", after), "after.bin", after.size(), sha256_of(after));
    BOOST_TEST(same_bytes(download(conn, "after.bin").body, after));
    BOOST_TEST(same_bytes(download(conn, "small.bin").body, small));
    BOOST_TEST(blobs_in(folder).empty());

    // A resumed upload whose rest no longer fits: storage_full before any byte
    // moves, and the partial stays for a later resume.
    {
        const std::string whole = pattern{605}.bytes(0, 600 * 1024);
        interrupt_upload(fxd, "alice", "resumed.bin", whole, 100000, std::nullopt);
        BOOST_TEST(eventually([&] { return num(stat_file(conn, "resumed.bin"), "partial") == 100000; }));
        const std::string filler = pattern{606}.bytes(0, 400 * 1024);
        check_upload_ok(upload(conn, "filler.bin", filler), "filler.bin", filler.size(), sha256_of(filler));
        auto writer = login_session(fxd.tcp_port(), "alice");
        writer.send_raw(upload_prefix("resumed.bin", whole.size(), 100000, std::nullopt));
        send_pattern_until_answer(writer, pattern{605}, 100000, whole.size());
        check_error(writer.receive(), "upload", "storage_full");
        BOOST_TEST(num(stat_file(conn, "resumed.bin"), "partial") == 100000);
        check_ok(delete_file(conn, "filler.bin"), "delete");
    }

    // Two uploads that each fit but not together: the disk fills mid-body.
    // Whatever is refused is storage_full with nothing stored; whatever is
    // accepted reads back whole.
    {
        const pattern first{607}, second{608};
        const std::uint64_t size = 500 * 1024;
        auto a = login_session(fxd.tcp_port(), "alice");
        auto b = login_session(fxd.tcp_port(), "alice");
        const auto blobs_before = blobs_in(folder).size(); // the partial of resumed.bin
        a.send_raw(upload_prefix("race-a.bin", size, std::nullopt, first.sha(size)));
        b.send_raw(upload_prefix("race-b.bin", size, std::nullopt, second.sha(size)));
        a.send_raw(first.bytes(0, 1024));
        b.send_raw(second.bytes(0, 1024));
        // Both admitted (space forecast for each alone) before either body goes on.
        BOOST_TEST_REQUIRE(eventually([&] { return blobs_in(folder).size() == blobs_before + 2; }));
        std::vector<std::string> codes;
        const std::tuple<connection*, const pattern*, const char*> racers[] = {{&a, &first, "race-a.bin"},
                                                                              {&b, &second, "race-b.bin"}};
        for (const auto& [writer, p, name] : racers) {
            send_pattern_until_answer(*writer, *p, 1024, size);
            const auto r = writer->receive();
            codes.push_back(r.ok() ? "ok" : r.code());
            if (r.ok())
                BOOST_TEST(same_bytes(download(conn, name).body, p->bytes(0, size)));
            else
                check_error(stat_file(conn, name), "stat", "not_found");
        }
        BOOST_TEST_INFO("replies: " << codes[0] << ", " << codes[1]);
        BOOST_TEST((std::count(codes.begin(), codes.end(), "storage_full") >= 1));
        BOOST_TEST((std::count(codes.begin(), codes.end(), "ok") + std::count(codes.begin(), codes.end(), "storage_full") == 2));
    }
    check_usable(conn);
    BOOST_TEST(eventually([&] { return blobs_in(folder).size() == 1; }), "an upload blob was left behind (only the partial of resumed.bin may stay)");
    BOOST_TEST(same_bytes(download(conn, "after.bin").body, after));
}

BOOST_AUTO_TEST_CASE(kill_9_mid_upload_leaves_whole_files_and_a_resumable_partial, *utf::timeout(300))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";
    const std::string a = pattern{701}.bytes(0, MiB);
    const std::string b = pattern{702}.bytes(0, 2 * MiB + 9);
    const std::string c1 = pattern{703}.bytes(0, MiB / 2);
    const pattern c2{704};
    const std::uint64_t c2_size = 8 * MiB;
    const std::uint64_t c2_cut = 3 * MiB;
    const pattern d{705};
    const std::uint64_t d_size = 4 * MiB + 1;
    const std::uint64_t d_cut = MiB + 7;
    const std::string c2_sha = c2.sha(c2_size);
    const std::string d_sha = d.sha(d_size);
    const std::map<std::string, std::string> whole_before{{"a.bin", a}, {"b.bin", b}, {"c.bin", c1}};

    {
        daemon_process fxd(fast(), storage);
        auto conn = user_session(fxd.tcp_port(), "alice");
        for (const auto& [name, data] : whole_before)
            check_upload_ok(upload(conn, name, data, sha256_of(data)), name, data.size(), sha256_of(data));
        // Two uploads in flight: a replacement of c.bin and a new d.bin.
        auto cw = login_session(fxd.tcp_port(), "alice");
        cw.send_raw(upload_prefix("c.bin", c2_size, std::nullopt, c2_sha));
        send_pattern(cw, c2, 0, c2_cut);
        auto dw = login_session(fxd.tcp_port(), "alice");
        dw.send_raw(upload_prefix("d.bin", d_size, std::nullopt, std::nullopt));
        send_pattern(dw, d, 0, d_cut);
        const auto folder = user_folder(fxd, "alice");
        BOOST_TEST(eventually([&] {
            std::vector<std::uint64_t> sizes;
            for (const auto& blob : blobs_in(folder))
                sizes.push_back(file_size_of(blob));
            std::sort(sizes.begin(), sizes.end());
            return sizes == std::vector<std::uint64_t>{d_cut, c2_cut};
        }), "the daemon never held both uploads' bytes");
        fxd.signal(SIGKILL);
        const auto status = fxd.wait_exit(10s);
        BOOST_TEST((status && *status == 128 + SIGKILL));
    }

    {
        daemon_process fxd(fast(), storage);
        const auto log = fxd.log();
        BOOST_TEST_INFO("daemon log:\n" << log);
        BOOST_TEST(log_lines_with(log, {"storage repaired:", "c.bin", std::to_string(c2_cut)}).size() == 1u);
        BOOST_TEST(log_lines_with(log, {"storage repaired:", "d.bin", std::to_string(d_cut)}).size() == 1u);

        auto conn = login_session(fxd.tcp_port(), "alice");
        // Only whole files are listed, each with its own bytes and hash.
        std::map<std::string, std::uint64_t> want_sizes;
        for (const auto& [name, data] : whole_before)
            want_sizes[name] = data.size();
        BOOST_TEST((list_sizes(conn) == want_sizes));
        for (const auto& [name, data] : whole_before) {
            BOOST_TEST_CONTEXT("file " << name)
            {
                const auto st = stat_file(conn, name);
                BOOST_TEST(flag(st, "exists") == 1);
                BOOST_TEST(str(st, "sha256") == sha256_of(data));
                const auto dl = download(conn, name);
                BOOST_TEST(str(dl, "sha256") == sha256_of(data));
                BOOST_TEST(same_bytes(dl.body, data));
            }
        }
        const auto folder = user_folder(fxd, "alice");
        std::vector<std::string> visible;
        for (const auto& entry : folder_entries(folder)) {
            if (!entry.starts_with("."))
                visible.push_back(entry);
        }
        BOOST_TEST(visible == (std::vector<std::string>{"a.bin", "b.bin", "c.bin"}), boost::test_tools::per_element());
        BOOST_TEST(same_bytes(read_file(folder / "c.bin"), c1));

        // The interrupted bytes are partials.
        const auto sc = stat_file(conn, "c.bin");
        BOOST_TEST_INFO("stat c.bin: " << json::serialize(sc.header));
        BOOST_TEST(flag(sc, "exists") == 1);
        BOOST_TEST(num(sc, "total") == static_cast<std::int64_t>(c1.size()));
        BOOST_TEST(num(sc, "partial") == static_cast<std::int64_t>(c2_cut));
        const auto sd = stat_file(conn, "d.bin");
        BOOST_TEST_INFO("stat d.bin: " << json::serialize(sd.header));
        BOOST_TEST(flag(sd, "exists") == 0);
        BOOST_TEST(num(sd, "partial") == static_cast<std::int64_t>(d_cut));
        check_error(download(conn, "d.bin"), "download", "not_found");
        BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 2u);

        // Both resume to the right whole file.
        conn.send_raw(upload_prefix("c.bin", c2_size, c2_cut, c2_sha));
        send_pattern(conn, c2, c2_cut, c2_size);
        check_upload_ok(conn.receive(), "c.bin", c2_size, c2_sha);
        conn.send_raw(upload_prefix("d.bin", d_size, d_cut, std::nullopt));
        send_pattern(conn, d, d_cut, d_size);
        check_upload_ok(conn.receive(), "d.bin", d_size, d_sha);
        const auto dc = download_streamed(conn, "c.bin");
        BOOST_TEST(dc.bytes == c2_size);
        BOOST_TEST(dc.sha == c2_sha);
        const auto dd = download_streamed(conn, "d.bin");
        BOOST_TEST(dd.bytes == d_size);
        BOOST_TEST(dd.sha == d_sha);
        BOOST_TEST(num(stat_file(conn, "c.bin"), "partial") == 0);
        BOOST_TEST(num(stat_file(conn, "d.bin"), "partial") == 0);
        BOOST_TEST(blobs_in(folder).empty());
        BOOST_TEST(list_names(conn) == (std::vector<std::string>{"a.bin", "b.bin", "c.bin", "d.bin"}),
                   boost::test_tools::per_element());

        fxd.signal(SIGTERM);
        const auto status = fxd.wait_exit(30s);
        BOOST_TEST((status && *status == 0));
    }

    // The database itself is sound and agrees with the folder.
    const auto db = storage / "fxd.db";
    BOOST_TEST(sqlite_rows(db, "PRAGMA integrity_check") == std::vector<std::string>{"ok"});
    BOOST_TEST(sqlite_rows(db, "SELECT count(*) FROM uploads") == std::vector<std::string>{"0"});
    BOOST_TEST(sqlite_rows(db, "SELECT count(*) FROM partials") == std::vector<std::string>{"0"});
    BOOST_TEST(sqlite_rows(db, "SELECT CAST(name AS TEXT) || ':' || size FROM files WHERE user = 'alice' ORDER BY name") ==
                   (std::vector<std::string>{"a.bin:" + std::to_string(a.size()), "b.bin:" + std::to_string(b.size()),
                                             "c.bin:" + std::to_string(c2_size), "d.bin:" + std::to_string(d_size)}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
