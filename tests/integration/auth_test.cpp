// Accounts against the real daemon: register, login, logout and whoami as the
// wire contract states them, every bad name and password, the brute-force
// lockout per (user, address) and per address, the fail2ban line, the offline
// `fxd user` commands, durability across kill -9, no plain password on disk,
// and hashing kept off the event loop.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using fxd::client::connection;
using fxd::client::reply;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;

namespace {

const std::string other_host = "127.0.0.2";

json::object creds(std::string_view op, std::string_view user, std::string_view password)
{
    return {{"op", op}, {"user", user}, {"password", password}};
}

void check_ok_user(const reply& r, std::string_view op, std::string_view user)
{
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "ok");
    BOOST_TEST(str(r, "op") == op);
    BOOST_TEST(str(r, "user") == user);
    BOOST_TEST(r.header.contains("size"));
    BOOST_TEST(r.body.empty());
}

/// whoami's user: the name, "<null>" for null, "<bad>" for anything else.
std::string whoami(connection& conn)
{
    const auto r = conn.call({{"op", "whoami"}});
    BOOST_TEST_INFO("whoami reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    const auto* u = r.header.if_contains("user");
    if (!u)
        return "<missing>";
    if (u->is_null())
        return "<null>";
    return u->is_string() ? std::string(u->get_string()) : "<bad>";
}

void register_ok(std::uint16_t port, std::string_view user, std::string_view password)
{
    connection conn(localhost, port);
    check_ok_user(conn.call(creds("register", user, password)), "register", user);
}

reply login(std::uint16_t port, std::string_view user, std::string_view password, const std::string& from = localhost)
{
    connection conn(localhost, port, 30s, from);
    return conn.call(creds("login", user, password));
}

double millis(std::chrono::steady_clock::duration d)
{
    return std::chrono::duration<double, std::milli>(d).count();
}

std::size_t count_of(const std::string& text, const std::string& needle)
{
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
        ++n;
    return n;
}

/// Every regular file under dir with its bytes.
std::vector<std::pair<fs::path, std::string>> all_files(const fs::path& dir)
{
    std::vector<std::pair<fs::path, std::string>> out;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
        if (!entry.is_regular_file())
            continue;
        out.emplace_back(entry.path(), read_file(entry.path()));
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(register_op)

BOOST_AUTO_TEST_CASE(register_replies_with_the_user_and_never_the_password, *utf::timeout(60))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    const std::string password = "Register-Secret-4242";
    const auto r = conn.call({{"op", "register"}, {"id", "r-1"}, {"user", "alice"}, {"password", password}});
    check_ok_user(r, "register", "alice");
    BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value("r-1")));
    BOOST_TEST(r.header.at("size").to_number<std::int64_t>() == 0);
    BOOST_TEST(!r.header.contains("password"));
    BOOST_TEST(json::serialize(r.header).find(password) == std::string::npos);
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(register_of_a_taken_name_is_user_exists, *utf::timeout(60))
{
    daemon_process fxd(fast());
    register_ok(fxd.tcp_port(), "alice", "first-password");
    connection conn(localhost, fxd.tcp_port());
    check_error(conn.call(creds("register", "alice", "second-password")), "register", "user_exists");
    check_usable(conn);
    // The first password still holds; the second was not stored.
    check_ok_user(conn.call(creds("login", "alice", "first-password")), "login", "alice");
    check_error(conn.call(creds("login", "alice", "second-password")), "login", "bad_credentials");
}

BOOST_AUTO_TEST_CASE(register_when_closed_is_registration_closed, *utf::timeout(60))
{
    daemon_process fxd(fast({"--set", "auth.allow_register=false"}));
    connection conn(localhost, fxd.tcp_port());
    check_error(conn.call(creds("register", "alice", "a-good-password")), "register", "registration_closed");
    check_usable(conn);
    // Nothing was stored: the user cannot log in.
    check_error(conn.call(creds("login", "alice", "a-good-password")), "login", "bad_credentials");
}

BOOST_AUTO_TEST_CASE(register_refuses_every_bad_user_name, *utf::timeout(120))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    const std::vector<std::string> bad{
        "",                      // empty
        std::string(33, 'a'),    // 33 characters
        "Alice",                 // uppercase
        "aLICE",                 // uppercase later on
        ".alice",                // leading '.'
        "_alice",                // leading '_'
        "-alice",                // leading '-'
        "al ice",                // space
        "al/ice",                // slash
        "al\\ice",               // backslash
        "\xc3\xa5lice",          // non-ASCII (å)
        "alic\xc3\xa9",          // non-ASCII later on (é)
        "alice\n",               // control character
        std::string("al\0ce", 5), // NUL
        "al:ice",                // other punctuation
        "..",                    // dots only
    };
    for (const auto& name : bad) {
        BOOST_TEST_CONTEXT("user name " << json::serialize(json::value(name)))
        {
            check_error(conn.call(creds("register", name, "a-good-password")), "register", "bad_request");
            check_error(conn.call(creds("login", name, "a-good-password")), "login", "bad_request");
            check_usable(conn);
        }
    }
    BOOST_TEST(fxd.log().find("registered user") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(register_accepts_names_at_the_edges_of_the_rule, *utf::timeout(120))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    for (const std::string& name : {std::string("a"), std::string("7"), std::string(32, 'z'), std::string("a.b_c-d"),
                                   std::string("0-._"), std::string("z9.")}) {
        BOOST_TEST_CONTEXT("user name " << name)
        {
            check_ok_user(conn.call(creds("register", name, "a-good-password")), "register", name);
            check_ok_user(conn.call(creds("login", name, "a-good-password")), "login", name);
        }
    }
}

