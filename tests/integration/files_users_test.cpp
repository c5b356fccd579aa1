// Files and users against the real daemon: users kept apart, login required
// for every file op, and `fxd user del` removing a user's folder and files.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
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

// ---- Users, login ------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_users)

BOOST_AUTO_TEST_CASE(a_second_user_sees_downloads_and_deletes_nothing_of_the_first, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto alice = user_session(fxd.tcp_port(), "alice");
    auto bob = user_session(fxd.tcp_port(), "bob");
    const std::string secret = pattern{42}.bytes(0, 70000);
    check_upload_ok(upload(alice, "secret.txt", secret), "secret.txt", secret.size(), sha256_of(secret));

    const auto l = bob.call({{"op", "list"}});
    BOOST_TEST(l.ok());
    BOOST_TEST(json::parse(l.body).as_array().empty());
    check_error(stat_file(bob, "secret.txt"), "stat", "not_found");
    check_error(download(bob, "secret.txt"), "download", "not_found");
    check_error(download(bob, "secret.txt", 10), "download", "not_found");
    check_error(delete_file(bob, "secret.txt"), "delete", "not_found");
    check_error(upload_resume(bob, "secret.txt", secret, 100), "upload", "bad_offset");

    // Bob's file of the same name is his own; Alice's stays hers.
    check_upload_ok(upload(bob, "secret.txt", "bob's"), "secret.txt", 5, sha256_of("bob's"));
    BOOST_TEST(download(bob, "secret.txt").body == "bob's");
    BOOST_TEST(same_bytes(download(alice, "secret.txt").body, secret));
    BOOST_TEST(list_names(alice) == std::vector<std::string>{"secret.txt"});
    check_ok(delete_file(bob, "secret.txt"), "delete");
    BOOST_TEST(same_bytes(download(alice, "secret.txt").body, secret));
    BOOST_TEST(same_bytes(read_file(user_folder(fxd, "alice") / "secret.txt"), secret));
    BOOST_TEST(!fs::exists(user_folder(fxd, "bob") / "secret.txt"));

    // A new login on the same connection switches whose files it sees.
    check_ok(bob.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    BOOST_TEST(list_names(bob) == std::vector<std::string>{"secret.txt"});
}

BOOST_AUTO_TEST_CASE(file_ops_without_login_are_unauthorized_and_store_nothing, *utf::timeout(60))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port(), 30s);
    auto check_all_unauthorized = [&] {
        check_error(upload(conn, "a.txt", "hello"), "upload", "unauthorized");
        check_usable(conn); // the upload's body was read and dropped
        check_error(download(conn, "a.txt"), "download", "unauthorized");
        check_error(stat_file(conn, "a.txt"), "stat", "unauthorized");
        check_error(conn.call({{"op", "list"}}), "list", "unauthorized");
        check_error(delete_file(conn, "a.txt"), "delete", "unauthorized");
        check_usable(conn);
    };
    check_all_unauthorized();
    // Registering does not log in.
    check_ok(conn.call({{"op", "register"}, {"user", "alice"}, {"password", "alice-password"}}), "register");
    check_all_unauthorized();
    BOOST_TEST(folder_entries(fxd.storage() / "users").empty());
    // Logged in, then out again.
    check_ok(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    check_upload_ok(upload(conn, "a.txt", "hello"), "a.txt", 5, sha256_of("hello"));
    check_ok(conn.call({{"op", "logout"}}), "logout");
    check_all_unauthorized();
    // A refused upload left Alice's file as it was.
    check_ok(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    BOOST_TEST(download(conn, "a.txt").body == "hello");
    // A large unauthorized upload gets its reply, then the connection is closed.
    connection big(localhost, fxd.tcp_port(), 30s);
    big.send_raw(upload_prefix("big.bin", 8 * MiB, std::nullopt, std::nullopt));
    check_error(big.receive(), "upload", "unauthorized");
    BOOST_TEST(big.closed_by_peer());
}

BOOST_AUTO_TEST_CASE(fxd_user_del_removes_the_users_folder_and_files, *utf::timeout(120))
{
    daemon_process fxd(fast());
    {
        auto alice = user_session(fxd.tcp_port(), "alice");
        auto bob = user_session(fxd.tcp_port(), "bob");
        check_upload_ok(upload(alice, "one.txt", "first"), "one.txt", 5, sha256_of("first"));
        check_upload_ok(upload(alice, "two.txt", "second"), "two.txt", 6, sha256_of("second"));
        check_upload_ok(upload(bob, "bob.txt", "bobs"), "bob.txt", 4, sha256_of("bobs"));
        // A partial too.
        alice.send_raw(upload_prefix("half.bin", 100, std::nullopt, std::nullopt) + std::string(40, 'h'));
    }
    {
        auto alice = login_session(fxd.tcp_port(), "alice");
        BOOST_TEST(eventually([&] { return num(stat_file(alice, "half.bin"), "partial") == 40; }));
    }
    BOOST_TEST(fs::exists(user_folder(fxd, "alice") / "one.txt"));

    const auto r = fxd_user(fxd.storage(), {"del", "alice"});
    BOOST_TEST(r.status == 0, "fxd user del: " << r.err);
    BOOST_TEST(r.out.find("alice") != std::string::npos);

    BOOST_TEST(!fs::exists(user_folder(fxd, "alice")));
    BOOST_TEST(fs::exists(user_folder(fxd, "bob") / "bob.txt"));

    // Alice can no longer log in; a new Alice starts with nothing.
    connection conn(localhost, fxd.tcp_port(), 30s);
    check_error(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login",
                "bad_credentials");
    check_ok(conn.call({{"op", "register"}, {"user", "alice"}, {"password", "alice-password"}}), "register");
    check_ok(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    BOOST_TEST(list_names(conn).empty());
    check_error(stat_file(conn, "one.txt"), "stat", "not_found");
    check_error(stat_file(conn, "half.bin"), "stat", "not_found");
    check_error(download(conn, "two.txt"), "download", "not_found");
    // Bob is untouched.
    auto bob = login_session(fxd.tcp_port(), "bob");
    BOOST_TEST(download(bob, "bob.txt").body == "bobs");
}

BOOST_AUTO_TEST_SUITE_END()
