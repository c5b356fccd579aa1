// Hostile file names against the real daemon: every op refuses them with
// bad_name (or bad_header for invalid UTF-8) and creates nothing; unusual but
// valid names round trip.

#include "daemon_process.hpp"
#include "files.hpp"
#include "temp_dir.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

using fxd::client::connection;
using fxd::client::reply;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;

// ---- Hostile names -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_names)

BOOST_AUTO_TEST_CASE(hostile_names_are_bad_name_for_every_op_and_create_nothing, *utf::timeout(180))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const fs::path outside = fs::temp_directory_path() / ("fxd-hostile-" + std::to_string(::getpid()));
    fs::remove_all(outside);
    const fs::path root = fxd.storage().parent_path();
    const auto before = tree_of(root);

    // JSON text of each name, written by hand so that escapes reach the daemon as sent.
    const std::vector<std::string> hostile{
        R"("../x")",
        "\"../../../../../../../../.." + outside.string() + "\"",
        R"("..\\x")",
        R"("..\/x")", // JSON's escaped slash: ../x
        R"("a/b")",
        R"("a\\b")",
        R"("/x")",
        "\"" + outside.string() + "\"",
        R"("x/../../y")",
        R"(".hidden")",
        R"(".blob-000000000000000000000000")",
        R"("..")",
        R"(".\u002e")", // ".." spelled with an escape
        R"(".")",
        R"("")",
        "\"" + std::string(256, 'a') + "\"",
        "\"" + repeat("é", 128) + "\"", // 128 characters, 256 bytes
        R"("a\u0000b")",
        R"("\u0000")",
        R"("a\nb")",
        R"("x\r\nFAKE log line")",
        R"("\ttab")",
        R"("a\u001bb")",
        R"("a\u007fb")",
        R"("/")",
        R"("\\")",
    };
    std::int64_t id = 0;
    for (const auto& name : hostile) {
        for (const std::string op : {"upload", "download", "stat", "delete"}) {
            BOOST_TEST_CONTEXT("op " << op << ", name " << show(name))
            {
                ++id;
                const std::string body = op == "upload" ? "hello" : "";
                const std::string header = R"({"op":")" + op + R"(","id":)" + std::to_string(id) + R"(,"name":)" + name +
                                           R"(,"size":)" + std::to_string(body.size()) + "}";
                conn.send_raw(raw_frame(header, body));
                const auto r = conn.receive();
                check_error(r, op, "bad_name");
                BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value(id)));
                check_usable(conn);
            }
        }
    }
    // A hostile resume too.
    conn.send_raw(raw_frame(R"({"op":"upload","name":"../x","size":10,"offset":5})", "12345"));
    check_error(conn.receive(), "upload", "bad_name");
    check_usable(conn);

    BOOST_TEST(tree_of(root) == before, boost::test_tools::per_element());
    BOOST_TEST(!fs::exists(outside));
    BOOST_TEST((!fs::exists(user_folder(fxd, "alice")) || folder_entries(user_folder(fxd, "alice")).empty()));
    BOOST_TEST(list_names(conn).empty());
}

BOOST_AUTO_TEST_CASE(names_with_c1_control_characters_are_bad_name_and_create_nothing, *utf::timeout(60))
{
    // U+0080..U+009F are control characters too (Unicode Cc; U+0085 NEXT LINE
    // is a line break to some tools): the contract forbids "other control characters".
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const fs::path root = fxd.storage().parent_path();
    const auto before = tree_of(root);
    for (const std::string name : {R"("a\u0085b")", R"("\u0080")", R"("x\u009fy")"}) {
        for (const std::string op : {"upload", "download", "stat", "delete"}) {
            BOOST_TEST_CONTEXT("op " << op << ", name " << show(name))
            {
                const std::string body = op == "upload" ? "hello" : "";
                const std::string header = R"({"op":")" + op + R"(","name":)" + name + R"(,"size":)" +
                                           std::to_string(body.size()) + "}";
                conn.send_raw(raw_frame(header, body));
                check_error(conn.receive(), op, "bad_name");
                check_usable(conn);
            }
        }
    }
    BOOST_TEST(tree_of(root) == before, boost::test_tools::per_element());
    BOOST_TEST(list_names(conn).empty());
}