BOOST_AUTO_TEST_CASE(register_enforces_password_length_in_bytes, *utf::timeout(120))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    check_error(conn.call(creds("register", "u7", std::string(7, 'p'))), "register", "bad_request");
    check_error(conn.call(creds("register", "u1025", std::string(1025, 'p'))), "register", "bad_request");
    check_error(conn.call(creds("register", "uempty", "")), "register", "bad_request");
    // The rule counts bytes: three two-byte characters are 6 bytes (too short), four are 8 (enough).
    check_error(conn.call(creds("register", "u6b", "\xc3\xa9\xc3\xa9\xc3\xa9")), "register", "bad_request");
    check_usable(conn);

    const std::string eight(8, 'p');
    const std::string max(1024, 'q');
    const std::string four_chars_eight_bytes = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    check_ok_user(conn.call(creds("register", "u8", eight)), "register", "u8");
    check_ok_user(conn.call(creds("register", "u1024", max)), "register", "u1024");
    check_ok_user(conn.call(creds("register", "u8b", four_chars_eight_bytes)), "register", "u8b");
    check_ok_user(conn.call(creds("login", "u8", eight)), "login", "u8");
    check_ok_user(conn.call(creds("login", "u1024", max)), "login", "u1024");
    check_ok_user(conn.call(creds("login", "u8b", four_chars_eight_bytes)), "login", "u8b");
    // The refused ones were not stored.
    for (const char* user : {"u7", "u1025", "uempty", "u6b"})
        check_error(conn.call(creds("login", user, "a-good-password")), "login", "bad_credentials");
    // login applies the same length rule.
    check_error(conn.call(creds("login", "u8", std::string(7, 'p'))), "login", "bad_request");
    check_error(conn.call(creds("login", "u8", std::string(1025, 'p'))), "login", "bad_request");
}

BOOST_AUTO_TEST_CASE(register_and_login_refuse_missing_and_mistyped_fields, *utf::timeout(120))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    register_ok(fxd.tcp_port(), "alice", "a-good-password");
    const std::vector<std::pair<std::string, json::value>> wrong{
        {"number", json::value(5)},
        {"null", json::value(nullptr)},
        {"array", json::array{"alice"}},
        {"object", json::object{{"name", "alice"}}},
        {"bool", json::value(true)},
    };
    for (const char* op : {"register", "login"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            check_error(conn.call({{"op", op}, {"password", "a-good-password"}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"user", "alice"}}), op, "bad_request");
            check_error(conn.call({{"op", op}}), op, "bad_request");
            for (const auto& [what, value] : wrong) {
                BOOST_TEST_CONTEXT("wrong type: " << what)
                {
                    check_error(conn.call({{"op", op}, {"user", value}, {"password", "a-good-password"}}), op,
                                "bad_request");
                    check_error(conn.call({{"op", op}, {"user", "alice"}, {"password", value}}), op, "bad_request");
                }
            }
            check_usable(conn);
        }
    }
    BOOST_TEST(whoami(conn) == "<null>");
    // None of those counted as a failed login.
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "logins.failed") == 0u);
}

BOOST_AUTO_TEST_CASE(auth_ops_are_not_offered_over_udp, *utf::timeout(60))
{
    daemon_process fxd(fast());
    for (const char* op : {"register", "login", "logout", "whoami"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            const auto datagram = fxd::client::make_frame(creds(op, "alice", "a-good-password"));
            const auto answer = fxd::client::udp_exchange(localhost, fxd.udp_port(), datagram, 5s);
            BOOST_TEST_REQUIRE(answer.has_value());
            const auto r = fxd::client::parse_frame(*answer);
            BOOST_TEST(r.code() == "unsupported");
        }
    }
    connection conn(localhost, fxd.tcp_port());
    check_error(conn.call(creds("login", "alice", "a-good-password")), "login", "bad_credentials");
}

