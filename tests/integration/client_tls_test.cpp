// The client library and fxc over TLS, against the real daemon with
// certificates this test makes with the openssl command: every op, bodies
// around the TLS record size, pipelining, an upload refused mid-body, mutual
// TLS, and certificates that must not verify, each refused with its reason.
// Without the openssl command every case is skipped (a failed precondition).

#include "child_process.hpp"
#include "daemon_process.hpp"
#include "files.hpp"
#include "temp_dir.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>
#include <fxd/client/session.hpp>
#include <fxd/util/unique_fd.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using namespace fxd::test;
using fxd::client::connection;
using fxd::client::connection_error;
using fxd::client::session;
using fxd::client::tls_error;
using fxd::client::tls_options;

const std::string password = "correct-horse-1";

std::optional<fs::path> openssl_command()
{
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / "openssl";
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate;
    }
    return std::nullopt;
}

boost::test_tools::assertion_result have_openssl(utf::test_unit_id)
{
    boost::test_tools::assertion_result found(openssl_command().has_value());
    found.message() << "the openssl command is not installed";
    return found;
}

/// A throw-away PKI: a CA, a server certificate for 127.0.0.1 and localhost
/// signed by it, a client certificate from it, one from another CA, and a
/// self-signed server certificate for 127.0.0.1.
struct pki {
    temp_dir dir;

    pki()
    {
        authority("ca", "fxd test CA");
        authority("other-ca", "someone else's CA");
        issue("server", "127.0.0.1", "ca", "IP:127.0.0.1,DNS:localhost");
        issue("client", "alice-laptop", "ca");
        issue("stranger", "mallory", "other-ca");
        openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 path("self.key"), "-out", path("self.pem"), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                 "subjectAltName=IP:127.0.0.1"});
    }

    std::string path(const std::string& name) const { return (dir / name).string(); }

    /// Client options trusting the test CA only.
    tls_options trusting(const std::string& ca = "ca") const
    {
        tls_options tls;
        tls.enabled = true;
        tls.ca_file = path(ca + ".pem");
        return tls;
    }

private:
    void openssl(std::vector<std::string> args) const
    {
        args.insert(args.begin(), openssl_command()->string());
        const auto r = run_program(args);
        BOOST_TEST_INFO(r);
        BOOST_REQUIRE(r.status == 0);
    }
    void authority(const std::string& name, const std::string& subject) const
    {
        openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 path(name + ".key"), "-out", path(name + ".pem"), "-days", "2", "-subj", "/CN=" + subject});
    }
    void issue(const std::string& name, const std::string& cn, const std::string& ca, const std::string& san = {}) const
    {
        openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 path(name + ".key"), "-out", path(name + ".csr"), "-subj", "/CN=" + cn});
        std::ofstream(path(name + ".ext")) << (san.empty() ? "" : "subjectAltName=" + san + "\n");
        openssl({"x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".pem"), "-CAkey", path(ca + ".key"),
                 "-CAcreateserial", "-out", path(name + ".pem"), "-days", "2", "-extfile", path(name + ".ext")});
    }
};

/// The daemon with a TLS listener on a free port, serving certificate `cert` (a name in the pki).
struct tls_daemon {
    daemon_process daemon;
    std::uint16_t tls_port = 0;

    explicit tls_daemon(const pki& certs, std::vector<std::string> more = {}, const std::string& cert = "server")
        : daemon(fast(with_tls(certs, cert, std::move(more))))
    {
        // The plain hello names the TLS port (the ports line's tls= is not read by daemon_process).
        session plain("127.0.0.1", daemon.tcp_port(), 10s);
        const auto hello = plain.hello();
        const auto* port = hello.if_contains("tls_port");
        BOOST_REQUIRE_MESSAGE(port && port->is_number(), "hello carries tls_port");
        tls_port = port->to_number<std::uint16_t>();
    }

private:
    static std::vector<std::string> with_tls(const pki& certs, const std::string& cert, std::vector<std::string> more)
    {
        std::vector<std::string> args{"--set", "tls.cert=" + certs.path(cert + ".pem"), "--set",
                                      "tls.key=" + certs.path(cert + ".key"), "--set", "tls.port=0"};
        args.insert(args.end(), more.begin(), more.end());
        return args;
    }
};