BOOST_AUTO_TEST_CASE(names_in_invalid_utf8_are_bad_header_and_create_nothing, *utf::timeout(120))
{
    // The header must be UTF-8 JSON: a name in invalid UTF-8, or a lone
    // surrogate escape, makes the header itself bad (contract: bad_header,
    // connection closed).
    daemon_process fxd(fast());
    register_user(fxd.tcp_port(), "alice");
    const fs::path root = fxd.storage().parent_path();
    const auto before = tree_of(root);
    const std::vector<std::string> invalid{
        "\"\xff\"", "\"a\xfe\"", "\"\xc0\xaf\"", "\"\xc0\xae\xc0\xae\"", "\"\xed\xa0\x80\"", "\"a\x80\"", "\"\xc3\"",
        R"("\ud800")", R"("a\udfffb")",
    };
    for (const auto& name : invalid) {
        BOOST_TEST_CONTEXT("name " << show(name))
        {
            auto conn = login_session(fxd.tcp_port(), "alice");
            const std::string header = R"({"op":"upload","name":)" + name + R"(,"size":5})";
            conn.send_raw(raw_frame(header, "hello"));
            const auto r = conn.receive();
            BOOST_TEST_INFO("reply: " << json::serialize(r.header));
            BOOST_TEST(str(r, "status") == "error");
            BOOST_TEST(r.code() == "bad_header");
            BOOST_TEST(conn.closed_by_peer());
        }
    }
    BOOST_TEST(tree_of(root) == before, boost::test_tools::per_element());
    auto conn = login_session(fxd.tcp_port(), "alice");
    BOOST_TEST(list_names(conn).empty());
}

BOOST_AUTO_TEST_CASE(unusual_but_valid_names_round_trip, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::vector<std::string> names{"x..y", "a.", "a..", "-dash", "~tilde", "C:", "%2e%2e", "spaces and (parens)",
                                         "日本語.txt", "emoji 🚀.bin", std::string(255, 'n'), repeat("é", 127) + "a"};
    for (const auto& name : names) {
        BOOST_TEST_CONTEXT("name " << show(name))
        {
            const std::string data = "data of " + name;
            check_upload_ok(upload(conn, name, data), name, data.size(), sha256_of(data));
            BOOST_TEST(download(conn, name).body == data);
            BOOST_TEST(read_file(user_folder(fxd, "alice") / name) == data);
        }
    }
    BOOST_TEST(list_names(conn).size() == names.size());
    for (const auto& name : names)
        check_ok(delete_file(conn, name), "delete");
    BOOST_TEST(folder_entries(user_folder(fxd, "alice")).empty());
}

// ---- One name, however it is spelled: Unicode NFC ------------------------------------------

namespace {

const std::string nfd_cafe = "cafe\xcc\x81.txt"; // e + COMBINING ACUTE ACCENT, as macOS spells it
const std::string nfc_cafe = "caf\xc3\xa9.txt";  // U+00E9, as most keyboards type it

} // namespace