BOOST_AUTO_TEST_CASE(hello_lists_the_account_ops, *utf::timeout(60))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    const auto r = conn.call({{"op", "hello"}});
    BOOST_TEST_REQUIRE(r.ok());
    const auto* ops = r.header.if_contains("ops");
    BOOST_TEST_REQUIRE((ops && ops->is_array()));
    for (const char* op : {"register", "login", "logout", "whoami"}) {
        bool found = false;
        for (const auto& v : ops->as_array())
            found = found || (v.is_string() && v.get_string() == op);
        BOOST_TEST(found, "hello lists " << op);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(login_op)

BOOST_AUTO_TEST_CASE(login_makes_the_connection_that_user_until_logout, *utf::timeout(60))
{
    daemon_process fxd(fast());
    register_ok(fxd.tcp_port(), "alice", "alice-password");
    register_ok(fxd.tcp_port(), "bob", "bob-password");
    connection conn(localhost, fxd.tcp_port());
    connection other(localhost, fxd.tcp_port());
    BOOST_TEST(whoami(conn) == "<null>");

    const auto r = conn.call({{"op", "login"}, {"id", 12}, {"user", "alice"}, {"password", "alice-password"}});
    check_ok_user(r, "login", "alice");
    BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value(12)));
    BOOST_TEST(whoami(conn) == "alice");
    BOOST_TEST(whoami(other) == "<null>"); // a login belongs to its connection
    connection third(localhost, fxd.tcp_port());
    BOOST_TEST(whoami(third) == "<null>");

    const auto out = conn.call({{"op", "logout"}, {"id", 13}});
    BOOST_TEST(out.ok());
    BOOST_TEST(str(out, "op") == "logout");
    BOOST_TEST(out.header.at("size").to_number<std::int64_t>() == 0);
    BOOST_TEST(out.body.empty());
    BOOST_TEST(whoami(conn) == "<null>");
    // A logout without a login is fine too.
    BOOST_TEST(conn.call({{"op", "logout"}}).ok());
    BOOST_TEST(whoami(conn) == "<null>");

    // Logging in again, then as someone else, switches the identity.
    check_ok_user(conn.call(creds("login", "alice", "alice-password")), "login", "alice");
    check_ok_user(conn.call(creds("login", "bob", "bob-password")), "login", "bob");
    BOOST_TEST(whoami(conn) == "bob");
    check_ok_user(other.call(creds("login", "alice", "alice-password")), "login", "alice");
    BOOST_TEST(whoami(other) == "alice");
    BOOST_TEST(whoami(conn) == "bob");
}

BOOST_AUTO_TEST_CASE(unknown_user_and_wrong_password_get_the_same_reply, *utf::timeout(60))
{
    daemon_process fxd(fast());
    register_ok(fxd.tcp_port(), "alice", "alice-password");
    connection conn(localhost, fxd.tcp_port());
    const auto wrong = conn.call({{"op", "login"}, {"id", 5}, {"user", "alice"}, {"password", "not-the-password"}});
    const auto unknown = conn.call({{"op", "login"}, {"id", 5}, {"user", "nobody"}, {"password", "not-the-password"}});
    check_error(wrong, "login", "bad_credentials");
    check_error(unknown, "login", "bad_credentials");
    BOOST_TEST(json::serialize(wrong.header) == json::serialize(unknown.header)); // byte for byte
    BOOST_TEST(wrong.body == unknown.body);
    BOOST_TEST(whoami(conn) == "<null>");
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(a_failed_login_reveals_no_password_in_reply_or_log, *utf::timeout(60))
{
    daemon_process fxd(fast());
    const std::string right = "Right-Password-9371";
    const std::string wrong = "Wrong-Password-5820";
    register_ok(fxd.tcp_port(), "alice", right);
    connection conn(localhost, fxd.tcp_port());
    const auto r = conn.call(creds("login", "alice", wrong));
    check_error(r, "login", "bad_credentials");
    BOOST_TEST(json::serialize(r.header).find(wrong) == std::string::npos);
    check_ok_user(conn.call(creds("login", "alice", right)), "login", "alice");
    BOOST_TEST(eventually([&] { return fxd.log().find("auth failure") != std::string::npos; }, 20s));
    const auto log = fxd.log();
    BOOST_TEST(log.find(right) == std::string::npos);
    BOOST_TEST(log.find(wrong) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(pipelined_account_requests_reply_in_order, *utf::timeout(60))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port());
    conn.send({{"op", "register"}, {"id", 1}, {"user", "alice"}, {"password", "alice-password"}});
    conn.send({{"op", "ping"}, {"id", 2}});
    conn.send({{"op", "login"}, {"id", 3}, {"user", "alice"}, {"password", "alice-password"}});
    conn.send({{"op", "whoami"}, {"id", 4}});
    conn.send({{"op", "login"}, {"id", 5}, {"user", "alice"}, {"password", "wrong-password"}});
    conn.send({{"op", "logout"}, {"id", 6}});
    conn.send({{"op", "whoami"}, {"id", 7}});
    const char* ops[] = {"register", "ping", "login", "whoami", "login", "logout", "whoami"};
    std::vector<reply> replies;
    for (int i = 1; i <= 7; ++i) {
        replies.push_back(conn.receive());
        const auto& r = replies.back();
        BOOST_TEST_INFO("reply " << i << ": " << json::serialize(r.header));
        BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value(i)));
        BOOST_TEST(str(r, "op") == ops[i - 1]);
    }
    BOOST_TEST(replies[0].ok());
    BOOST_TEST(replies[2].ok());
    BOOST_TEST(str(replies[3], "user") == "alice"); // the login finished before whoami was answered
    BOOST_TEST(replies[4].code() == "bad_credentials");
    BOOST_TEST(replies[6].header.at("user").is_null());
}

