// Files against the real daemon, as the wire contract and issue 4 state them:
// upload/download round trips (0 bytes, 1 byte, 3 MiB + 17, a large streamed
// file with the daemon's memory checked to stay flat), sha256 match and
// mismatch (also of a large body in small pieces, hashed behind the writes),
// download offsets, list order, stat, delete, the old version
// readable during a replacing upload, concurrent uploads of one name, and the
// stats counters. FXD_BIG_TESTS=1 makes the streamed file 512 MiB.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>
#include <fxd/util/sha256.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

using fxd::client::connection;
using fxd::client::reply;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;

// ---- Round trips -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_round_trip)

BOOST_AUTO_TEST_CASE(upload_then_download_returns_the_same_bytes_for_0_1_and_3MiB_plus_17, *utf::timeout(180))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::vector<std::pair<std::string, std::string>> cases{
        {"empty.bin", std::string()},
        {"one.bin", std::string(1, '\xA5')},
        {"three.bin", pattern{3}.bytes(0, 3 * MiB + 17)},
    };
    for (const auto& [name, data] : cases) {
        BOOST_TEST_CONTEXT("file " << name << " of " << data.size() << " bytes")
        {
            const auto t0 = unix_now();
            const std::string sha = sha256_of(data);
            const auto up = upload(conn, name, data, sha);
            check_upload_ok(up, name, data.size(), sha);

            const auto down = download(conn, name);
            BOOST_TEST_INFO("download reply: " << json::serialize(down.header));
            BOOST_TEST(str(down, "status") == "ok");
            BOOST_TEST(str(down, "op") == "download");
            BOOST_TEST(str(down, "name") == name);
            BOOST_TEST(num(down, "total") == static_cast<std::int64_t>(data.size()));
            BOOST_TEST(num(down, "size") == static_cast<std::int64_t>(data.size()));
            BOOST_TEST(str(down, "sha256") == sha);
            BOOST_TEST(same_bytes(down.body, data));

            const auto st = stat_file(conn, name);
            BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
            BOOST_TEST(str(st, "status") == "ok");
            BOOST_TEST(str(st, "name") == name);
            BOOST_TEST(flag(st, "exists") == 1);
            BOOST_TEST(num(st, "total") == static_cast<std::int64_t>(data.size()));
            BOOST_TEST(str(st, "sha256") == sha);
            BOOST_TEST(num(st, "mtime") >= t0 - 5);
            BOOST_TEST(num(st, "mtime") <= unix_now() + 5);
            BOOST_TEST(num(st, "partial") == 0);
            BOOST_TEST(num(st, "size") == 0);
            BOOST_TEST(st.body.empty());

            // On disk: the user's own folder, the bytes as sent, mode 0600.
            const auto path = user_folder(fxd, "alice") / name;
            BOOST_TEST(same_bytes(read_file(path), data));
            BOOST_TEST(mode_of(path) == 0600);
        }
    }
    BOOST_TEST(mode_of(user_folder(fxd, "alice")) == 0700);
    BOOST_TEST(mode_of(fxd.storage() / "users") == 0700);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(a_large_streamed_upload_and_download_keep_the_daemons_memory_flat, *utf::timeout(900))
{
    const bool big = std::getenv("FXD_BIG_TESTS") && std::string(std::getenv("FXD_BIG_TESTS")) == "1";
    const std::uint64_t total = big ? 512 * MiB : 64 * MiB;
    const std::uint64_t bound_kib = (big ? 64 * MiB : 32 * MiB) / 1024;
    const pattern data{0xF11E5};
    const std::string sha = data.sha(total);

    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice", 60s);
    auto other = user_session(fxd.tcp_port(), "bob");
    const auto rss_start = proc_kib(fxd.pid(), "VmRSS:");
    const auto hwm_start = proc_kib(fxd.pid(), "VmHWM:");

    const auto up_started = std::chrono::steady_clock::now();
    conn.send_raw(upload_prefix("large.bin", total, std::nullopt, sha));
    send_pattern(conn, data, 0, total / 2);
    // Another client is served while the body streams in.
    check_usable(other);
    const auto rss_mid = proc_kib(fxd.pid(), "VmRSS:");
    send_pattern(conn, data, total / 2, total);
    const auto up = conn.receive();
    const double up_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - up_started).count();
    check_upload_ok(up, "large.bin", total, sha);
    const auto hwm_after_upload = proc_kib(fxd.pid(), "VmHWM:");

    const auto down_started = std::chrono::steady_clock::now();
    const auto down = download_streamed(conn, "large.bin");
    const double down_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - down_started).count();
    BOOST_TEST_INFO("download reply: " << json::serialize(down.header));
    BOOST_TEST(down.ok);
    BOOST_TEST(down.bytes == total);
    BOOST_TEST(down.sha == sha);
    BOOST_TEST(str(down.header, "sha256") == sha);
    const auto hwm_after_download = proc_kib(fxd.pid(), "VmHWM:");

    BOOST_TEST_MESSAGE("large file " << total / MiB << " MiB: daemon VmRSS start " << rss_start << " KiB, mid-upload "
                                     << rss_mid << " KiB; VmHWM start " << hwm_start << " KiB, after upload "
                                     << hwm_after_upload << " KiB, after download " << hwm_after_download << " KiB");
    BOOST_TEST_MESSAGE("loopback throughput (debug log level, for information only): upload "
                       << static_cast<double>(total) / 1e6 / up_seconds << " MB/s, download "
                       << static_cast<double>(total) / 1e6 / down_seconds << " MB/s");
    // A memory bound, not a timing one: the body must never be held whole.
    BOOST_TEST(hwm_after_upload - hwm_start < bound_kib);
    BOOST_TEST(hwm_after_download - hwm_start < bound_kib);
    BOOST_TEST(file_size_of(user_folder(fxd, "alice") / "large.bin") == total);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- SHA-256 -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_sha256)