BOOST_AUTO_TEST_CASE(nfc_and_nfd_spellings_name_one_file_for_every_op, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const auto folder = user_folder(fxd, "alice");
    const std::pair<std::string, std::string> spellings[] = {{nfd_cafe, nfc_cafe}, {nfc_cafe, nfd_cafe}};
    for (const auto& [stored_as, asked_as] : spellings) {
        BOOST_TEST_CONTEXT("uploaded as " << show(stored_as) << ", asked as " << show(asked_as))
        {
            const std::string data = "bytes sent as " + show(stored_as);
            // The reply, the listing and the folder all give the NFC spelling.
            check_upload_ok(upload(conn, stored_as, data), nfc_cafe, data.size(), sha256_of(data));
            BOOST_TEST(list_names(conn) == std::vector<std::string>{nfc_cafe});
            BOOST_TEST(folder_entries(folder) == std::vector<std::string>{nfc_cafe});

            const auto st = stat_file(conn, asked_as);
            check_ok(st, "stat");
            BOOST_TEST(flag(st, "exists") == 1);
            BOOST_TEST(str(st, "name") == nfc_cafe);
            const auto dl = download(conn, asked_as);
            check_ok(dl, "download");
            BOOST_TEST(str(dl, "name") == nfc_cafe);
            BOOST_TEST(dl.body == data);

            // The other spelling replaces the same file rather than adding one.
            const std::string again = "replaced through " + show(asked_as);
            check_upload_ok(upload(conn, asked_as, again), nfc_cafe, again.size(), sha256_of(again));
            BOOST_TEST(list_names(conn).size() == 1u);
            BOOST_TEST(download(conn, stored_as).body == again);

            check_ok(delete_file(conn, asked_as), "delete");
            BOOST_TEST(list_names(conn).empty());
            check_error(stat_file(conn, stored_as), "stat", "not_found");
        }
    }
}

BOOST_AUTO_TEST_CASE(name_rules_apply_to_the_nfc_form, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    // 382 bytes as sent, 255 in NFC: a valid name.
    const std::string long_nfd = repeat("e\xcc\x81", 127) + "a";
    const std::string long_nfc = repeat("\xc3\xa9", 127) + "a";
    check_upload_ok(upload(conn, long_nfd, "x"), long_nfc, 1, sha256_of("x"));
    BOOST_TEST(download(conn, long_nfc).body == "x");
    // U+0344 is 2 bytes, its NFC 4: 255 bytes as sent, 509 in NFC.
    const std::string grows = repeat("\xcd\x84", 127) + "a";
    for (const std::string op : {"upload", "download", "stat", "delete"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            const auto r = op == "upload" ? upload(conn, grows, "y")
                         : op == "download" ? download(conn, grows)
                         : op == "stat"     ? stat_file(conn, grows)
                                            : delete_file(conn, grows);
            check_error(r, op, "bad_name");
        }
    }
    BOOST_TEST(list_names(conn) == std::vector<std::string>{long_nfc});
}

BOOST_AUTO_TEST_CASE(a_file_stored_under_an_nfd_name_before_is_renamed_to_nfc_at_start, *utf::timeout(120))
{
    temp_dir dir;
    const fs::path storage = dir.path() / "storage";
    {
        daemon_process fxd(fast(), storage);
        auto conn = user_session(fxd.tcp_port(), "alice");
        check_ok(upload(conn, "first.txt", "1"), "upload"); // makes alice's folder
    }
    // What an older fxd left: a file under its NFD spelling, and one whose NFC spelling is taken.
    const fs::path folder = storage / "users" / "alice";
    write_file(folder / nfd_cafe, "old bytes");
    write_file(folder / ("nai\xcc\x88ve"), "kept aside");
    write_file(folder / "na\xc3\xafve", "the NFC one");

    daemon_process fxd(fast(), storage);
    const auto log = fxd.log();
    BOOST_TEST_INFO("daemon log:\n" << log);
    BOOST_TEST(log_lines_with(log, {"storage repaired:", "renamed", "NFC"}).size() == 1u);
    BOOST_TEST(log_lines_with(log, {"storage repaired:", "kept", "taken"}).size() == 1u);
    auto conn = login_session(fxd.tcp_port(), "alice");
    BOOST_TEST(download(conn, nfc_cafe).body == "old bytes");
    BOOST_TEST(download(conn, nfd_cafe).body == "old bytes");
    BOOST_TEST(download(conn, "nai\xcc\x88ve").body == "the NFC one"); // nothing overwritten
    BOOST_TEST(read_file(folder / "nai\xcc\x88ve") == "kept aside");
}

BOOST_AUTO_TEST_SUITE_END()