BOOST_AUTO_TEST_CASE(stats_count_logins_ok_failed_and_rate_limited, *utf::timeout(60))
{
    daemon_process fxd(fast({"--set", "auth.max_failures=2"}));
    register_ok(fxd.tcp_port(), "alice", "alice-password");
    const auto before = stats_snapshot(fxd.tcp_port());
    BOOST_TEST(counter(before, "logins.ok") == 0u);
    BOOST_TEST(counter(before, "logins.failed") == 0u);
    BOOST_TEST(counter(before, "logins.rate_limited") == 0u);
    BOOST_TEST(counter(before, "workers.queue_depth") == 0u);

    BOOST_TEST(login(fxd.tcp_port(), "alice", "alice-password").ok());
    BOOST_TEST(login(fxd.tcp_port(), "alice", "wrong-password").code() == "bad_credentials");
    BOOST_TEST(login(fxd.tcp_port(), "nobody", "wrong-password").code() == "bad_credentials");
    BOOST_TEST(login(fxd.tcp_port(), "alice", "wrong-password").code() == "bad_credentials");
    BOOST_TEST(login(fxd.tcp_port(), "alice", "alice-password").code() == "rate_limited");

    const auto after = stats_snapshot(fxd.tcp_port());
    BOOST_TEST(counter(after, "logins.ok") == 1u);
    BOOST_TEST(counter(after, "logins.failed") == 3u);
    BOOST_TEST(counter(after, "logins.rate_limited") == 1u);
    BOOST_TEST(counter(after, "workers.queue_depth") == 0u);
}

BOOST_AUTO_TEST_CASE(a_full_hash_queue_answers_busy, *utf::timeout(120))
{
    // One hashing thread, one queued hash, and a hash slow enough that the other logins arrive while it runs.
    daemon_process fxd({"--set", "workers.hash_threads=1", "--set", "workers.hash_queue_limit=1", "--set",
                        "auth.hash_memory_bytes=67108864", "--set", "auth.hash_passes=4"});
    register_ok(fxd.tcp_port(), "alice", "alice-password");
    std::vector<connection> conns;
    for (int i = 0; i < 4; ++i) {
        conns.emplace_back(localhost, fxd.tcp_port(), 60s);
        check_usable(conns.back());
    }
    for (auto& c : conns)
        c.send(creds("login", "alice", "alice-password"));
    int ok = 0;
    int busy = 0;
    for (auto& c : conns) {
        const auto r = c.receive();
        BOOST_TEST_INFO("reply: " << json::serialize(r.header));
        BOOST_TEST((r.ok() || r.code() == "busy"));
        ok += r.ok() ? 1 : 0;
        busy += r.code() == "busy" ? 1 : 0;
        check_usable(c);
    }
    BOOST_TEST_MESSAGE("with workers.hash_queue_limit=1, of 4 logins at once: " << ok << " ok, " << busy << " busy");
    BOOST_TEST(ok >= 1);
    BOOST_TEST(busy >= 1);
    // A busy login is no failed login.
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "logins.failed") == 0u);
    BOOST_TEST(login(fxd.tcp_port(), "alice", "alice-password").ok());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lockout)

BOOST_AUTO_TEST_CASE(max_failures_lock_out_that_user_from_that_address_only, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "auth.max_failures=3"}));
    const auto port = fxd.tcp_port();
    register_ok(port, "alice", "alice-password");
    register_ok(port, "bob", "bob-password");

    connection attacker(localhost, port);
    for (int i = 0; i < 3; ++i)
        check_error(attacker.call(creds("login", "alice", "guess-" + std::to_string(i) + "-xx")), "login",
                    "bad_credentials");
    // Now even the right password is refused from this address, on any connection.
    check_error(attacker.call(creds("login", "alice", "alice-password")), "login", "rate_limited");
    check_error(login(port, "alice", "alice-password"), "login", "rate_limited");
    check_error(login(port, "alice", "guess-again-xx"), "login", "rate_limited");
    BOOST_TEST(whoami(attacker) == "<null>");
    check_usable(attacker);

    // The same user from another address is not locked out.
    {
        connection elsewhere(localhost, port, 30s, other_host);
        check_ok_user(elsewhere.call(creds("login", "alice", "alice-password")), "login", "alice");
        BOOST_TEST(whoami(elsewhere) == "alice");
    }
    // Another user from the locked address is not locked out either.
    check_ok_user(attacker.call(creds("login", "bob", "bob-password")), "login", "bob");
    BOOST_TEST(whoami(attacker) == "bob");
    // And alice is still refused here.
    check_error(login(port, "alice", "alice-password"), "login", "rate_limited");
}