/// A file in dir of `size` reproducible bytes.
fs::path pattern_file(const temp_dir& dir, const std::string& name, std::uint64_t size, std::uint64_t seed)
{
    const fs::path p = dir / name;
    write_file(p, pattern{seed}.bytes(0, static_cast<std::size_t>(size)));
    return p;
}

/// The message of the connection_error (tls_error when tls_only) that f throws; "" when it throws none.
template <class F>
std::string refusal_of(F&& f, bool tls_only = true)
{
    try {
        f();
    } catch (const tls_error& e) {
        return e.what();
    } catch (const connection_error& e) {
        BOOST_TEST(!tls_only, "a tls_error, not: " << e.what());
        return e.what();
    }
    return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(client_tls, *utf::precondition(have_openssl))

BOOST_AUTO_TEST_CASE(every_op_works_over_tls_with_bodies_around_the_record_size, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs);
    session s("127.0.0.1", d.tls_port, certs.trusting(), 30s);
    BOOST_TEST(s.conn().tls_version() == "TLSv1.3");
    s.ping();
    BOOST_TEST(s.hello().at("tls_port").to_number<std::uint16_t>() == d.tls_port);
    BOOST_TEST(s.echo("over tls") == "OVER TLS");
    BOOST_TEST(s.register_user("alice", password) == "alice");
    BOOST_TEST(s.login("alice", password) == "alice");
    BOOST_TEST(s.whoami().value_or("") == "alice");

    const temp_dir work;
    const std::vector<std::uint64_t> sizes{0, 1, 16383, 16384, 16385, 3 * MiB + 7};
    for (const auto size : sizes) {
        const auto name = "f" + std::to_string(size);
        const auto up = s.upload(pattern_file(work, name, size, size + 1), name);
        BOOST_TEST(up.sha256 == pattern{size + 1}.sha(size));
        const auto down = s.download(name, work / (name + ".back"));
        BOOST_TEST(down.size == size);
        BOOST_TEST(same_bytes(read_file(work / (name + ".back")), pattern{size + 1}.bytes(0, size)));
        const auto st = s.stat(name);
        BOOST_REQUIRE(st.has_value());
        BOOST_TEST(st->size == size);
    }
    const auto listed = s.list();
    BOOST_TEST(listed.size() == sizes.size());
    s.remove("f0");
    BOOST_TEST(!s.stat("f0").has_value());
    BOOST_TEST(counter(s.stats(), "tls.handshakes") >= 1u);
    s.logout();
    BOOST_TEST(!s.whoami().has_value());
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs);
    {
        session setup("127.0.0.1", d.tls_port, certs.trusting(), 30s);
        setup.register_user("alice", password);
        setup.login("alice", password);
        const temp_dir work;
        setup.upload(pattern_file(work, "blob", 100000, 7), "blob");
    }
    connection c("127.0.0.1", d.tls_port, certs.trusting(), 30s);
    std::string batch;
    for (int i = 0; i < 200; ++i)
        batch += fxd::client::make_frame({{"op", "echo"}, {"id", i}}, "x" + std::to_string(i));
    batch += fxd::client::make_frame({{"op", "login"}, {"id", "L"}, {"user", "alice"}, {"password", password}});
    batch += fxd::client::make_frame({{"op", "download"}, {"id", "D"}, {"name", "blob"}});
    c.send_raw(batch); // one write: the daemon reads many frames from few TLS records
    for (int i = 0; i < 200; ++i) {
        const auto r = c.receive();
        BOOST_REQUIRE(r.ok());
        BOOST_TEST(num(r, "id") == i);
        BOOST_TEST(r.body == "X" + std::to_string(i));
    }
    const auto login = c.receive();
    BOOST_TEST((login.ok() && str(login, "id") == "L"));
    const auto download = c.receive();
    BOOST_TEST((download.ok() && str(download, "id") == "D"));
    BOOST_TEST(same_bytes(download.body, pattern{7}.bytes(0, 100000)));
}

