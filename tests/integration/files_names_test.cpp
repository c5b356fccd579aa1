// Hostile file names against the real daemon: every op refuses them with
// bad_name (or bad_header for invalid UTF-8) and creates nothing; unusual but
// valid names round trip.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
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

BOOST_AUTO_TEST_SUITE_END()
