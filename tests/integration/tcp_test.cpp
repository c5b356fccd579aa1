// The TCP side of the wire contract, against the real daemon: frames, ops,
// errors on the frame itself, the discard rule, timeouts, the connection
// limit and the stats counters.

#include "daemon_process.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using fxd::client::connection;
using fxd::client::make_frame;
using fxd::client::reply;
using fxd::test::daemon_process;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

const std::vector<std::string> contract_ops{"ping",   "hello",    "echo", "register", "login", "logout", "whoami",
                                            "upload", "download", "stat", "list",     "delete", "stats"};

/// An error about the frame or the connection: nothing of the request is echoed.
void check_connection_error(const reply& r, std::string_view code)
{
    check_error(r, code);
    BOOST_TEST(!r.header.contains("op"));
    BOOST_TEST(!r.header.contains("id"));
}

/// The server ended the connection cleanly after its last reply.
void check_closed(const connection& conn)
{
    BOOST_TEST(next_event(conn) == stream_end::eof);
}

/// Once a slot frees up (the daemon notices a close a moment later), a new connection is served.
bool a_new_connection_is_served_eventually(std::uint16_t port)
{
    return eventually([&] {
        try {
            connection next(localhost, port);
            return next.call({{"op", "ping"}}).ok();
        } catch (const fxd::client::connection_error&) {
            return false;
        }
    });
}

std::vector<std::string> hello_ops(connection& conn)
{
    const auto r = conn.call({{"op", "hello"}});
    std::vector<std::string> ops;
    for (const auto& v : r.header.at("ops").as_array())
        ops.emplace_back(v.as_string());
    return ops;
}

} // namespace

BOOST_AUTO_TEST_SUITE(tcp_ops)

BOOST_AUTO_TEST_CASE(hello_reports_server_protocol_ops_and_limits, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "hello"}, {"id", 1}});
    BOOST_TEST_INFO("reply header: " << boost::json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(str(r, "op") == "hello");
    BOOST_TEST(r.header.at("id").to_number<int>() == 1);
    BOOST_TEST(r.header.at("size").to_number<int>() == 0);
    BOOST_TEST(r.body.empty());
    BOOST_TEST(str(r, "server").starts_with("fxd "));
    BOOST_TEST(r.header.at("protocol").to_number<int>() == 1);

    std::vector<std::string> ops;
    for (const auto& v : r.header.at("ops").as_array())
        ops.emplace_back(v.as_string());
    for (const auto* needed : {"ping", "hello", "echo", "stats"})
        BOOST_TEST((std::find(ops.begin(), ops.end(), needed) != ops.end()), "hello lists " << needed);
    for (const auto& op : ops)
        BOOST_TEST((std::find(contract_ops.begin(), contract_ops.end(), op) != contract_ops.end()), op << " is a contract op");

    const auto& limits = r.header.at("limits").as_object();
    BOOST_TEST(limits.at("max_header_bytes").to_number<std::uint64_t>() == 16384u);
    BOOST_TEST(limits.at("max_echo_bytes").to_number<std::uint64_t>() == 1048576u);
    BOOST_TEST(limits.at("max_upload_bytes").to_number<std::uint64_t>() == 17179869184u);
}

BOOST_AUTO_TEST_CASE(hello_limits_follow_the_config, *utf::timeout(30))
{
    daemon_process daemon({"--set", "limits.max_header_bytes=1000", "--set", "limits.max_echo_bytes=12345", "--set",
                           "limits.max_upload_bytes=99999"});
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "hello"}});
    const auto& limits = r.header.at("limits").as_object();
    BOOST_TEST(limits.at("max_header_bytes").to_number<std::uint64_t>() == 1000u);
    BOOST_TEST(limits.at("max_echo_bytes").to_number<std::uint64_t>() == 12345u);
    BOOST_TEST(limits.at("max_upload_bytes").to_number<std::uint64_t>() == 99999u);
}

BOOST_AUTO_TEST_CASE(ops_hello_does_not_list_answer_unknown_op_and_the_rest_are_served, *utf::timeout(60))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto offered = hello_ops(conn);
    std::int64_t id = 100;
    for (const auto& op : contract_ops) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            // A small body that must be skipped whatever the op makes of it.
            const auto r = conn.call({{"op", op}, {"id", ++id}}, make_frame({{"op", "ping"}, {"id", -1}}));
            BOOST_TEST(r.header.at("id").to_number<std::int64_t>() == id);
            if (std::find(offered.begin(), offered.end(), op) != offered.end()) {
                BOOST_TEST(r.code() != "unknown_op");
                BOOST_TEST(str(r, "op") == op);
            } else {
                check_error(r, "unknown_op");
            }
            check_usable(conn, ++id);
        }
    }
}

BOOST_AUTO_TEST_CASE(ping_replies_ok_with_size_zero, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "ping"}, {"id", "p-1"}});
    BOOST_TEST_INFO("reply header: " << boost::json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "ok");
    BOOST_TEST(str(r, "op") == "ping");
    BOOST_TEST(str(r, "id") == "p-1");
    BOOST_TEST(r.header.at("size").to_number<int>() == 0);
    BOOST_TEST(!r.header.contains("code"));
    BOOST_TEST(r.body.empty());
}

BOOST_AUTO_TEST_CASE(echo_uppercases_ascii_only, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "echo"}, {"id", 7}}, "hello, World! \xc3\xa9");
    BOOST_TEST(r.ok());
    BOOST_TEST(str(r, "op") == "echo");
    BOOST_TEST(r.body == "HELLO, WORLD! \xc3\xa9");
    BOOST_TEST(r.header.at("size").to_number<std::size_t>() == r.body.size());
    BOOST_TEST(r.header.at("id").as_int64() == 7);
}