BOOST_AUTO_TEST_CASE(a_body_sent_right_after_the_handshake_is_not_cut_short_by_session_tickets, *utf::timeout(60))
{
    // TLS 1.3 servers send session tickets unasked after the handshake;
    // send_file must not take their arrival for an early reply.
    const pki certs;
    const tls_daemon d(certs);
    connection c("127.0.0.1", d.tls_port, certs.trusting(), 30s);
    std::this_thread::sleep_for(200ms); // the tickets are in the socket by now
    const temp_dir work;
    constexpr std::uint64_t size = 512 * 1024;
    const fxd::util::unique_fd fd(::open(pattern_file(work, "body", size, 3).c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    c.send_header({{"op", "echo"}}, size);
    BOOST_TEST(c.send_file(fd.get(), 0, size));
    const auto r = c.receive();
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(same_bytes(r.body, upper_ascii(pattern{3}.bytes(0, size))));
}

BOOST_AUTO_TEST_CASE(an_upload_refused_before_its_body_ends_is_reported_and_the_session_goes_on, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs);
    session s("127.0.0.1", d.tls_port, certs.trusting(), 30s);
    const temp_dir work;
    const auto file = pattern_file(work, "big", 16 * MiB, 5);
    try {
        s.upload(file, "big"); // not logged in
        BOOST_FAIL("an upload without login was accepted");
    } catch (const fxd::client::server_error& e) {
        BOOST_TEST(e.code() == "unauthorized");
    }
    s.ping(); // on a new TLS connection
    BOOST_TEST(s.conn().tls_version() == "TLSv1.3");
}

BOOST_AUTO_TEST_CASE(writing_to_a_reset_tls_connection_fails_without_sigpipe, *utf::timeout(60))
{
    // OpenSSL writes with write(), which raises SIGPIPE (killing the program)
    // on a socket whose reset was already reported. A daemon that wants a
    // client certificate resets the connection of a client without one; a
    // raw read here takes the reset in, so the next write meets EPIPE.
    const pki certs;
    const tls_daemon d(certs, {"--set", "tls.client_ca=" + certs.path("ca.pem")});
    connection c("127.0.0.1", d.tls_port, certs.trusting(), 10s);
    // run_program ignores SIGPIPE in this process; a real program would not.
    struct sigaction deflt {}, saved {};
    deflt.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &deflt, &saved);
    const std::unique_ptr<struct sigaction, void (*)(struct sigaction*)> restore(
        &saved, [](struct sigaction* old) { ::sigaction(SIGPIPE, old, nullptr); });
    bool reset = false;
    for (int i = 0; i < 250 && !reset; ++i) {
        char byte = 0;
        const ssize_t n = ::recv(c.native_handle(), &byte, 1, MSG_DONTWAIT);
        reset = n < 0 && errno == ECONNRESET;
        if (n < 0 && errno == EAGAIN)
            std::this_thread::sleep_for(20ms);
    }
    BOOST_REQUIRE(reset);
    try {
        c.send_raw(fxd::client::make_frame({{"op", "ping"}}));
        BOOST_FAIL("a write on a reset connection succeeded");
    } catch (const tls_error& e) {
        BOOST_TEST(std::string(e.what()).starts_with("TLS: the server closed the connection before its first reply"));
    }
}

BOOST_AUTO_TEST_CASE(mutual_tls_serves_a_certificate_from_the_client_ca_and_refuses_others, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs, {"--set", "tls.client_ca=" + certs.path("ca.pem")});
    auto with_cert = certs.trusting();
    with_cert.cert_file = certs.path("client.pem");
    with_cert.key_file = certs.path("client.key");
    {
        session s("127.0.0.1", d.tls_port, with_cert, 30s);
        s.register_user("alice", password);
        s.login("alice", password);
        BOOST_TEST(s.whoami().value_or("") == "alice");
    }
    BOOST_TEST(eventually([&] { return d.daemon.log().find("cert=\"CN=alice-laptop\"") != std::string::npos; }));

    auto stranger = certs.trusting();
    stranger.cert_file = certs.path("stranger.pem");
    stranger.key_file = certs.path("stranger.key");
    for (const auto& refused : {certs.trusting(), stranger}) {
        // TLS 1.3: the server's verdict on the client arrives after the
        // client's handshake is done, so it shows at the first reply; the
        // daemon's close may reset the connection before its alert is read,
        // which the client then explains as a likely refusal.
        const auto message = refusal_of([&] {
            connection c("127.0.0.1", d.tls_port, refused, 10s);
            c.call({{"op", "ping"}});
        });
        BOOST_TEST_MESSAGE("refused: " << message);
        BOOST_TEST((message.find("alert") != std::string::npos || message.find("client certificate") != std::string::npos),
                   "a client without a trusted certificate was served, or refused without saying why: " << message);
    }
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(d.daemon.tcp_port()), "tls.handshake_failures") >= 2u; }));

    auto half = certs.trusting();
    half.cert_file = certs.path("client.pem");
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", d.tls_port, half, 10s); })
                   .starts_with("TLS: a client certificate needs both"));
}