BOOST_AUTO_TEST_CASE(per_address_limit_locks_out_every_user_from_that_address, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "auth.max_failures=100", "--set", "auth.max_failures_per_address=4"}));
    const auto port = fxd.tcp_port();
    register_ok(port, "alice", "alice-password");
    register_ok(port, "bob", "bob-password");
    connection attacker(localhost, port);
    // Failures spread over several names, known and unknown.
    check_error(attacker.call(creds("login", "ghost1", "guess-password")), "login", "bad_credentials");
    check_error(attacker.call(creds("login", "alice", "guess-password")), "login", "bad_credentials");
    check_error(attacker.call(creds("login", "ghost2", "guess-password")), "login", "bad_credentials");
    // Below the limit, bob logs in from here.
    check_ok_user(login(port, "bob", "bob-password"), "login", "bob");
    check_error(attacker.call(creds("login", "ghost3", "guess-password")), "login", "bad_credentials");
    // At the limit, nobody does from this address...
    check_error(login(port, "bob", "bob-password"), "login", "rate_limited");
    check_error(login(port, "alice", "alice-password"), "login", "rate_limited");
    check_error(login(port, "carol", "carol-password"), "login", "rate_limited");
    // ...while another address is served as usual.
    check_ok_user(login(port, "bob", "bob-password", other_host), "login", "bob");
    check_ok_user(login(port, "alice", "alice-password", other_host), "login", "alice");
    check_error(login(port, "carol", "carol-password", other_host), "login", "bad_credentials");
}

BOOST_AUTO_TEST_CASE(a_successful_login_clears_that_pair_count, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "auth.max_failures=3"}));
    const auto port = fxd.tcp_port();
    register_ok(port, "alice", "alice-password");
    connection conn(localhost, port);
    for (int round = 0; round < 3; ++round) {
        BOOST_TEST_CONTEXT("round " << round)
        {
            // Two failures, then a success: never three in a row, so never locked out.
            check_error(conn.call(creds("login", "alice", "wrong-password")), "login", "bad_credentials");
            check_error(conn.call(creds("login", "alice", "wrong-password")), "login", "bad_credentials");
            check_ok_user(conn.call(creds("login", "alice", "alice-password")), "login", "alice");
        }
    }
}

BOOST_AUTO_TEST_CASE(lockout_ends_after_lockout_s, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "auth.max_failures=2", "--set", "auth.lockout_s=1"}));
    const auto port = fxd.tcp_port();
    register_ok(port, "alice", "alice-password");
    check_error(login(port, "alice", "wrong-password"), "login", "bad_credentials");
    check_error(login(port, "alice", "wrong-password"), "login", "bad_credentials");
    check_error(login(port, "alice", "alice-password"), "login", "rate_limited");
    // Refused attempts do not count as failures, so polling with the right password ends once the window passed.
    std::string last;
    const bool freed = eventually(
        [&] {
            const auto r = login(port, "alice", "alice-password");
            last = r.ok() ? "ok" : r.code();
            return r.ok();
        },
        60s, 250ms);
    BOOST_TEST(freed, "still locked out; last reply " << last);
    BOOST_TEST(counter(stats_snapshot(port), "logins.failed") == 2u);
}