BOOST_AUTO_TEST_CASE(echo_changes_only_a_to_z_among_all_byte_values, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    std::string body;
    for (int round = 0; round < 2; ++round) {
        for (int b = 0; b < 256; ++b)
            body += static_cast<char>(b);
    }
    const auto r = conn.call({{"op", "echo"}}, body);
    BOOST_TEST_REQUIRE(r.ok());
    BOOST_TEST_REQUIRE(r.body.size() == body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
        const auto in = static_cast<unsigned char>(body[i]);
        const auto want = static_cast<char>(in >= 'a' && in <= 'z' ? in - 'a' + 'A' : in);
        BOOST_TEST(r.body[i] == want, "byte " << int{in});
    }
}

BOOST_AUTO_TEST_CASE(echo_of_an_empty_body_is_empty, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "echo"}, {"id", 3}});
    BOOST_TEST(r.ok());
    BOOST_TEST(r.header.at("size").to_number<int>() == 0);
    BOOST_TEST(r.body.empty());
}

BOOST_AUTO_TEST_CASE(echo_of_exactly_max_echo_bytes_is_served, *utf::timeout(60))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(20s);
    const std::string body = random_bytes(1048576, 1);
    const auto r = conn.call({{"op", "echo"}, {"id", 1}}, body);
    BOOST_TEST_REQUIRE(r.ok());
    BOOST_TEST(r.header.at("size").to_number<std::size_t>() == body.size());
    BOOST_TEST((r.body == upper_ascii(body)));
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(echo_over_max_echo_bytes_gets_body_too_large, *utf::timeout(60))
{
    // max_echo_bytes + 1 is also past max_discard_bytes (both 1 MiB): reply, then close.
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(20s);
    conn.send_raw(make_frame({{"op", "echo"}, {"id", 9}}, std::string(1048577, 'a')).substr(0, 64 * 1024));
    const auto r = conn.receive();
    check_error(r, "body_too_large");
    BOOST_TEST(str(r, "op") == "echo");
    BOOST_TEST(r.header.at("id").to_number<int>() == 9);
    check_closed(conn);
}

BOOST_AUTO_TEST_CASE(echo_over_max_echo_bytes_within_the_discard_limit_keeps_the_connection, *utf::timeout(30))
{
    daemon_process daemon({"--set", "limits.max_echo_bytes=100", "--set", "limits.max_discard_bytes=1000"});
    connection conn(localhost, daemon.tcp_port());
    BOOST_TEST(conn.call({{"op", "echo"}}, std::string(100, 'x')).ok());
    const auto r = conn.call({{"op", "echo"}, {"id", 2}}, std::string(101, 'x'));
    check_error(r, "body_too_large");
    BOOST_TEST(r.header.at("id").to_number<int>() == 2);
    check_usable(conn);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_framing)

BOOST_AUTO_TEST_CASE(ten_thousand_pipelined_echoes_reply_in_request_order, *utf::timeout(120))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(30s);
    constexpr int count = 10000;
    std::string stream;
    for (int i = 0; i < count; ++i)
        stream += make_frame({{"op", "echo"}, {"id", i}}, "frame " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 17), 'q'));

    // One write of every frame; read meanwhile so neither side's buffers fill up.
    std::exception_ptr send_failure;
    std::jthread sender([&] {
        try {
            conn.send_raw(stream);
        } catch (...) {
            send_failure = std::current_exception();
        }
    });
    int wrong = 0;
    std::string first_wrong;
    for (int i = 0; i < count; ++i) {
        const auto r = conn.receive();
        const auto want = upper_ascii("frame " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 17), 'q'));
        const auto* id = r.header.if_contains("id");
        if (!r.ok() || !id || id->to_number<std::int64_t>() != i || r.body != want) {
            if (wrong++ == 0)
                first_wrong = "reply " + std::to_string(i) + ": " + boost::json::serialize(r.header) + " body " + show(r.body);
        }
    }
    sender.join();
    BOOST_TEST(!send_failure);
    BOOST_TEST(wrong == 0, wrong << " replies out of order or wrong; first: " << first_wrong);
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(frames_dribbled_one_byte_at_a_time_are_served, *utf::timeout(60))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const std::string stream = make_frame({{"op", "echo"}, {"id", 1}}, "dribble me") + make_frame({{"op", "ping"}, {"id", 2}});
    for (const char c : stream) {
        conn.send_raw(std::string_view(&c, 1));
        std::this_thread::sleep_for(1ms);
    }
    const auto echo = conn.receive();
    BOOST_TEST(echo.ok());
    BOOST_TEST(echo.header.at("id").to_number<int>() == 1);
    BOOST_TEST(echo.body == "DRIBBLE ME");
    const auto ping = conn.receive();
    BOOST_TEST(ping.ok());
    BOOST_TEST(ping.header.at("id").to_number<int>() == 2);
}

