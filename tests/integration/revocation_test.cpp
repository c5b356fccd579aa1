// Logins revoked for real (issue 14, finding 2) and stats for this host and
// admins only (finding 7), against the real daemon with `fxd user` run as a
// separate process beside it, as an operator would.

#include "daemon_process.hpp"
#include "files.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

using fxd::client::connection;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

/// An IPv4 address of this host that is not loopback: the source address the
/// kernel would pick to reach a documentation address (connecting a UDP
/// socket sends nothing). nullopt when there is none.
std::optional<std::string> non_loopback_address()
{
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return std::nullopt;
    sockaddr_in far{};
    far.sin_family = AF_INET;
    far.sin_port = htons(9);
    ::inet_pton(AF_INET, "192.0.2.1", &far.sin_addr);
    sockaddr_in self{};
    socklen_t length = sizeof self;
    const bool found = ::connect(fd, reinterpret_cast<const sockaddr*>(&far), sizeof far) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &length) == 0;
    ::close(fd);
    if (!found)
        return std::nullopt;
    std::array<char, INET_ADDRSTRLEN> text{};
    ::inet_ntop(AF_INET, &self.sin_addr, text.data(), text.size());
    const std::string address(text.data());
    if (address.starts_with("127."))
        return std::nullopt;
    return address;
}

boost::test_tools::assertion_result have_non_loopback_address(utf::test_unit_id)
{
    boost::test_tools::assertion_result result(non_loopback_address().has_value());
    result.message() << "needs an IPv4 address of this host that is not loopback";
    return result;
}

void user_command_ok(const daemon_process& fxd, const std::vector<std::string>& command, const std::string& input = {})
{
    const auto r = fxd_user(fxd.storage(), command, input);
    BOOST_REQUIRE_MESSAGE(r.status == 0, "fxd user: " << r);
}

connection login_from(const std::string& host, std::uint16_t port, const std::string& user)
{
    connection conn(host, port, 30s);
    const auto r = conn.call({{"op", "login"}, {"user", user}, {"password", password_of(user)}});
    BOOST_REQUIRE_MESSAGE(r.ok(), "login " << user << " from " << host);
    return conn;
}

} // namespace

BOOST_AUTO_TEST_SUITE(revocation)

BOOST_AUTO_TEST_CASE(a_login_keeps_working_while_its_account_is_unchanged, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto alice = user_session(fxd.tcp_port(), "alice");
    check_upload_ok(upload(alice, "a.txt", "hello"), "a.txt", 5, sha256_of("hello"));
    // Another user's password change, and a listing by the operator, touch nothing of alice's.
    register_user(fxd.tcp_port(), "carol");
    user_command_ok(fxd, {"passwd", "carol"}, "carol-new-password\n");
    user_command_ok(fxd, {"list"});
    check_ok(stat_file(alice, "a.txt"), "stat");
    BOOST_TEST(list_names(alice) == std::vector<std::string>{"a.txt"});
    BOOST_TEST(download(alice, "a.txt").body == "hello");
}

