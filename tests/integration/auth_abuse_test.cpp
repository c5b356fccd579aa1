// Abuse of the account ops against the real daemon (issue 14, findings 4 and
// 5): concurrent password guesses meet auth.max_failures exactly like
// sequential ones, registrations per address are bounded, and a flood of
// register and login never holds up a logged-in user's file ops.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

using fxd::client::connection;
using fxd::client::reply;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace utf = boost::unit_test;

namespace {

const std::string other_host = "127.0.0.2";

json::object creds(std::string_view op, std::string_view user, std::string_view password)
{
    return {{"op", op}, {"user", user}, {"password", password}};
}

/// n connections, each accepted and served before the caller sends anything.
std::vector<connection> open_connections(std::uint16_t port, int n, const std::string& from = localhost)
{
    std::vector<connection> conns;
    for (int i = 0; i < n; ++i) {
        conns.emplace_back(localhost, port, 120s, from);
        check_usable(conns.back(), i);
    }
    return conns;
}

} // namespace

BOOST_AUTO_TEST_SUITE(login_race)

BOOST_AUTO_TEST_CASE(thirty_concurrent_wrong_logins_get_at_most_max_failures_password_checks, *utf::timeout(120))
{
    // The defaults but a per-address limit out of the way: only the pair's limit of 5 is at stake.
    daemon_process fxd(fast({"--set", "auth.max_failures_per_address=1000"}));
    const auto port = fxd.tcp_port();
    register_user(port, "alice");
    auto conns = open_connections(port, 30);
    for (auto& c : conns)
        c.send(creds("login", "alice", "wrong-password"));
    int bad = 0;
    int limited = 0;
    for (auto& c : conns) {
        const auto r = c.receive();
        BOOST_TEST_INFO("reply: " << json::serialize(r.header));
        BOOST_TEST((r.code() == "bad_credentials" || r.code() == "rate_limited"));
        bad += r.code() == "bad_credentials" ? 1 : 0;
        limited += r.code() == "rate_limited" ? 1 : 0;
    }
    BOOST_TEST_MESSAGE("30 concurrent wrong logins, auth.max_failures=5: " << bad << " bad_credentials, " << limited
                                                                           << " rate_limited");
    BOOST_TEST(bad <= 5);
    BOOST_TEST(bad + limited == 30);
    const auto stats = stats_snapshot(port);
    BOOST_TEST(counter(stats, "logins.failed") == static_cast<std::uint64_t>(bad));
    BOOST_TEST(counter(stats, "logins.rate_limited") == static_cast<std::uint64_t>(limited));
    // Locked out from here even with the right password; another address is not.
    connection again(localhost, port);
    check_error(again.call(creds("login", "alice", password_of("alice"))), "login", "rate_limited");
    connection elsewhere(localhost, port, 30s, other_host);
    BOOST_TEST(elsewhere.call(creds("login", "alice", password_of("alice"))).ok());
}