BOOST_AUTO_TEST_CASE(frames_split_at_any_chunk_size_are_served, *utf::timeout(120))
{
    daemon_process daemon;
    std::string stream;
    std::vector<std::string> bodies;
    for (int i = 0; i < 6; ++i) {
        bodies.push_back(i % 3 == 0 ? std::string() : random_bytes(static_cast<std::size_t>(50 * i), static_cast<unsigned>(i)));
        stream += make_frame({{"op", "echo"}, {"id", 2 * i}}, bodies.back());
        stream += make_frame({{"op", i % 2 ? "ping" : "hello"}, {"id", 2 * i + 1}});
    }
    for (const std::size_t chunk : {1u, 2u, 3u, 5u, 7u, 10u, 64u, 100u, 1000u, 100000u}) {
        BOOST_TEST_CONTEXT("chunks of " << chunk)
        {
            connection conn(localhost, daemon.tcp_port());
            for (std::size_t at = 0; at < stream.size(); at += chunk) {
                conn.send_raw(std::string_view(stream).substr(at, chunk));
                std::this_thread::sleep_for(100us);
            }
            for (int i = 0; i < 12; ++i) {
                const auto r = conn.receive();
                BOOST_TEST(r.ok());
                BOOST_TEST(r.header.at("id").to_number<int>() == i);
                if (i % 2 == 0)
                    BOOST_TEST((r.body == upper_ascii(bodies[static_cast<std::size_t>(i / 2)])));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(pipelined_requests_of_every_kind_reply_in_request_order, *utf::timeout(60))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto offered = hello_ops(conn);
    std::string stream;
    std::int64_t id = 0;
    for (int round = 0; round < 3; ++round) {
        for (const auto& op : offered)
            stream += make_frame({{"op", op}, {"id", id++}});
        stream += make_frame({{"op", "echo"}, {"id", id++}}, "pipelined");
        stream += make_frame({{"op", "no_such_op"}, {"id", id++}}, "skipped");
        stream += make_frame({{"id", id++}});
        stream += raw_frame(R"({"op":"ping","id":[1]})"); // bad_request, no id in its reply
        stream += make_frame({{"op", "ping"}, {"id", id++}});
    }
    conn.send_raw(stream);
    std::int64_t want = 0;
    while (want < id) {
        const auto r = conn.receive();
        if (r.code() == "bad_request" && !r.header.contains("id"))
            continue;
        const auto* got = r.header.if_contains("id");
        BOOST_TEST_REQUIRE(got != nullptr, "reply without id: " << boost::json::serialize(r.header));
        BOOST_TEST_REQUIRE(got->to_number<std::int64_t>() == want, "reply " << boost::json::serialize(r.header));
        ++want;
    }
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(header_of_exactly_max_header_bytes_is_accepted, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const std::string start = R"({"op":"ping","id":5,"pad":")";
    const std::string end = R"("})";
    const std::string header = start + std::string(16384 - start.size() - end.size(), 'p') + end;
    BOOST_TEST_REQUIRE(header.size() == 16384u);
    conn.send_raw(raw_frame(header));
    const auto r = conn.receive();
    BOOST_TEST(r.ok());
    BOOST_TEST(r.header.at("id").to_number<int>() == 5);
    check_usable(conn);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_frame_errors)

BOOST_AUTO_TEST_CASE(zero_header_length_gets_bad_frame_then_a_clean_close, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    // The bytes after the bad prefix, a valid ping among them, must neither be
    // answered nor turn the close into a reset.
    conn.send_raw(be32(0) + make_frame({{"op", "ping"}, {"id", 1}}) + std::string(40000, 'j'));
    check_connection_error(conn.receive(), "bad_frame");
    check_closed(conn);

    connection again(localhost, daemon.tcp_port());
    check_usable(again);
}

BOOST_AUTO_TEST_CASE(frame_error_after_pipelined_requests_comes_after_their_replies, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    conn.send_raw(make_frame({{"op", "ping"}, {"id", 1}}) + make_frame({{"op", "echo"}, {"id", 2}}, "ab") + be32(0) +
                  make_frame({{"op", "ping"}, {"id", 3}}));
    const auto first = conn.receive();
    BOOST_TEST(first.header.at("id").to_number<int>() == 1);
    const auto second = conn.receive();
    BOOST_TEST(second.header.at("id").to_number<int>() == 2);
    BOOST_TEST(second.body == "AB");
    check_connection_error(conn.receive(), "bad_frame");
    check_closed(conn);
}

BOOST_AUTO_TEST_CASE(header_over_the_limit_gets_header_too_large_before_it_is_sent, *utf::timeout(30))
{
    daemon_process daemon;
    for (const std::uint32_t len : {16385u, 1000000u, 0xFFFFFFFFu}) {
        BOOST_TEST_CONTEXT("header_len " << len)
        {
            connection conn(localhost, daemon.tcp_port());
            conn.send_raw(be32(len)); // the header itself never follows
            check_connection_error(conn.receive(), "header_too_large");
            check_closed(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(header_too_large_with_its_bytes_sent_still_gets_the_reply_and_a_clean_close, *utf::timeout(30))
{
    daemon_process daemon({"--set", "limits.max_header_bytes=1000"});
    connection conn(localhost, daemon.tcp_port());
    const std::string start = R"({"op":"ping","pad":")";
    conn.send_raw(raw_frame(start + std::string(1001 - start.size() - 2, 'p') + "\"}") + std::string(20000, 'x'));
    check_connection_error(conn.receive(), "header_too_large");
    check_closed(conn);
}

BOOST_AUTO_TEST_CASE(malformed_headers_get_bad_header_then_a_clean_close, *utf::timeout(120))
{
    daemon_process daemon;
    const std::vector<std::pair<std::string, std::string>> cases{
        {"not json", "hello"},
        {"array", R"(["op","ping"])"},
        {"string", R"("ping")"},
        {"number", "42"},
        {"null", "null"},
        {"truncated object", R"({"op":"ping")"},
        {"trailing garbage", R"({"op":"ping"} x)"},
        {"two objects", R"({"op":"ping"}{"op":"ping"})"},
        {"trailing NUL", std::string(R"({"op":"ping"})") + '\0'},
        {"trailing comma", R"({"op":"ping",})"},
        {"comment", R"({/* c */"op":"ping"})"},
        {"single quotes", R"({'op':'ping'})"},
        {"invalid UTF-8 byte", "{\"op\":\"ping\",\"x\":\"\xff\"}"},
        {"overlong UTF-8", "{\"op\":\"ping\",\"x\":\"\xc0\xaf\"}"},
        {"UTF-8 surrogate", "{\"op\":\"ping\",\"x\":\"\xed\xa0\x80\"}"},
        {"truncated UTF-8", "{\"op\":\"ping\",\"x\":\"\xc3\"}"},
        {"invalid UTF-8 in a key", "{\"op\":\"ping\",\"\xfe\":1}"},
        {"negative size", R"({"op":"echo","size":-1})"},
        {"fractional size", R"({"op":"echo","size":1.5})"},
        {"string size", R"({"op":"echo","size":"3"})"},
        {"boolean size", R"({"op":"echo","size":true})"},
        {"null size", R"({"op":"echo","size":null})"},
        {"object size", R"({"op":"echo","size":{}})"},
    };
    for (const auto& [name, header] : cases) {
        BOOST_TEST_CONTEXT(name << ": " << show(header))
        {
            connection conn(localhost, daemon.tcp_port());
            conn.send_raw(raw_frame(header, "abc") + make_frame({{"op", "ping"}, {"id", 1}}) + std::string(40000, 'j'));
            check_connection_error(conn.receive(), "bad_header");
            check_closed(conn);
        }
    }
    connection again(localhost, daemon.tcp_port());
    check_usable(again);
}

BOOST_AUTO_TEST_CASE(a_header_sent_in_pieces_then_found_malformed_gets_bad_header, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const std::string frame = raw_frame(R"({"op":"ping","size":-5})");
    conn.send_raw(frame.substr(0, 6));
    std::this_thread::sleep_for(50ms);
    conn.send_raw(frame.substr(6));
    check_connection_error(conn.receive(), "bad_header");
    check_closed(conn);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_requests)

BOOST_AUTO_TEST_CASE(missing_op_gets_unknown_op_and_the_connection_stays_usable, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"id", 1}}, "skip me");
    check_error(r, "unknown_op");
    BOOST_TEST(!r.header.contains("op"));
    BOOST_TEST(r.header.at("id").to_number<int>() == 1);
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(unknown_op_gets_unknown_op_and_its_body_is_skipped, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    // The body holds a whole ping frame: it must be skipped, not answered.
    const auto r = conn.call({{"op", "frobnicate"}, {"id", "u"}}, make_frame({{"op", "ping"}, {"id", 666}}));
    check_error(r, "unknown_op");
    BOOST_TEST(!r.header.contains("op"));
    BOOST_TEST(str(r, "id") == "u");
    check_usable(conn, 2);
}

BOOST_AUTO_TEST_CASE(op_that_is_not_a_string_gets_unknown_op, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    for (const auto* op : {"5", "null", "true", R"(["ping"])", R"({"name":"ping"})", R"("PING")", R"("")"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            conn.send_raw(raw_frame(std::string(R"({"id":3,"size":2,"op":)") + op + "}", "zz"));
            const auto r = conn.receive();
            check_error(r, "unknown_op");
            BOOST_TEST(r.header.at("id").to_number<int>() == 3);
            check_usable(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(integer_and_string_ids_are_copied_verbatim, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const std::vector<std::string> ids{
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        R"("")",
        R"("abc")",
        R"("quote \" backslash \\ slash \/ tab \t nul \u0000 bell \u0007")",
        R"("caf\u00e9 \ud83d\ude00 ü 日本")",
        "\"" + std::string(1000, 'i') + "\"",
    };
    for (const auto& id : ids) {
        BOOST_TEST_CONTEXT("id " << show(id))
        {
            const auto sent = boost::json::parse(id);
            for (const auto* op : {"ping", "echo", "no_such_op"}) {
                conn.send_raw(raw_frame(std::string(R"({"op":")") + op + R"(","id":)" + id + "}"));
                const auto r = conn.receive();
                const auto* got = r.header.if_contains("id");
                BOOST_TEST_REQUIRE(got != nullptr, op << " reply has no id");
                BOOST_TEST((*got == sent), op << " reply id " << boost::json::serialize(*got));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(replies_to_requests_without_id_have_no_id, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    BOOST_TEST(!conn.call({{"op", "ping"}}).header.contains("id"));
    BOOST_TEST(!conn.call({{"op", "echo"}}, "x").header.contains("id"));
    BOOST_TEST(!conn.call({{"op", "nope"}}).header.contains("id"));
}

BOOST_AUTO_TEST_CASE(ids_of_other_types_get_bad_request_and_the_body_is_skipped, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    for (const auto* id : {"1.5", "true", "false", "null", "[]", "[1]", "{}", R"({"id":1})"}) {
        BOOST_TEST_CONTEXT("id " << id)
        {
            const std::string body = make_frame({{"op", "ping"}, {"id", 666}});
            conn.send_raw(raw_frame(std::string(R"({"op":"echo","size":)") + std::to_string(body.size()) + R"(,"id":)" + id + "}", body));
            const auto r = conn.receive();
            check_error(r, "bad_request");
            BOOST_TEST(!r.header.contains("id"));
            BOOST_TEST(str(r, "op") == "echo");
            check_usable(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(unknown_header_fields_are_ignored, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "echo"}, {"id", 1}, {"colour", "blue"}, {"nested", {{"a", {1, 2, 3}}}}}, "abc");
    BOOST_TEST(r.ok());
    BOOST_TEST(r.body == "ABC");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_discard_rule)

const std::vector<std::string> discard_limit{"--set", "limits.max_discard_bytes=1000"};

BOOST_AUTO_TEST_CASE(refused_body_at_the_discard_limit_is_skipped_and_the_connection_kept, *utf::timeout(30))
{
    daemon_process daemon(discard_limit);
    connection conn(localhost, daemon.tcp_port());
    std::string body = make_frame({{"op", "ping"}, {"id", 666}});
    body += std::string(1000 - body.size(), 'd');
    const auto r = conn.call({{"op", "no_such_op"}, {"id", 1}}, body);
    check_error(r, "unknown_op");
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(refused_body_over_the_discard_limit_gets_the_reply_then_a_close, *utf::timeout(30))
{
    daemon_process daemon(discard_limit);
    connection conn(localhost, daemon.tcp_port());
    send_tolerant(conn, make_frame({{"op", "no_such_op"}, {"id", 1}}, std::string(1001, 'd')));
    const auto r = conn.receive();
    check_error(r, "unknown_op");
    BOOST_TEST(r.header.at("id").to_number<int>() == 1);
    check_closed(conn);
}

BOOST_AUTO_TEST_CASE(enormous_declared_size_gets_the_reply_then_a_close, *utf::timeout(30))
{
    daemon_process daemon(discard_limit);
    for (const auto* op : {"no_such_op", "echo", "ping"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            connection conn(localhost, daemon.tcp_port());
            conn.send_raw(raw_frame(std::string(R"({"op":")") + op + R"(","id":1,"size":18446744073709551615})", "some"));
            const auto r = conn.receive();
            BOOST_TEST(str(r, "status") == "error");
            BOOST_TEST((r.code() == "unknown_op" || r.code() == "body_too_large"), "code " << r.code());
            check_closed(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_request_follows_the_discard_rule_on_both_sides_of_the_limit, *utf::timeout(30))
{
    daemon_process daemon(discard_limit);
    {
        connection conn(localhost, daemon.tcp_port());
        conn.send_raw(raw_frame(R"({"op":"echo","id":1.5,"size":1000})", std::string(1000, 'd')));
        check_error(conn.receive(), "bad_request");
        check_usable(conn);
    }
    {
        connection conn(localhost, daemon.tcp_port());
        send_tolerant(conn, raw_frame(R"({"op":"echo","id":1.5,"size":1001})", std::string(1001, 'd')));
        check_error(conn.receive(), "bad_request");
        check_closed(conn);
    }
}

BOOST_AUTO_TEST_CASE(body_sent_to_ops_without_one_is_ignored_within_the_discard_limit, *utf::timeout(30))
{
    daemon_process daemon(discard_limit);
    connection conn(localhost, daemon.tcp_port());
    std::string body = make_frame({{"op", "ping"}, {"id", 666}});
    body += std::string(1000 - body.size(), 'd');
    for (const auto* op : {"ping", "hello", "stats"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            const auto r = conn.call({{"op", op}, {"id", 1}}, body);
            BOOST_TEST(r.ok());
            BOOST_TEST(str(r, "op") == op);
            check_usable(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(body_sent_to_ops_without_one_past_the_discard_limit_gets_body_too_large_and_a_close, *utf::timeout(30))
{
    daemon_process daemon(discard_limit);
    for (const auto* op : {"ping", "hello", "stats"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            connection conn(localhost, daemon.tcp_port());
            send_tolerant(conn, make_frame({{"op", op}, {"id", 1}}, std::string(1001, 'd')));
            const auto r = conn.receive();
            check_error(r, "body_too_large");
            BOOST_TEST(str(r, "op") == op);
            check_closed(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(echo_past_both_limits_gets_body_too_large_and_a_close, *utf::timeout(30))
{
    daemon_process daemon({"--set", "limits.max_discard_bytes=1000", "--set", "limits.max_echo_bytes=100"});
    connection conn(localhost, daemon.tcp_port());
    send_tolerant(conn, make_frame({{"op", "echo"}, {"id", 1}}, std::string(1001, 'd')));
    check_error(conn.receive(), "body_too_large");
    check_closed(conn);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_timeouts)

BOOST_AUTO_TEST_CASE(idle_connection_gets_a_timeout_reply_then_a_close, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.idle_s=0.5"});
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(10s);
    check_connection_error(conn.receive(), "timeout");
    check_closed(conn);
}

BOOST_AUTO_TEST_CASE(connection_idle_after_a_request_gets_a_timeout_reply_then_a_close, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.idle_s=0.5"});
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(10s);
    check_usable(conn);
    check_connection_error(conn.receive(), "timeout");
    check_closed(conn);
}

BOOST_AUTO_TEST_CASE(idle_timeout_does_not_cut_a_request_whose_body_is_arriving, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.idle_s=0.5", "--set", "timeouts.body_s=60"});
    connection conn(localhost, daemon.tcp_port());
    const std::string frame = make_frame({{"op", "echo"}, {"id", 1}}, std::string(100, 'b'));
    conn.send_raw(std::string_view(frame).substr(0, frame.size() - 50));
    std::this_thread::sleep_for(2s);
    conn.send_raw(std::string_view(frame).substr(frame.size() - 50));
    const auto r = conn.receive();
    BOOST_TEST(r.ok());
    BOOST_TEST(r.body == std::string(100, 'B'));
}

BOOST_AUTO_TEST_CASE(partial_header_past_header_s_is_closed_without_a_reply, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.header_s=0.5"});
    const std::string frame = make_frame({{"op", "ping"}});
    for (const std::size_t sent : {std::size_t{1}, std::size_t{4}, frame.size() - 1}) {
        BOOST_TEST_CONTEXT(sent << " bytes of the frame sent")
        {
            connection conn(localhost, daemon.tcp_port());
            conn.send_raw(std::string_view(frame).substr(0, sent));
            BOOST_TEST(next_event(conn) == stream_end::eof);
        }
    }
}

BOOST_AUTO_TEST_CASE(header_trickled_in_for_longer_than_header_s_is_cut, *utf::timeout(60))
{
    // header_s runs from a frame's first byte to the end of its header, however
    // steadily the bytes come.
    daemon_process daemon({"--set", "timeouts.header_s=0.5"});
    connection conn(localhost, daemon.tcp_port());
    const std::string frame = raw_frame(R"({"op":"ping","pad":")" + std::string(200, 'p') + "\"}");
    std::size_t sent = 0;
    stream_end seen = stream_end::open;
    while (sent < frame.size() && seen == stream_end::open) {
        if (!send_tolerant(conn, std::string_view(frame).substr(sent, 1))) {
            seen = stream_end::reset;
            break;
        }
        ++sent;
        seen = next_event(conn, 50ms);
    }
    BOOST_TEST_INFO(sent << " of " << frame.size() << " bytes sent");
    BOOST_TEST(sent < frame.size());
    BOOST_TEST(seen != stream_end::data);
}

BOOST_AUTO_TEST_CASE(waiting_between_frames_does_not_count_toward_header_s, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.header_s=0.5", "--set", "timeouts.idle_s=60"});
    connection conn(localhost, daemon.tcp_port());
    std::this_thread::sleep_for(1500ms);
    check_usable(conn);
    std::this_thread::sleep_for(1500ms);
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(stalled_body_past_body_s_is_closed_without_a_reply, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.body_s=0.5"});
    connection conn(localhost, daemon.tcp_port());
    const std::string frame = make_frame({{"op", "echo"}, {"id", 1}}, std::string(100, 'b'));
    conn.send_raw(std::string_view(frame).substr(0, frame.size() - 90));
    BOOST_TEST(next_event(conn) == stream_end::eof);
}

BOOST_AUTO_TEST_CASE(body_arriving_steadily_is_not_cut_by_body_s, *utf::timeout(60))
{
    // body_s bounds the gap between body bytes, not the whole body.
    daemon_process daemon({"--set", "timeouts.body_s=3"});
    connection conn(localhost, daemon.tcp_port());
    const std::string frame = make_frame({{"op", "echo"}, {"id", 1}}, std::string(50, 'b'));
    const std::size_t body_at = frame.size() - 50;
    conn.send_raw(std::string_view(frame).substr(0, body_at));
    for (std::size_t i = body_at; i < frame.size(); ++i) {
        std::this_thread::sleep_for(100ms);
        conn.send_raw(std::string_view(frame).substr(i, 1));
    }
    const auto r = conn.receive();
    BOOST_TEST(r.ok());
    BOOST_TEST(r.body == std::string(50, 'B'));
}

BOOST_AUTO_TEST_CASE(timeouts_are_counted_in_stats, *utf::timeout(60))
{
    daemon_process daemon({"--set", "timeouts.idle_s=0.5"});
    const auto before = counter(stats_snapshot(daemon.tcp_port()), "connections.timed_out");
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(10s);
    check_connection_error(conn.receive(), "timeout");
    const auto after = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(after, "connections.timed_out") == before + 1);
    BOOST_TEST(counter(after, "errors.by_code.timeout") >= 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_connection_limit)

BOOST_AUTO_TEST_CASE(connection_past_max_connections_gets_busy_then_a_close, *utf::timeout(60))
{
    daemon_process daemon({"--set", "limits.max_connections=2"});
    connection first(localhost, daemon.tcp_port());
    connection second(localhost, daemon.tcp_port());
    check_usable(first);
    check_usable(second);

    connection third(localhost, daemon.tcp_port());
    check_connection_error(third.receive(), "busy");
    check_closed(third);

    check_usable(first);
    check_usable(second);
    BOOST_TEST(counter(body_object(first.call({{"op", "stats"}})), "connections.refused_busy") == 1u);
}

BOOST_AUTO_TEST_CASE(a_connection_is_served_again_once_another_closes, *utf::timeout(60))
{
    daemon_process daemon({"--set", "limits.max_connections=2"});
    std::optional<connection> first(std::in_place, localhost, daemon.tcp_port());
    connection second(localhost, daemon.tcp_port());
    check_usable(*first);
    check_usable(second);
    {
        connection refused(localhost, daemon.tcp_port());
        check_connection_error(refused.receive(), "busy");
    }
    first.reset();
    BOOST_TEST(a_new_connection_is_served_eventually(daemon.tcp_port()));
    check_usable(second);
}

BOOST_AUTO_TEST_CASE(connection_past_the_per_address_limit_gets_busy, *utf::timeout(60))
{
    daemon_process daemon({"--set", "limits.max_connections_per_address=2"});
    std::optional<connection> first(std::in_place, localhost, daemon.tcp_port());
    connection second(localhost, daemon.tcp_port());
    check_usable(*first);
    check_usable(second);

    {
        connection third(localhost, daemon.tcp_port());
        check_connection_error(third.receive(), "busy");
        check_closed(third);
    }
    const auto s = body_object(second.call({{"op", "stats"}}));
    BOOST_TEST(counter(s, "connections.refused_per_address") == 1u);
    BOOST_TEST(counter(s, "connections.refused_busy") == 1u);

    // The count follows closes: a slot freed is a slot served.
    first.reset();
    BOOST_TEST(a_new_connection_is_served_eventually(daemon.tcp_port()));
    check_usable(second);
}

BOOST_AUTO_TEST_CASE(per_address_limit_counts_each_address_apart, *utf::timeout(60))
{
    // 127.0.0.1 and 127.0.0.2 are both loopback on Linux but different addresses.
    daemon_process daemon({"--set", "limits.max_connections_per_address=1"});
    connection from_one(localhost, daemon.tcp_port());
    check_usable(from_one);
    connection from_two(localhost, daemon.tcp_port(), 10s, "127.0.0.2");
    check_usable(from_two);
    connection another_from_one(localhost, daemon.tcp_port());
    check_connection_error(another_from_one.receive(), "busy");
}

BOOST_AUTO_TEST_CASE(client_that_never_reads_is_cut_at_the_pending_reply_limit, *utf::timeout(120))
{
    // Echo requests keep coming and no reply is read: once the replies the
    // kernel cannot take pass the limit, the daemon cuts the connection (long
    // before timeouts.body_s) and keeps serving everyone else.
    daemon_process daemon({"--set", "limits.max_echo_bytes=16384", "--set", "limits.max_pending_reply_bytes=65536",
                           "--set", "timeouts.body_s=600"});
    connection hog(localhost, daemon.tcp_port());
    const std::string frame = make_frame({{"op", "echo"}}, std::string(16384, 'x'));
    std::string burst;
    for (int i = 0; i < 16; ++i)
        burst += frame;

    bool cut = false;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!cut && std::chrono::steady_clock::now() < deadline) {
        std::size_t off = 0;
        while (off < burst.size()) {
            const ssize_t n = ::send(hog.native_handle(), burst.data() + off, burst.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pollfd p{hog.native_handle(), POLLOUT, 0};
                if (::poll(&p, 1, 200) > 0 && (p.revents & (POLLERR | POLLHUP)))
                    cut = true;
                if (std::chrono::steady_clock::now() >= deadline || cut)
                    break;
                continue;
            }
            cut = true; // EPIPE or ECONNRESET: the daemon closed it
            break;
        }
    }
    BOOST_TEST(cut);

    connection other(localhost, daemon.tcp_port());
    check_usable(other);
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(daemon.tcp_port()), "connections.cut_unread") == 1u; }));
    BOOST_TEST(counter(stats_snapshot(daemon.tcp_port()), "connections.timed_out") == 0u);
}

BOOST_AUTO_TEST_CASE(pipelining_client_that_reads_is_not_cut, *utf::timeout(120))
{
    // Far more replies than the limit, but read as they come: nothing is cut.
    daemon_process daemon({"--set", "limits.max_echo_bytes=16384", "--set", "limits.max_pending_reply_bytes=65536"});
    connection conn(localhost, daemon.tcp_port());
    const std::string body(8000, 'q');
    const int rounds = 40, per_round = 32; // 10 MB of replies, 256 KiB in flight
    for (int round = 0; round < rounds; ++round) {
        std::string batch;
        for (int i = 0; i < per_round; ++i)
            batch += make_frame({{"op", "echo"}, {"id", round * per_round + i}}, body);
        conn.send_raw(batch);
        for (int i = 0; i < per_round; ++i) {
            const auto r = conn.receive();
            BOOST_TEST_REQUIRE(r.ok());
            BOOST_TEST_REQUIRE(r.header.at("id").to_number<int>() == round * per_round + i);
            BOOST_TEST_REQUIRE(r.body.size() == body.size());
        }
    }
    BOOST_TEST(counter(stats_snapshot(daemon.tcp_port()), "connections.cut_unread") == 0u);
}

BOOST_AUTO_TEST_CASE(request_arriving_while_a_slow_one_is_served_is_answered, *utf::timeout(60))
{
    // The ping arrives while the connection waits for the worker pool (the
    // password hash of register): its readiness must not be lost.
    daemon_process daemon({"--set", "timeouts.idle_s=30"});
    connection conn(localhost, daemon.tcp_port());
    conn.set_timeout(10s);
    conn.send_raw(make_frame({{"op", "register"}, {"id", 1}, {"user", "late"}, {"password", "correct horse"}}));
    std::this_thread::sleep_for(20ms);
    conn.send_raw(make_frame({{"op", "ping"}, {"id", 2}}));
    const auto registered = conn.receive();
    BOOST_TEST(registered.ok());
    const auto pong = conn.receive();
    BOOST_TEST(pong.ok());
    BOOST_TEST(pong.header.at("id").to_number<int>() == 2);
}

BOOST_AUTO_TEST_CASE(a_client_that_never_lets_up_does_not_starve_the_others, *utf::timeout(120))
{
    // One connection keeps its socket full of large pipelined echoes (so its
    // session never has to wait); pings on another connection must still be
    // answered while that goes on.
    daemon_process daemon;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> flood_replies{0};
    std::thread flood([&] {
        connection hog(localhost, daemon.tcp_port());
        hog.set_timeout(30s);
        const std::string frame = make_frame({{"op", "echo"}}, std::string(256 * 1024, 'f'));
        std::string burst;
        for (int i = 0; i < 8; ++i)
            burst += frame;
        std::thread reader([&] {
            try {
                while (!stop)
                    if (hog.receive().ok())
                        ++flood_replies;
            } catch (const std::exception&) {
            }
        });
        try {
            while (!stop)
                hog.send_raw(burst);
        } catch (const std::exception&) {
        }
        ::shutdown(hog.native_handle(), SHUT_RDWR);
        reader.join();
    });
    bool flood_was_running = false;
    std::string ping_failure;
    if (eventually([&] { return flood_replies.load() >= 16; }, 30s)) {
        flood_was_running = true;
        try {
            connection other(localhost, daemon.tcp_port());
            other.set_timeout(30s);
            for (int i = 0; i < 20; ++i)
                if (!other.call({{"op", "ping"}, {"id", i}}).ok())
                    ping_failure = "a ping was refused";
        } catch (const std::exception& e) {
            ping_failure = e.what(); // starved: no answer within 30 s
        }
    }
    stop = true;
    flood.join();
    BOOST_TEST(flood_was_running);
    BOOST_TEST(ping_failure.empty(), "pings beside the flood: " << ping_failure);
}

BOOST_AUTO_TEST_CASE(client_that_half_closes_still_gets_every_reply, *utf::timeout(60))
{
    // Send everything, shut down the sending side, then read: a common way to
    // use a request/response socket, and the daemon must not drop the replies.
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    std::string batch;
    const int count = 2000;
    for (int i = 0; i < count; ++i)
        batch += make_frame({{"op", "echo"}, {"id", i}}, std::string(500, 'h'));
    conn.send_raw(batch);
    ::shutdown(conn.native_handle(), SHUT_WR);
    for (int i = 0; i < count; ++i) {
        const auto r = conn.receive();
        BOOST_TEST_REQUIRE(r.ok());
        BOOST_TEST_REQUIRE(r.header.at("id").to_number<int>() == i);
    }
    check_closed(conn);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tcp_stats)

BOOST_AUTO_TEST_CASE(stats_body_holds_every_counter_group, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto r = conn.call({{"op", "stats"}, {"id", 1}});
    BOOST_TEST_REQUIRE(r.ok());
    BOOST_TEST(str(r, "op") == "stats");
    BOOST_TEST(r.header.at("size").to_number<std::size_t>() == r.body.size());
    const auto s = body_object(r);
    BOOST_TEST(s.at("uptime_s").is_number());
    for (const auto* path : {"connections.open", "connections.total", "connections.refused_busy", "connections.timed_out",
                             "requests.ping", "requests.hello", "requests.echo", "requests.stats", "requests.unknown",
                             "errors.by_op.ping", "errors.by_op.echo", "errors.by_op.none", "errors.by_code.bad_frame",
                             "errors.by_code.unknown_op", "bytes.in", "bytes.out", "udp.in", "udp.out", "udp.dropped",
                             "connections.refused_per_address", "connections.cut_unread", "connections.cut_memory",
                             "udp.rate_limited"}) {
        BOOST_TEST_CONTEXT(path) { BOOST_CHECK_NO_THROW(counter(s, path)); }
    }
    BOOST_TEST(counter(s, "connections.open") == 1u);
    BOOST_TEST(counter(s, "connections.total") == 1u);
    BOOST_TEST(counter(s, "requests.stats") == 1u);
}

BOOST_AUTO_TEST_CASE(stats_count_requests_by_op_and_errors_by_code, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    const auto before = body_object(conn.call({{"op", "stats"}}));

    for (int i = 0; i < 3; ++i)
        BOOST_TEST(conn.call({{"op", "ping"}}).ok());
    BOOST_TEST(conn.call({{"op", "echo"}}, "abc").ok());
    BOOST_TEST(conn.call({{"op", "echo"}}, "def").ok());
    BOOST_TEST(conn.call({{"op", "hello"}}).ok());
    BOOST_TEST(conn.call({{"op", "no_such_op"}}).code() == "unknown_op");
    BOOST_TEST(conn.call({{"id", 5}}).code() == "unknown_op");
    conn.send_raw(raw_frame(R"({"op":"echo","id":[]})"));
    BOOST_TEST(conn.receive().code() == "bad_request");
    {
        connection bad(localhost, daemon.tcp_port());
        bad.send_raw(be32(0));
        BOOST_TEST(bad.receive().code() == "bad_frame");
    }
    {
        connection bad(localhost, daemon.tcp_port());
        bad.send_raw(raw_frame("{"));
        BOOST_TEST(bad.receive().code() == "bad_header");
    }

    const auto after = body_object(conn.call({{"op", "stats"}}));
    auto delta = [&](const char* path) { return counter(after, path) - counter(before, path); };
    BOOST_TEST(delta("requests.ping") == 3u);
    BOOST_TEST(delta("requests.echo") == 3u);
    BOOST_TEST(delta("requests.hello") == 1u);
    BOOST_TEST(delta("requests.stats") == 1u);
    BOOST_TEST(delta("requests.unknown") == 2u);
    BOOST_TEST(delta("errors.by_code.unknown_op") == 2u);
    BOOST_TEST(delta("errors.by_code.bad_request") == 1u);
    BOOST_TEST(delta("errors.by_code.bad_frame") == 1u);
    BOOST_TEST(delta("errors.by_code.bad_header") == 1u);
    BOOST_TEST(delta("errors.by_op.echo") == 1u);
    BOOST_TEST(delta("errors.by_op.ping") == 0u);
    BOOST_TEST(delta("errors.by_op.none") == 4u);
    BOOST_TEST(delta("bytes.in") >= 6u);
    BOOST_TEST(delta("bytes.out") >= 6u);
}

BOOST_AUTO_TEST_CASE(stats_count_connections_open_and_total, *utf::timeout(30))
{
    daemon_process daemon;
    connection conn(localhost, daemon.tcp_port());
    auto stats = [&] { return body_object(conn.call({{"op", "stats"}})); };
    const auto before = stats();
    {
        connection a(localhost, daemon.tcp_port());
        connection b(localhost, daemon.tcp_port());
        check_usable(a);
        check_usable(b);
        const auto during = stats();
        BOOST_TEST(counter(during, "connections.open") == counter(before, "connections.open") + 2);
        BOOST_TEST(counter(during, "connections.total") == counter(before, "connections.total") + 2);
    }
    BOOST_TEST(eventually([&] { return counter(stats(), "connections.open") == counter(before, "connections.open"); }));
    BOOST_TEST(counter(stats(), "connections.total") == counter(before, "connections.total") + 2);
}

BOOST_AUTO_TEST_SUITE_END()