BOOST_AUTO_TEST_CASE(each_failure_logs_a_fail2ban_matchable_line, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "auth.max_failures=2"}));
    const auto port = fxd.tcp_port();
    register_ok(port, "alice", "alice-password");
    check_error(login(port, "alice", "wrong-password"), "login", "bad_credentials");
    check_error(login(port, "nobody", "wrong-password", other_host), "login", "bad_credentials");
    check_error(login(port, "alice", "wrong-password"), "login", "bad_credentials");
    check_error(login(port, "alice", "alice-password"), "login", "rate_limited");
    check_ok_user(login(port, "alice", "alice-password", other_host), "login", "alice");

    const std::regex failure(R"re(auth failure: user="([a-z0-9_.-]*)" addr=(\S+)( \(rate limited\))?\s*$)re");
    std::vector<std::string> seen;
    BOOST_TEST(eventually([&] {
        seen.clear();
        std::istringstream lines(fxd.log());
        for (std::string line; std::getline(lines, line);) {
            std::smatch m;
            if (std::regex_search(line, m, failure))
                seen.push_back(m[1].str() + "@" + m[2].str() + (m[3].matched ? " limited" : ""));
        }
        return seen.size() >= 4;
    }, 20s));
    const std::vector<std::string> expected{"alice@127.0.0.1", "nobody@127.0.0.2", "alice@127.0.0.1",
                                            "alice@127.0.0.1 limited"};
    BOOST_TEST(seen == expected, boost::test_tools::per_element());
    // One line per failure: the successful login is not logged as a failure.
    const auto log = fxd.log();
    BOOST_TEST(count_of(log, "auth failure:") == 4u);
    BOOST_TEST(log.find("alice-password") == std::string::npos);
    BOOST_TEST(log.find("wrong-password") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(user_command)

BOOST_AUTO_TEST_CASE(user_add_list_passwd_del_work_on_the_daemons_database, *utf::timeout(180))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";

    auto r = fxd_user(storage, {"add", "bob"}, "bob-password\n");
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.out.find("bob-password") == std::string::npos);
    BOOST_TEST(r.err.find("bob-password") == std::string::npos);
    r = fxd_user(storage, {"add", "alice"}, "alice-password\n");
    BOOST_TEST(r.status == 0, r.err);
    r = fxd_user(storage, {"add", "carol"}, "carol-password"); // no final newline
    BOOST_TEST(r.status == 0, r.err);

    r = fxd_user(storage, {"list"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.out == "alice\nbob\ncarol\n");

    // The daemon, on the same storage, lets them log in over the network.
    daemon_process fxd(fast(), storage);
    const auto port = fxd.tcp_port();
    check_ok_user(login(port, "alice", "alice-password"), "login", "alice");
    check_ok_user(login(port, "bob", "bob-password"), "login", "bob");
    check_ok_user(login(port, "carol", "carol-password"), "login", "carol");
    register_ok(port, "dave", "dave-password");

    // passwd while the daemon runs: the new password works at once, the old one no longer.
    r = fxd_user(storage, {"passwd", "alice"}, "alice-new-password\n");
    BOOST_TEST(r.status == 0, r.err);
    check_ok_user(login(port, "alice", "alice-new-password"), "login", "alice");
    check_error(login(port, "alice", "alice-password"), "login", "bad_credentials");

    // del: that user can no longer log in; the others can.
    r = fxd_user(storage, {"del", "bob"});
    BOOST_TEST(r.status == 0, r.err);
    check_error(login(port, "bob", "bob-password"), "login", "bad_credentials");
    check_ok_user(login(port, "carol", "carol-password"), "login", "carol");

    // A user registered over the network is listed.
    r = fxd_user(storage, {"list"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.out == "alice\ncarol\ndave\n");
}

BOOST_AUTO_TEST_CASE(user_commands_refuse_with_exit_status_1, *utf::timeout(120))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";
    BOOST_TEST(fxd_user(storage, {"add", "alice"}, "alice-password\n").status == 0);

    auto r = fxd_user(storage, {"add", "alice"}, "other-password\n");
    BOOST_TEST(r.status == 1);
    BOOST_TEST(!r.err.empty());
    r = fxd_user(storage, {"passwd", "nobody"}, "other-password\n");
    BOOST_TEST(r.status == 1);
    BOOST_TEST(!r.err.empty());
    r = fxd_user(storage, {"del", "nobody"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(!r.err.empty());

    BOOST_TEST(fxd_user(storage, {"list"}).out == "alice\n");
    daemon_process fxd(fast(), storage);
    check_ok_user(login(fxd.tcp_port(), "alice", "alice-password"), "login", "alice"); // the refused add changed nothing
}

BOOST_AUTO_TEST_CASE(only_user_add_creates_a_database_and_failures_name_the_one_used, *utf::timeout(120))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";
    const std::string db = (storage / "fxd.db").string();
    const std::vector<std::vector<std::string>> not_add{
        {"list"}, {"passwd", "alice"}, {"del", "alice"}, {"admin", "alice", "on"}};
    for (const auto& command : not_add) {
        BOOST_TEST_CONTEXT("fxd user " << command.front())
        {
            const auto r = fxd_user(storage, command, "alice-password\n");
            BOOST_TEST(r.status == 1);
            BOOST_TEST(r.out.empty());
            BOOST_TEST(r.err.find("no user database at " + db + " (storage.dir is " + storage.string() + ")") !=
                           std::string::npos,
                       r.err);
            BOOST_TEST(r.err.find("fxd user add") != std::string::npos, r.err);
            BOOST_TEST(!fs::exists(db));
        }
    }
    BOOST_TEST(!fs::exists(storage)); // nothing made on the way either

    // auth.db_path moves the database; the message says which key put it there.
    const auto elsewhere = dir.path() / "users.db";
    auto r = run_fxd(fast({"--set", "storage.dir=" + storage.string(), "--set", "auth.db_path=" + elsewhere.string(),
                           "user", "list"}));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("no user database at " + elsewhere.string() + " (auth.db_path)") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(elsewhere));

    // add makes it; from then on every refusal names the database it used.
    r = fxd_user(storage, {"add", "alice"}, "alice-password\n");
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(fs::exists(db));
    for (const auto& command : std::vector<std::vector<std::string>>{{"del", "nobody"}, {"passwd", "nobody"},
                                                                      {"admin", "nobody", "on"}, {"add", "alice"}}) {
        BOOST_TEST_CONTEXT("fxd user " << command.front() << " " << command.at(1))
        {
            r = fxd_user(storage, command, "other-password\n");
            BOOST_TEST(r.status == 1);
            BOOST_TEST(r.err.find(db) != std::string::npos, r.err);
        }
    }
    r = fxd_user(storage, {"list"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.out == "alice\n");
    BOOST_TEST(r.err.empty(), r.err);
}

BOOST_AUTO_TEST_CASE(user_commands_refuse_bad_usage_with_exit_status_2, *utf::timeout(120))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";
    const std::vector<std::vector<std::string>> bad_usage{
        {},                          // no command
        {"frobnicate"},              // unknown command
        {"add"},                     // no name
        {"add", "a", "b"},           // two names
        {"list", "extra"},           // list takes none
        {"add", "Alice"},            // bad names
        {"add", "_alice"},
        {"add", std::string(33, 'a')},
        {"passwd", "Alice"},
        {"del", "al/ice"},
    };
    for (const auto& command : bad_usage) {
        std::string shown;
        for (const auto& a : command)
            shown += a + " ";
        BOOST_TEST_CONTEXT("fxd user " << shown)
        {
            const auto r = fxd_user(storage, command, "a-good-password\n");
            BOOST_TEST(r.status == 2);
            BOOST_TEST(!r.err.empty());
        }
    }
    // Passwords outside 8..1024 bytes, or none at all.
    for (const std::string& password : {std::string("short77\n"), std::string(1025, 'p') + "\n", std::string()}) {
        BOOST_TEST_CONTEXT("password of " << password.size() << " bytes with newline")
        {
            const auto r = fxd_user(storage, {"add", "alice"}, password);
            BOOST_TEST(r.status == 2);
        }
    }
    BOOST_TEST(fxd_user(storage, {"list"}).out.empty()); // nothing was added
    BOOST_TEST(fxd_user(storage, {"add", "alice"}, std::string(8, 'p') + "\n").status == 0);
    BOOST_TEST(fxd_user(storage, {"passwd", "alice"}, "short77\n").status == 2);
    daemon_process fxd(fast(), storage);
    check_ok_user(login(fxd.tcp_port(), "alice", std::string(8, 'p')), "login", "alice");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(storage_on_disk)

BOOST_AUTO_TEST_CASE(no_file_under_storage_holds_a_plain_password, *utf::timeout(120))
{
    daemon_process fxd(fast());
    const auto port = fxd.tcp_port();
    const std::string password = "PlainText-Canary-3141592653";
    const std::string wrong = "Wrong-Canary-2718281828";
    const std::string changed = "Changed-Canary-1618033988";
    register_ok(port, "alice", password);
    check_ok_user(login(port, "alice", password), "login", "alice");
    check_error(login(port, "alice", wrong), "login", "bad_credentials");
    check_error(login(port, "nobody", wrong), "login", "bad_credentials");
    BOOST_TEST(fxd_user(fxd.storage(), {"passwd", "alice"}, changed + "\n").status == 0);
    check_ok_user(login(port, "alice", changed), "login", "alice");

    auto scan = [&](const char* when) {
        const auto files = all_files(fxd.storage());
        bool saw_db = false;
        for (const auto& [path, bytes] : files) {
            BOOST_TEST_CONTEXT(when << ": " << path)
            {
                BOOST_TEST(bytes.find(password) == std::string::npos);
                BOOST_TEST(bytes.find(wrong) == std::string::npos);
                BOOST_TEST(bytes.find(changed) == std::string::npos);
            }
            saw_db = saw_db || path.filename() == "fxd.db";
        }
        BOOST_TEST(saw_db, when << ": the database is storage.dir/fxd.db");
        return files.size();
    };
    const auto running = scan("daemon running");
    BOOST_TEST_MESSAGE("files scanned under storage.dir while running: " << running);
    BOOST_TEST(running >= 2u); // the database and its -wal at least
    BOOST_TEST(fxd.log().find(password) == std::string::npos);
    fxd.signal(SIGTERM);
    BOOST_TEST(fxd.wait_exit(30s).value_or(-1) == 0);
    scan("daemon stopped");
}

BOOST_AUTO_TEST_CASE(db_path_moves_the_database, *utf::timeout(60))
{
    temp_dir elsewhere;
    const auto db = elsewhere.path() / "users.sqlite";
    daemon_process fxd(fast({"--set", "auth.db_path=" + db.string()}));
    register_ok(fxd.tcp_port(), "alice", "alice-password");
    BOOST_TEST(fs::exists(db));
    BOOST_TEST(!fs::exists(fxd.storage() / "fxd.db"));
    check_ok_user(login(fxd.tcp_port(), "alice", "alice-password"), "login", "alice");
}

BOOST_AUTO_TEST_CASE(every_acknowledged_registration_survives_kill_9, *utf::timeout(180))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";
    std::vector<std::string> acknowledged;
    // 80 registrations from one address here: past the default limit of 20.
    const auto many = fast({"--set", "auth.max_registrations_per_address=1000"});
    {
        daemon_process fxd(many, storage);
        // Four connections, each pipelining ten registrations.
        std::vector<connection> conns;
        for (int c = 0; c < 4; ++c)
            conns.emplace_back(localhost, fxd.tcp_port(), 30s);
        for (int i = 0; i < 10; ++i) {
            for (int c = 0; c < 4; ++c) {
                const auto name = "user" + std::to_string(c) + "-" + std::to_string(i);
                conns[static_cast<std::size_t>(c)].send(creds("register", name, "pw-of-" + name));
            }
        }
        for (int i = 0; i < 10; ++i) {
            for (int c = 0; c < 4; ++c) {
                const auto r = conns[static_cast<std::size_t>(c)].receive();
                BOOST_TEST(r.ok(), json::serialize(r.header));
                if (r.ok())
                    acknowledged.push_back(str(r, "user"));
            }
        }
        fxd.signal(SIGKILL); // right after the last ok reply
        BOOST_TEST(fxd.wait_exit(10s).value_or(-1) == 128 + SIGKILL);
    }
    BOOST_TEST(acknowledged.size() == 40u);
    daemon_process again(many, storage);
    connection conn(localhost, again.tcp_port());
    for (const auto& name : acknowledged) {
        BOOST_TEST_CONTEXT("user " << name)
        {
            check_ok_user(conn.call(creds("login", name, "pw-of-" + name)), "login", name);
            check_error(conn.call(creds("register", name, "another-password")), "register", "user_exists");
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(hashing_off_the_event_loop)

BOOST_AUTO_TEST_CASE(a_ping_is_answered_while_eight_logins_hash, *utf::timeout(240))
{
    daemon_process fxd; // the default Argon2id cost and worker count
    const auto port = fxd.tcp_port();
    register_ok(port, "alice", "alice-password");
    {
        const auto start = std::chrono::steady_clock::now();
        BOOST_TEST(login(port, "alice", "alice-password").ok());
        BOOST_TEST_MESSAGE("one login at the default cost, idle daemon: "
                           << millis(std::chrono::steady_clock::now() - start)
                           << " ms round trip");
    }

    std::vector<connection> logins;
    for (int i = 0; i < 8; ++i) {
        logins.emplace_back(localhost, port, 120s);
        check_usable(logins.back(), i); // the daemon has accepted and serves each one
    }
    connection probe(localhost, port, 120s);
    check_usable(probe);

    for (auto& c : logins)
        c.send(creds("login", "alice", "alice-password"));
    // Hashing has started: jobs sit on the worker pool.
    std::uint64_t depth_before = 0;
    BOOST_TEST_REQUIRE(eventually(
        [&] {
            const auto r = probe.call({{"op", "stats"}});
            depth_before = r.ok() ? counter(body_object(r), "workers.hash_queue_depth") : 0;
            return depth_before > 0;
        },
        60s, 1ms));

    const auto sent = std::chrono::steady_clock::now();
    const auto pong = probe.call({{"op", "ping"}, {"id", "while-hashing"}});
    const auto ping_took = std::chrono::steady_clock::now() - sent;
    // At the moment the ping reply arrived, some login had not been answered yet...
    int answered = 0;
    for (const auto& c : logins)
        answered += has_data_now(c) ? 1 : 0;
    // ...and the daemon still had hashes queued or running.
    const auto after = probe.call({{"op", "stats"}});
    BOOST_TEST(pong.ok());
    BOOST_TEST(str(pong, "id") == "while-hashing");
    BOOST_TEST_REQUIRE(after.ok());
    const auto depth_after = counter(body_object(after), "workers.hash_queue_depth");
    BOOST_TEST_MESSAGE("queue depth before the ping " << depth_before << ", after it " << depth_after << "; "
                       << answered << " of 8 logins answered when the ping reply arrived; ping round trip "
                       << millis(ping_took) << " ms");
    BOOST_TEST(answered < 8);
    BOOST_TEST(depth_after > 0u);

    // The logins all succeed afterwards.
    const auto wait_start = std::chrono::steady_clock::now();
    for (auto& c : logins)
        check_ok_user(c.receive(), "login", "alice");
    BOOST_TEST_MESSAGE("the 8 logins finished "
                       << millis(std::chrono::steady_clock::now() - wait_start)
                       << " ms after the ping reply");
    for (auto& c : logins)
        BOOST_TEST(whoami(c) == "alice");
    BOOST_TEST(counter(stats_snapshot(port), "workers.hash_queue_depth") == 0u);
    BOOST_TEST(counter(stats_snapshot(port), "logins.ok") == 9u);
}

BOOST_AUTO_TEST_SUITE_END()