BOOST_AUTO_TEST_CASE(a_certificate_that_does_not_verify_is_refused_naming_the_reason, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs);
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", d.tls_port, certs.trusting("other-ca"), 10s); }) ==
               "TLS: certificate verify failed: unable to get local issuer certificate");

    auto wrong_name = certs.trusting();
    wrong_name.server_name = "fxd.example.org";
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", d.tls_port, wrong_name, 10s); }) ==
               "TLS: certificate verify failed: hostname mismatch");
    auto wrong_address = certs.trusting();
    wrong_address.server_name = "127.0.0.2";
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", d.tls_port, wrong_address, 10s); }) ==
               "TLS: certificate verify failed: IP address mismatch");
    // The certificate names localhost too: a host name is checked as a name.
    connection by_name("localhost", d.tls_port, certs.trusting(), 10s);
    BOOST_TEST(by_name.call({{"op", "ping"}}).ok());

    const tls_daemon self_signed(certs, {}, "self");
    tls_options system_store;
    system_store.enabled = true;
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", self_signed.tls_port, system_store, 10s); }) ==
               "TLS: certificate verify failed: self-signed certificate");

    auto missing_ca = certs.trusting();
    missing_ca.ca_file = certs.path("nowhere.pem");
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", d.tls_port, missing_ca, 10s); })
                   .starts_with("TLS: cannot load CA file " + missing_ca.ca_file));
}

BOOST_AUTO_TEST_CASE(tls_to_the_plain_port_fails_at_once_saying_so, *utf::timeout(60))
{
    const pki certs;
    const tls_daemon d(certs);
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST(refusal_of([&] { connection c("127.0.0.1", d.daemon.tcp_port(), certs.trusting(), 10s); })
                   .starts_with("TLS: handshake failed: "));
    BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
    connection plain("127.0.0.1", d.daemon.tcp_port(), 10s);
    check_usable(plain);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- fxc ------------------------------------------------------------------------------------

namespace {

std::string fxc_binary()
{
    if (const char* env = std::getenv("FXC_BINARY"))
        return env;
    return FXC_BINARY_PATH;
}

/// fxc without a terminal (it never prompts), with our environment minus FXC_* plus `changes`.
run_result run_fxc(std::vector<std::string> args, const env_changes& changes = {})
{
    args.insert(args.begin(), fxc_binary());
    run_options options;
    options.environment = environment_with(changes, {"FXC_"});
    options.new_session = true;
    options.deadline = 120s;
    return run_program(args, options);
}

/// The "code" of fxc --json's failure object, "" when there is none.
std::string json_code(const run_result& r)
{
    boost::system::error_code ec;
    const auto v = json::parse(r.out, ec);
    if (ec || !v.is_object() || !v.as_object().contains("code"))
        return {};
    return std::string(v.as_object().at("code").as_string());
}

} // namespace

BOOST_AUTO_TEST_SUITE(fxc_tls, *utf::precondition(have_openssl))

BOOST_AUTO_TEST_CASE(fxc_tls_registers_logs_in_uploads_downloads_and_lists_remembering_nothing, *utf::timeout(180))
{
    const pki certs;
    const tls_daemon d(certs);
    const temp_dir work;
    const temp_dir home; // where a careless client would leave a session or a password
    const std::vector<std::string> tls{"--tls", "--cacert", certs.path("ca.pem"), "--port",
                                       std::to_string(d.tls_port), "--user", "alice"};
    const env_changes env{{"FXC_PASSWORD", password}, {"HOME", home.path().string()},
                          {"XDG_CONFIG_HOME", std::nullopt}, {"XDG_CACHE_HOME", std::nullopt},
                          {"XDG_STATE_HOME", std::nullopt}, {"XDG_DATA_HOME", std::nullopt}};
    auto fxc = [&](std::vector<std::string> args) {
        args.insert(args.begin(), tls.begin(), tls.end());
        auto r = run_fxc(std::move(args), env);
        BOOST_TEST_INFO(r);
        BOOST_TEST(r.status == 0);
        return r;
    };
    fxc({"register"});
    BOOST_TEST(fxc({"whoami"}).out.find("alice") != std::string::npos);
    const auto file = pattern_file(work, "data.bin", 3 * MiB + 11, 9);
    fxc({"-q", "upload", file.string()});
    BOOST_TEST(fxc({"ls"}).out.find("data.bin") != std::string::npos);
    fxc({"-q", "download", "data.bin", "-o", (work / "copy.bin").string()});
    BOOST_TEST(same_bytes(read_file(work / "copy.bin"), pattern{9}.bytes(0, 3 * MiB + 11)));
    BOOST_TEST(counter(stats_snapshot(d.daemon.tcp_port()), "tls.handshakes") >= 5u);
    BOOST_TEST(fs::is_empty(home.path()), "fxc left something in HOME");
}

BOOST_AUTO_TEST_CASE(fxc_tls_1_in_the_environment_stands_for_tls, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs);
    const auto over_tls = run_fxc({"--cacert", certs.path("ca.pem"), "--port", std::to_string(d.tls_port), "echo", "hi"},
                                  {{"FXC_TLS", "1"}});
    BOOST_TEST_INFO(over_tls);
    BOOST_TEST(over_tls.status == 0);
    BOOST_TEST(over_tls.out == "HI\n");
    // Proof that it is TLS: the plain port cannot answer it.
    const auto at_plain = run_fxc({"--json", "--cacert", certs.path("ca.pem"), "--port",
                                   std::to_string(d.daemon.tcp_port()), "ping"},
                                  {{"FXC_TLS", "1"}});
    BOOST_TEST_INFO(at_plain);
    BOOST_TEST(at_plain.status == 3);
    BOOST_TEST(json_code(at_plain) == "tls_failed");
    const auto off = run_fxc({"--port", std::to_string(d.daemon.tcp_port()), "ping"}, {{"FXC_TLS", "0"}});
    BOOST_TEST_INFO(off);
    BOOST_TEST(off.status == 0);
}