BOOST_AUTO_TEST_CASE(concurrent_right_logins_all_succeed_past_the_limits, *utf::timeout(120))
{
    // Attempts in flight count, so a login past a limit waits for their results
    // instead of being refused: eight right logins at once all succeed.
    daemon_process fxd(fast({"--set", "auth.max_failures=2", "--set", "auth.max_failures_per_address=3"}));
    const auto port = fxd.tcp_port();
    register_user(port, "alice");
    auto conns = open_connections(port, 8);
    for (auto& c : conns)
        c.send(creds("login", "alice", password_of("alice")));
    for (auto& c : conns) {
        const auto r = c.receive();
        BOOST_TEST_INFO("reply: " << json::serialize(r.header));
        BOOST_TEST(r.ok());
    }
    // Nothing was left counted against the address: two failures still leave room.
    connection conn(localhost, port);
    check_error(conn.call(creds("login", "ghost", "wrong-password")), "login", "bad_credentials");
    check_error(conn.call(creds("login", "ghost", "wrong-password")), "login", "bad_credentials");
    BOOST_TEST(conn.call(creds("login", "alice", password_of("alice"))).ok());
    BOOST_TEST(counter(stats_snapshot(port), "logins.ok") == 9u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(registration_flood)

BOOST_AUTO_TEST_CASE(twenty_registrations_per_address_then_rate_limited, *utf::timeout(120))
{
    daemon_process fxd(fast()); // the default auth.max_registrations_per_address, 20
    const auto port = fxd.tcp_port();
    connection conn(localhost, port);
    for (int i = 0; i < 25; ++i) {
        const std::string user = "user" + std::to_string(i);
        const auto r = conn.call(creds("register", user, "some-password"));
        BOOST_TEST_INFO("registration " << i << ": " << json::serialize(r.header));
        if (i < 20)
            BOOST_TEST(r.ok());
        else
            check_error(r, "register", "rate_limited");
    }
    check_usable(conn);
    // Another address has its own count; logins from the limited one still work.
    connection elsewhere(localhost, port, 30s, other_host);
    BOOST_TEST(elsewhere.call(creds("register", "user25", "some-password")).ok());
    BOOST_TEST(conn.call(creds("login", "user0", "some-password")).ok());
    const auto stats = stats_snapshot(port);
    BOOST_TEST(counter(stats, "registrations.ok") == 21u);
    BOOST_TEST(counter(stats, "registrations.rate_limited") == 5u);
}

BOOST_AUTO_TEST_CASE(concurrent_registrations_meet_the_same_limit, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "auth.max_registrations_per_address=4", "--set", "workers.hash_queue_limit=64"}));
    auto conns = open_connections(fxd.tcp_port(), 12);
    for (std::size_t i = 0; i < conns.size(); ++i)
        conns[i].send(creds("register", "user" + std::to_string(i), "some-password"));
    int ok = 0;
    for (auto& c : conns) {
        const auto r = c.receive();
        BOOST_TEST_INFO("reply: " << json::serialize(r.header));
        BOOST_TEST((r.ok() || r.code() == "rate_limited"));
        ok += r.ok() ? 1 : 0;
    }
    BOOST_TEST(ok == 4);
}

BOOST_AUTO_TEST_CASE(a_logged_in_users_stat_completes_during_a_register_and_login_flood, *utf::timeout(240))
{
    daemon_process fxd; // the default Argon2id cost, pools and limits
    const auto port = fxd.tcp_port();
    auto alice = user_session(port, "alice", 120s);
    BOOST_TEST_REQUIRE(upload(alice, "notes.txt", "some bytes").ok());

    // 40 anonymous connections from another address, each pipelining two
    // registrations and a wrong login.
    auto flood = open_connections(port, 40, other_host);
    for (std::size_t i = 0; i < flood.size(); ++i) {
        const std::string n = std::to_string(i);
        flood[i].send(creds("register", "flood" + n + "a", "some-password"));
        flood[i].send(creds("register", "flood" + n + "b", "some-password"));
        flood[i].send(creds("login", "alice", "wrong-password"));
    }
    const auto st = alice.call({{"op", "stat"}, {"name", "notes.txt"}});
    BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
    BOOST_TEST(st.ok());
    int pending = 0;
    for (const auto& c : flood)
        pending += has_data_now(c) ? 0 : 1;

    int ok = 0;
    int refused = 0;
    for (auto& c : flood) {
        for (int k = 0; k < 3; ++k) {
            const auto r = c.receive();
            BOOST_TEST_INFO("flood reply: " << json::serialize(r.header));
            BOOST_TEST((r.ok() || r.code() == "busy" || r.code() == "rate_limited" || r.code() == "bad_credentials"));
            ok += r.ok() ? 1 : 0;
            refused += (r.code() == "busy" || r.code() == "rate_limited") ? 1 : 0;
        }
    }
    BOOST_TEST_MESSAGE("flood of 120 requests: " << ok << " ok, " << refused << " busy or rate_limited; " << pending
                                                 << " of 40 flood connections still waiting when stat answered");
    BOOST_TEST(refused > 0);
    BOOST_TEST(ok <= 20); // the registrations from other_host that got through
    BOOST_TEST(alice.call({{"op", "stat"}, {"name", "notes.txt"}}).ok());
}

BOOST_AUTO_TEST_SUITE_END()