BOOST_AUTO_TEST_CASE(an_upload_without_sha256_reports_the_sha256_of_its_bytes, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{11}.bytes(0, 100000);
    check_upload_ok(upload(conn, "plain.bin", data), "plain.bin", data.size(), sha256_of(data));
    // Known vector: SHA-256 of the empty string.
    check_upload_ok(upload(conn, "empty", ""), "empty", 0,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const auto d = download(conn, "empty");
    BOOST_TEST(str(d, "sha256") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_CASE(a_sha256_mismatch_is_checksum_mismatch_stores_nothing_and_keeps_the_old_version,
                     *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v1 = pattern{1}.bytes(0, 200000);
    const std::string v2 = pattern{2}.bytes(0, 300000);
    check_upload_ok(upload(conn, "doc.bin", v1, sha256_of(v1)), "doc.bin", v1.size(), sha256_of(v1));

    // A replacement whose body does not match the sha256 it announced.
    check_error(upload(conn, "doc.bin", v2, sha256_of(v1)), "upload", "checksum_mismatch");
    check_usable(conn);
    const auto d = download(conn, "doc.bin");
    BOOST_TEST(same_bytes(d.body, v1));
    BOOST_TEST(str(d, "sha256") == sha256_of(v1));
    BOOST_TEST(str(stat_file(conn, "doc.bin"), "sha256") == sha256_of(v1));
    BOOST_TEST(num(stat_file(conn, "doc.bin"), "partial") == 0);

    // A new name: nothing at all appears.
    std::string flipped = v2;
    flipped[12345] ^= 1;
    check_error(upload(conn, "new.bin", flipped, sha256_of(v2)), "upload", "checksum_mismatch");
    check_error(stat_file(conn, "new.bin"), "stat", "not_found");
    check_error(download(conn, "new.bin"), "download", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"doc.bin"});
    BOOST_TEST(eventually([&] { return blobs_in(user_folder(fxd, "alice")).empty(); }));
    BOOST_TEST(!fs::exists(user_folder(fxd, "alice") / "new.bin"));
    BOOST_TEST(same_bytes(read_file(user_folder(fxd, "alice") / "doc.bin"), v1));

    // The same body with its right sha256 then goes through.
    check_upload_ok(upload(conn, "new.bin", flipped, sha256_of(flipped)), "new.bin", flipped.size(), sha256_of(flipped));
}

BOOST_AUTO_TEST_CASE(a_large_upload_in_small_pieces_is_hashed_whole_with_and_without_sha256, *utf::timeout(300))
{
    // The daemon hashes behind its writes, on other threads, and catches up
    // at the end: past one turn of a hashing thread (32 MiB), through many
    // hand-overs and write-back steps, in many small reads.
    const std::uint64_t total = 40 * MiB + 4321;
    const pattern p{0x5A17};
    const std::string sha = p.sha(total);
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice", 120s);

    conn.send_raw(upload_prefix("with.bin", total, std::nullopt, sha));
    send_pattern_in_small_pieces(conn, p, 0, total);
    check_upload_ok(conn.receive(), "with.bin", total, sha);

    conn.send_raw(upload_prefix("without.bin", total, std::nullopt, std::nullopt));
    send_pattern_in_small_pieces(conn, p, 0, total);
    check_upload_ok(conn.receive(), "without.bin", total, sha);

    // The last byte differs: only the catch-up at the end can see it.
    conn.send_raw(upload_prefix("last.bin", total, std::nullopt, sha));
    send_pattern_in_small_pieces(conn, p, 0, total - 1);
    std::string last = p.bytes(total - 1, 1);
    last[0] = static_cast<char>(last[0] ^ 1);
    conn.send_raw(last);
    check_error(conn.receive(), "upload", "checksum_mismatch");
    check_error(stat_file(conn, "last.bin"), "stat", "not_found");

    for (const std::string name : {"with.bin", "without.bin"}) {
        const auto d = download_streamed(conn, name);
        BOOST_TEST(d.ok, name);
        BOOST_TEST(d.bytes == total, name);
        BOOST_TEST(d.sha == sha, name);
        BOOST_TEST(fxd::util::sha256_file(user_folder(fxd, "alice") / name) == sha, name);
    }
    BOOST_TEST(eventually([&] { return blobs_in(user_folder(fxd, "alice")).empty(); }));
}

BOOST_AUTO_TEST_CASE(a_malformed_sha256_is_bad_request_and_the_body_is_skipped, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = "some bytes to store";
    const std::string good = sha256_of(data);
    std::string upper = good;
    for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::vector<json::value> bad{json::value(upper), json::value(good.substr(1)), json::value(good + "0"),
                                       json::value(std::string(64, 'g')), json::value(42), json::value(nullptr),
                                       json::value(json::array{})};
    for (const auto& sha : bad) {
        BOOST_TEST_CONTEXT("sha256 " << json::serialize(sha))
        {
            json::object h{{"op", "upload"}, {"name", "x.bin"}, {"sha256", sha}};
            check_error(conn.call(h, data), "upload", "bad_request");
            check_usable(conn);
        }
    }
    check_error(stat_file(conn, "x.bin"), "stat", "not_found");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Download offsets, stat, list, delete ------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_ops)

BOOST_AUTO_TEST_CASE(download_with_an_offset_returns_the_rest_and_past_the_end_is_bad_offset, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{5}.bytes(0, 1000);
    const std::string sha = sha256_of(data);
    check_upload_ok(upload(conn, "f.bin", data), "f.bin", data.size(), sha);

    for (const std::uint64_t offset : {0ULL, 1ULL, 500ULL, 999ULL, 1000ULL}) {
        BOOST_TEST_CONTEXT("offset " << offset)
        {
            const auto d = download(conn, "f.bin", offset);
            BOOST_TEST_INFO("reply: " << json::serialize(d.header));
            BOOST_TEST(d.ok());
            BOOST_TEST(num(d, "total") == 1000);
            BOOST_TEST(num(d, "size") == static_cast<std::int64_t>(1000 - offset));
            BOOST_TEST(str(d, "sha256") == sha); // always the whole file's
            BOOST_TEST(same_bytes(d.body, data.substr(offset)));
        }
    }
    check_error(download(conn, "f.bin", 1001), "download", "bad_offset");
    check_usable(conn);
    check_error(download(conn, "f.bin", 1ULL << 62), "download", "bad_offset");
    check_error(conn.call({{"op", "download"}, {"name", "f.bin"}, {"offset", -1}}), "download", "bad_request");
    check_error(conn.call({{"op", "download"}, {"name", "f.bin"}, {"offset", "5"}}), "download", "bad_request");
    check_error(download(conn, "missing.bin"), "download", "not_found");
    check_error(download(conn, "missing.bin", 0), "download", "not_found");
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(list_is_a_json_array_sorted_by_name_in_byte_order, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");

    // An empty list first.
    const auto empty = conn.call({{"op", "list"}});
    BOOST_TEST_INFO("list reply: " << json::serialize(empty.header));
    BOOST_TEST(empty.ok());
    BOOST_TEST(json::parse(empty.body).as_array().empty());

    const std::vector<std::string> upload_order{"é.txt", "a", "B", "Z z", "a b", "_x", "9", "10", "zz", "Zz"};
    std::map<std::string, std::size_t> sizes;
    const auto t0 = unix_now();
    for (std::size_t i = 0; i < upload_order.size(); ++i) {
        const std::string data(i * 7 + 1, static_cast<char>('a' + i));
        sizes[upload_order[i]] = data.size();
        check_upload_ok(upload(conn, upload_order[i], data), upload_order[i], data.size(), sha256_of(data));
    }
    const std::vector<std::string> byte_order{"10", "9", "B", "Z z", "Zz", "_x", "a", "a b", "zz", "é.txt"};

    const auto r = conn.call({{"op", "list"}, {"id", "l1"}});
    BOOST_TEST_INFO("list reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(num(r, "size") == static_cast<std::int64_t>(r.body.size()));
    BOOST_TEST(str(r, "op") == "list");
    BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value("l1")));
    const auto entries = json::parse(r.body).as_array();
    std::vector<std::string> names;
    for (const auto& e : entries) {
        const auto& o = e.as_object();
        const std::string name(o.at("name").as_string());
        names.push_back(name);
        BOOST_TEST_CONTEXT("entry " << json::serialize(o))
        {
            BOOST_TEST(o.at("size").to_number<std::uint64_t>() == sizes[name]);
            BOOST_TEST(o.at("mtime").to_number<std::int64_t>() >= t0 - 5);
            BOOST_TEST(o.at("mtime").to_number<std::int64_t>() <= unix_now() + 5);
        }
    }
    BOOST_TEST(names == byte_order, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(stat_of_an_unknown_name_is_not_found_and_a_name_is_required, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    check_error(stat_file(conn, "nothing"), "stat", "not_found");
    for (const char* op : {"upload", "download", "stat", "delete"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            check_error(conn.call({{"op", op}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"name", 7}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"name", nullptr}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"name", json::array{"a"}}}), op, "bad_request");
            check_usable(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(delete_removes_the_file_and_deleting_again_is_not_found, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{8}.bytes(0, 5000);
    check_upload_ok(upload(conn, "gone.bin", data), "gone.bin", data.size(), sha256_of(data));
    check_upload_ok(upload(conn, "kept.bin", data), "kept.bin", data.size(), sha256_of(data));

    const auto r = conn.call({{"op", "delete"}, {"id", 9}, {"name", "gone.bin"}});
    BOOST_TEST_INFO("delete reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(str(r, "op") == "delete");
    BOOST_TEST(num(r, "size") == 0);
    BOOST_TEST(r.body.empty());

    check_error(stat_file(conn, "gone.bin"), "stat", "not_found");
    check_error(download(conn, "gone.bin"), "download", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"kept.bin"});
    BOOST_TEST(!fs::exists(user_folder(fxd, "alice") / "gone.bin"));
    check_error(delete_file(conn, "gone.bin"), "delete", "not_found");
    check_error(delete_file(conn, "never.bin"), "delete", "not_found");
    check_usable(conn);
    // The other file is untouched, and the name can be used again.
    BOOST_TEST(same_bytes(download(conn, "kept.bin").body, data));
    check_upload_ok(upload(conn, "gone.bin", "again"), "gone.bin", 5, sha256_of("again"));
    BOOST_TEST(download(conn, "gone.bin").body == "again");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Replacing, concurrency ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_replace)

BOOST_AUTO_TEST_CASE(the_old_version_stays_readable_whole_during_a_replacing_upload, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto writer = user_session(fxd.tcp_port(), "alice");
    auto reader = login_session(fxd.tcp_port(), "alice");
    const std::string v1 = pattern{101}.bytes(0, MiB + 1);
    const pattern p2{102};
    const std::uint64_t v2_size = 2 * MiB + 3;
    const std::string v1_sha = sha256_of(v1);
    const std::string v2_sha = p2.sha(v2_size);
    check_upload_ok(upload(writer, "doc.bin", v1, v1_sha), "doc.bin", v1.size(), v1_sha);

    // Half of the replacement's body, and the daemon has it on disk.
    writer.send_raw(upload_prefix("doc.bin", v2_size, std::nullopt, v2_sha));
    send_pattern(writer, p2, 0, v2_size / 2);
    const auto folder = user_folder(fxd, "alice");
    BOOST_TEST(eventually([&] { return largest_blob(folder) >= v2_size / 2; }));

    for (int round = 0; round < 2; ++round) {
        const auto d = download(reader, "doc.bin");
        BOOST_TEST_INFO("download reply: " << json::serialize(d.header));
        BOOST_TEST(d.ok());
        BOOST_TEST(num(d, "total") == static_cast<std::int64_t>(v1.size()));
        BOOST_TEST(str(d, "sha256") == v1_sha);
        BOOST_TEST(same_bytes(d.body, v1));
        const auto st = stat_file(reader, "doc.bin");
        BOOST_TEST(str(st, "sha256") == v1_sha);
        BOOST_TEST(num(st, "total") == static_cast<std::int64_t>(v1.size()));
        BOOST_TEST(list_sizes(reader)["doc.bin"] == v1.size());
    }
    BOOST_TEST(same_bytes(read_file(folder / "doc.bin"), v1));

    // The rest: the new version replaces the old at once.
    send_pattern(writer, p2, v2_size / 2, v2_size);
    check_upload_ok(writer.receive(), "doc.bin", v2_size, v2_sha);
    const auto d = download(reader, "doc.bin");
    BOOST_TEST(str(d, "sha256") == v2_sha);
    BOOST_TEST(same_bytes(d.body, p2.bytes(0, v2_size)));
    BOOST_TEST(str(stat_file(reader, "doc.bin"), "sha256") == v2_sha);
    BOOST_TEST(blobs_in(folder).empty());
}

BOOST_AUTO_TEST_CASE(a_download_started_before_a_replace_gets_the_old_version_whole, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto writer = user_session(fxd.tcp_port(), "alice");
    const pattern p1{201};
    const std::uint64_t v1_size = 48 * MiB; // more than the socket buffers hold
    const std::string v1_sha = p1.sha(v1_size);
    writer.send_raw(upload_prefix("big.bin", v1_size, std::nullopt, v1_sha));
    send_pattern(writer, p1, 0, v1_size);
    check_upload_ok(writer.receive(), "big.bin", v1_size, v1_sha);

    // Start a download and read only its header and a little of the body.
    connection reader = login_session(fxd.tcp_port(), "alice");
    reader.send({{"op", "download"}, {"name", "big.bin"}});
    const auto header = reader.receive_header().header;
    BOOST_TEST(str(header, "sha256") == v1_sha);
    fxd::util::sha256 h;
    const std::string first = reader.receive_exact(1024);
    h.update(first);

    // Replace and then delete the file meanwhile.
    check_upload_ok(upload(writer, "big.bin", "tiny"), "big.bin", 4, sha256_of("tiny"));
    check_ok(delete_file(writer, "big.bin"), "delete");

    // The download goes on with the old bytes, whole.
    std::uint64_t got = first.size();
    while (got < v1_size) {
        const auto piece = reader.receive_exact(static_cast<std::size_t>(std::min<std::uint64_t>(MiB, v1_size - got)));
        h.update(piece);
        got += piece.size();
    }
    BOOST_TEST(h.finish_hex() == v1_sha);
    check_usable(reader);
}

BOOST_AUTO_TEST_CASE(two_concurrent_uploads_of_one_name_both_succeed_and_one_wins_whole, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto a = user_session(fxd.tcp_port(), "alice");
    auto b = login_session(fxd.tcp_port(), "alice");
    const pattern pa{301};
    const pattern pb{302};
    const std::uint64_t size_a = 2 * MiB;
    const std::uint64_t size_b = 3 * MiB + 1;
    const std::string sha_a = pa.sha(size_a);
    const std::string sha_b = pb.sha(size_b);

    a.send_raw(upload_prefix("same.bin", size_a, std::nullopt, sha_a));
    b.send_raw(upload_prefix("same.bin", size_b, std::nullopt, sha_b));
    send_pattern(a, pa, 0, MiB);
    send_pattern(b, pb, 0, MiB);
    const auto folder = user_folder(fxd, "alice");
    BOOST_TEST(eventually([&] {
        const auto blobs = blobs_in(folder);
        return blobs.size() == 2 && file_size_of(blobs[0]) >= MiB && file_size_of(blobs[1]) >= MiB;
    }));
    send_pattern(b, pb, MiB, size_b);
    send_pattern(a, pa, MiB, size_a);
    check_upload_ok(b.receive(), "same.bin", size_b, sha_b);
    check_upload_ok(a.receive(), "same.bin", size_a, sha_a);

    const auto d = download(a, "same.bin");
    const std::string sha = sha256_of(d.body);
    BOOST_TEST((sha == sha_a || sha == sha_b), "the stored file is neither upload whole: " << d.body.size() << " bytes");
    BOOST_TEST(str(d, "sha256") == sha);
    BOOST_TEST(str(stat_file(b, "same.bin"), "sha256") == sha);
    BOOST_TEST((list_sizes(a) == std::map<std::string, std::uint64_t>{{"same.bin", d.body.size()}}));
    BOOST_TEST(same_bytes(read_file(folder / "same.bin"), d.body));
    BOOST_TEST(eventually([&] { return blobs_in(folder).empty(); }));
    BOOST_TEST(num(stat_file(a, "same.bin"), "partial") == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Stats --------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_stats)

BOOST_AUTO_TEST_CASE(stats_count_uploads_downloads_bytes_stored_and_partials, *utf::timeout(60))
{
    daemon_process fxd(fast());
    const auto s0 = stats_snapshot(fxd.tcp_port());
    for (const char* key : {"uploads_ok", "uploads_failed", "downloads_ok", "downloads_failed", "bytes_stored",
                            "partials_held"})
        BOOST_TEST(counter(s0, std::string("files.") + key) == 0u, key);

    auto conn = user_session(fxd.tcp_port(), "alice");
    check_upload_ok(upload(conn, "a", std::string(1000, 'a')), "a", 1000, sha256_of(std::string(1000, 'a')));
    check_upload_ok(upload(conn, "b", std::string(234, 'b')), "b", 234, sha256_of(std::string(234, 'b')));
    check_error(upload(conn, "c", "ccc", sha256_of("ddd")), "upload", "checksum_mismatch");
    BOOST_TEST(download(conn, "a").ok());
    BOOST_TEST(download(conn, "b", 100).ok());
    check_error(download(conn, "zzz"), "download", "not_found");
    interrupt_upload(fxd, "alice", "p", std::string(5000, 'p'), 2000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p"), "partial") == 2000; }));
    // stats' totals follow the catalog a moment later.
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 1; }));

    const auto s = stats_snapshot(fxd.tcp_port());
    BOOST_TEST_INFO("stats: " << json::serialize(s));
    BOOST_TEST(counter(s, "files.uploads_ok") == 2u);
    BOOST_TEST(counter(s, "files.uploads_failed") >= 1u); // the mismatch (an interrupted upload may count too)
    BOOST_TEST(counter(s, "files.downloads_ok") == 2u);
    BOOST_TEST(counter(s, "files.downloads_failed") == 1u);
    BOOST_TEST(counter(s, "files.bytes_stored") == 1234u);
    BOOST_TEST(counter(s, "files.partials_held") == 1u);

    check_ok(delete_file(conn, "a"), "delete");
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == 234u);
}

BOOST_AUTO_TEST_SUITE_END()