BOOST_AUTO_TEST_CASE(passwd_beside_the_daemon_revokes_the_open_login, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto stat_conn = user_session(fxd.tcp_port(), "alice");
    auto upload_conn = login_session(fxd.tcp_port(), "alice");
    check_upload_ok(upload(stat_conn, "a.txt", "hello"), "a.txt", 5, sha256_of("hello"));

    user_command_ok(fxd, {"passwd", "alice"}, "alice-new-password\n");

    check_error(stat_file(stat_conn, "a.txt"), "stat", "unauthorized");
    check_error(upload(upload_conn, "b.txt", "after passwd"), "upload", "unauthorized");
    check_usable(upload_conn); // the refused body was read and dropped
    BOOST_TEST(!std::filesystem::exists(user_folder(fxd, "alice") / "b.txt"));
    // Logged out, not merely refused once: whoami says so, and the next op is refused too.
    const auto who = stat_conn.call({{"op", "whoami"}});
    BOOST_TEST(who.ok());
    BOOST_TEST(who.header.at("user").is_null());
    check_error(upload_conn.call({{"op", "list"}}), "list", "unauthorized");
    // The new password logs in again on the same connection.
    check_ok(stat_conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-new-password"}}), "login");
    check_ok(stat_file(stat_conn, "a.txt"), "stat");
    BOOST_TEST(fxd.log().find("login revoked: user=\"alice\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_deleted_users_login_never_reaches_a_new_namesake, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto old_bob = user_session(fxd.tcp_port(), "bob");
    auto old_bob_download = login_session(fxd.tcp_port(), "bob");
    auto old_bob_upload = login_session(fxd.tcp_port(), "bob");
    check_upload_ok(upload(old_bob, "old.txt", "old bob"), "old.txt", 7, sha256_of("old bob"));

    user_command_ok(fxd, {"del", "bob"});
    // Someone else takes the free name and stores a file under it.
    auto new_bob = user_session(fxd.tcp_port(), "bob");
    const std::string secret = "the new bob's secret";
    check_upload_ok(upload(new_bob, "secret.txt", secret), "secret.txt", secret.size(), sha256_of(secret));

    check_error(old_bob.call({{"op", "list"}}), "list", "unauthorized");
    check_error(download(old_bob_download, "secret.txt"), "download", "unauthorized");
    check_error(upload(old_bob_upload, "planted.txt", "from the old login"), "upload", "unauthorized");
    check_usable(old_bob_upload);
    // The new bob's files are as he left them.
    BOOST_TEST(list_names(new_bob) == std::vector<std::string>{"secret.txt"});
    BOOST_TEST(download(new_bob, "secret.txt").body == secret);
}

BOOST_AUTO_TEST_CASE(stats_from_loopback_work_as_before, *utf::timeout(60))
{
    daemon_process fxd(fast());
    connection anonymous(localhost, fxd.tcp_port(), 30s);
    BOOST_TEST(anonymous.call({{"op", "stats"}}).ok());
    auto alice = user_session(fxd.tcp_port(), "alice");
    BOOST_TEST(alice.call({{"op", "stats"}}).ok());
}

BOOST_AUTO_TEST_CASE(stats_from_another_host_need_an_admin_login, *utf::timeout(90) * utf::precondition(have_non_loopback_address))
{
    const std::string outside = *non_loopback_address();
    daemon_process fxd(fast({"--set", "tcp.bind=0.0.0.0", "--set", "auth.plaintext=allow"}));
    const auto port = fxd.tcp_port();
    register_user(port, "alice");
    connection anonymous(outside, port, 30s);
    check_error(anonymous.call({{"op", "stats"}}), "stats", "unauthorized");
    check_usable(anonymous);
    auto alice = login_from(outside, port, "alice");
    check_error(alice.call({{"op", "stats"}}), "stats", "unauthorized");

    user_command_ok(fxd, {"add", "--admin", "root-ops"}, password_of("root-ops") + "\n");
    const auto listed = fxd_user(fxd.storage(), {"list"});
    BOOST_TEST(listed.out == "alice\nroot-ops (admin)\n");
    auto admin = login_from(outside, port, "root-ops");
    BOOST_TEST(admin.call({{"op", "stats"}}).ok());

    // `fxd user admin` changes take effect at the next login, and at the next
    // check of an open login (any file request).
    user_command_ok(fxd, {"admin", "alice", "on"});
    auto alice_again = login_from(outside, port, "alice");
    BOOST_TEST(alice_again.call({{"op", "stats"}}).ok());
    user_command_ok(fxd, {"admin", "root-ops", "off"});
    BOOST_TEST(admin.call({{"op", "list"}}).ok());
    check_error(admin.call({{"op", "stats"}}), "stats", "unauthorized");
}

BOOST_AUTO_TEST_SUITE_END()