BOOST_AUTO_TEST_CASE(fxc_exits_3_naming_the_reason_when_the_certificate_does_not_verify, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs);
    const auto r = run_fxc({"--tls", "--port", std::to_string(d.tls_port), "ping"}); // the system store
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 3);
    BOOST_TEST(r.err.find("TLS: certificate verify failed: unable to get local issuer certificate") != std::string::npos);
    BOOST_TEST(r.err.find("--cacert") != std::string::npos);
    const auto j = run_fxc({"--json", "--tls", "--cacert", certs.path("other-ca.pem"), "--port",
                            std::to_string(d.tls_port), "ping"});
    BOOST_TEST_INFO(j);
    BOOST_TEST(j.status == 3);
    BOOST_TEST(json_code(j) == "tls_failed");
}

BOOST_AUTO_TEST_CASE(fxc_mutual_tls_with_cert_and_key, *utf::timeout(120))
{
    const pki certs;
    const tls_daemon d(certs, {"--set", "tls.client_ca=" + certs.path("ca.pem")});
    const std::vector<std::string> base{"--tls", "--cacert", certs.path("ca.pem"), "--port", std::to_string(d.tls_port)};
    auto with = base;
    with.insert(with.end(), {"--cert", certs.path("client.pem"), "--key", certs.path("client.key"), "ping"});
    const auto served = run_fxc(with);
    BOOST_TEST_INFO(served);
    BOOST_TEST(served.status == 0);
    auto without = base;
    without.push_back("ping");
    const auto refused = run_fxc(without);
    BOOST_TEST_INFO(refused);
    BOOST_TEST(refused.status == 3);
}

BOOST_AUTO_TEST_CASE(fxc_tls_options_are_checked_before_connecting, *utf::timeout(60))
{
    const pki certs;
    const auto ca = certs.path("ca.pem");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--cacert", ca, "ping"},                               // needs --tls
             {"--tls", "--cert", certs.path("client.pem"), "ping"},  // a certificate without its key
             {"--tls", "--key", certs.path("client.key"), "ping"},   // a key without its certificate
             {"--tls", "--cacert", certs.path("nowhere.pem"), "ping"}, // no such file
             {"--tls", "--udp", "ping"},                              // UDP is never encrypted
         }) {
        const auto r = run_fxc(args);
        BOOST_TEST_INFO(r);
        BOOST_TEST(r.status == 2);
    }
    // --tls moves the default port to 7443 (nothing is expected to listen there).
    const auto r = run_fxc({"--tls", "--timeout", "3", "ping"});
    BOOST_TEST_INFO(r);
    BOOST_TEST(r.status == 3);
    BOOST_TEST(r.err.find("127.0.0.1:7443") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
