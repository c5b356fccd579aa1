// The UDP side of the wire contract: one datagram, one frame, at most one
// reply, never more than twice the request; empty, reply-shaped and malformed
// datagrams are dropped and counted.

#include "daemon_process.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>
#include <fxd/protocol/udp.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <thread>
#include <vector>

using fxd::client::make_frame;
using fxd::client::parse_frame;
using fxd::client::reply;
using fxd::test::daemon_process;
using namespace fxd::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {


/// A request gets an error reply only when the datagram is at least half its
/// length (the reply bound), so these requests carry a field no op reads.
boost::json::object with_room(boost::json::object header)
{
    header["pad"] = std::string(120, 'p');
    return header;
}

/// The same for header text: a "pad" member added before the closing brace.
std::string padded(std::string_view header_json)
{
    std::string text(header_json.substr(0, header_json.rfind('}')));
    if (text.size() > 1)
        text += ',';
    return text + R"("pad":")" + std::string(120, 'p') + R"("})";
}

/// Sends one datagram and returns the reply, checking the size bound and that
/// the reply is a frame whose "size" matches its body.
reply round_trip(udp_peer& peer, const std::string& datagram)
{
    peer.send(datagram);
    const auto got = peer.receive();
    BOOST_TEST_REQUIRE(got.has_value(), "no reply to " << show(datagram.substr(0, 200)));
    BOOST_TEST(fxd::protocol::udp_reply_within_bound(datagram.size(), got->size()),
               "reply of " << got->size() << " bytes to a request of " << datagram.size() << ": " << show(*got));
    auto r = parse_frame(*got);
    BOOST_TEST_INFO("reply header: " << boost::json::serialize(r.header));
    BOOST_TEST_REQUIRE(r.header.contains("status"));
    BOOST_TEST_REQUIRE(r.header.contains("size"));
    BOOST_TEST(r.header.at("size").to_number<std::size_t>() == r.body.size());
    return r;
}

} // namespace

BOOST_AUTO_TEST_SUITE(udp)

BOOST_AUTO_TEST_CASE(ping_over_udp_replies_ok, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    const auto r = round_trip(peer, make_frame({{"op", "ping"}, {"id", 11}}));
    BOOST_TEST(str(r, "status") == "ok");
    BOOST_TEST(str(r, "op") == "ping");
    BOOST_TEST(r.header.at("id").to_number<int>() == 11);
    BOOST_TEST(r.header.at("size").to_number<int>() == 0);
    BOOST_TEST(!r.header.contains("code"));
}

BOOST_AUTO_TEST_CASE(ping_body_is_ignored, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    const auto r = round_trip(peer, make_frame({{"op", "ping"}}, "ignored body"));
    BOOST_TEST(r.ok());
    BOOST_TEST(r.body.empty());
}

BOOST_AUTO_TEST_CASE(echo_over_udp_changes_only_a_to_z, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    std::string body;
    for (int b = 0; b < 256; ++b)
        body += static_cast<char>(b);
    const auto r = round_trip(peer, make_frame({{"op", "echo"}, {"id", "e"}}, body));
    BOOST_TEST(r.ok());
    BOOST_TEST(str(r, "op") == "echo");
    BOOST_TEST(str(r, "id") == "e");
    BOOST_TEST((r.body == upper_ascii(body)));
}

BOOST_AUTO_TEST_CASE(echo_without_size_takes_the_rest_of_the_datagram, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    const auto r = round_trip(peer, raw_frame(R"({"op":"echo","id":1})", "no size given"));
    BOOST_TEST(r.ok());
    BOOST_TEST(r.body == "NO SIZE GIVEN");
}

BOOST_AUTO_TEST_CASE(echo_over_max_echo_bytes_gets_body_too_large, *utf::timeout(30))
{
    daemon_process daemon({"--set", "limits.max_echo_bytes=10"});
    udp_peer peer(daemon.udp_port());
    BOOST_TEST(round_trip(peer, make_frame({{"op", "echo"}}, std::string(10, 'a'))).body == std::string(10, 'A'));
    const auto r = round_trip(peer, make_frame(with_room({{"op", "echo"}, {"id", 2}}), std::string(11, 'a')));
    check_error(r, "body_too_large");
    BOOST_TEST(r.header.at("id").to_number<int>() == 2);
}

BOOST_AUTO_TEST_CASE(empty_and_reply_shaped_datagrams_get_no_reply_and_are_counted, *utf::timeout(30))
{
    // Either would let two UDP services (two fxd, or fxd and any echo service)
    // be made to answer each other forever by one forged datagram.
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    const std::vector<std::string> unanswered{
        "",
        raw_frame(R"({"status":"ok","op":"ping","size":0})"),
        raw_frame(R"({"status":"error","code":"unknown_op","message":"unknown op","size":0})"),
        raw_frame(R"({"op":"echo","status":"ok","id":"a long enough id to leave room for any reply"})", "body"),
    };
    for (const auto& datagram : unanswered) {
        peer.send(datagram);
        BOOST_TEST(!peer.receive(300ms).has_value(), "answered " << show(datagram));
    }
    // The same socket is still answered: nothing above was lost to the network.
    BOOST_TEST(round_trip(peer, make_frame({{"op", "ping"}, {"id", 1}})).ok());
    const auto s = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(s, "udp.dropped_by_cause.empty") == 1u);
    BOOST_TEST(counter(s, "udp.dropped_by_cause.reply_shaped") == 3u);
    BOOST_TEST(counter(s, "udp.dropped") == 4u);
}

BOOST_AUTO_TEST_CASE(malformed_datagrams_are_dropped_and_counted, *utf::timeout(120))
{
    daemon_process daemon;
    const std::string big_header = R"({"op":"ping","pad":")" + std::string(16385 - 22, 'p') + "\"}";
    const std::vector<std::pair<std::string, std::string>> cases{
        {"one byte", std::string(1, '\0')},
        {"two bytes", std::string(2, '\0')},
        {"three bytes", std::string("\0\0\x0d", 3)},
        {"header_len zero", be32(0)},
        {"header_len zero with bytes after", be32(0) + R"({"op":"ping"})"},
        {"header_len past the end", be32(100) + R"({"op":"ping"})"},
        {"header_len one past the end", be32(14) + R"({"op":"ping"})"},
        {"header_len huge", be32(0xFFFFFFFFu) + R"({"op":"ping"})"},
        {"header_len over max_header_bytes", raw_frame(big_header)},
        {"not JSON", raw_frame("ping")},
        {"truncated JSON", raw_frame(R"({"op":"ping")")},
        {"JSON array", raw_frame(R"(["op","ping"])")},
        {"JSON string", raw_frame(R"("ping")")},
        {"invalid UTF-8", raw_frame("{\"op\":\"ping\",\"x\":\"\xff\"}")},
        {"size larger than the body", raw_frame(R"({"op":"echo","size":5})", "abc")},
        {"size smaller than the body", raw_frame(R"({"op":"echo","size":2})", "abc")},
        {"size without a body", raw_frame(R"({"op":"ping","size":1})")},
        {"negative size", raw_frame(R"({"op":"echo","size":-3})", "abc")},
        {"string size", raw_frame(R"({"op":"echo","size":"3"})", "abc")},
        {"fractional size", raw_frame(R"({"op":"echo","size":2.5})", "abc")},
    };
    BOOST_TEST_REQUIRE(big_header.size() == 16385u);

    const auto before = stats_snapshot(daemon.tcp_port());
    udp_peer peer(daemon.udp_port());
    for (const auto& [name, datagram] : cases) {
        BOOST_TEST_CONTEXT(name << ": " << show(datagram.substr(0, 60)))
        {
            peer.send(datagram);
            const auto got = peer.receive(500ms);
            BOOST_TEST(!got.has_value(), "got a reply: " << show(got.value_or("")));
        }
    }
    // Still serving, from the same socket.
    BOOST_TEST(round_trip(peer, make_frame({{"op", "ping"}})).ok());

    const auto after = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(after, "udp.dropped") - counter(before, "udp.dropped") == cases.size());
    BOOST_TEST(counter(after, "udp.in") - counter(before, "udp.in") == cases.size() + 1);
    BOOST_TEST(counter(after, "udp.out") - counter(before, "udp.out") == 1u);
}

BOOST_AUTO_TEST_CASE(header_of_exactly_max_header_bytes_is_served, *utf::timeout(30))
{
    daemon_process daemon({"--set", "limits.max_header_bytes=1000"});
    udp_peer peer(daemon.udp_port());
    const std::string start = R"({"op":"ping","id":1,"pad":")";
    const std::string header = start + std::string(1000 - start.size() - 2, 'p') + "\"}";
    BOOST_TEST_REQUIRE(header.size() == 1000u);
    const auto r = round_trip(peer, raw_frame(header));
    BOOST_TEST(r.ok());
    BOOST_TEST(r.header.at("id").to_number<int>() == 1);
}

BOOST_AUTO_TEST_CASE(ops_offered_over_tcp_only_get_unsupported, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    int id = 0;
    for (const auto* op : {"hello", "register", "login", "logout", "whoami", "upload", "download", "stat", "list", "delete",
                           "stats"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            const auto r = round_trip(peer, make_frame(with_room({{"op", op}, {"id", ++id}})));
            check_error(r, "unsupported");
            BOOST_TEST(str(r, "op") == op);
            BOOST_TEST(r.header.at("id").to_number<int>() == id);
        }
    }
}

BOOST_AUTO_TEST_CASE(unknown_or_missing_op_gets_unknown_op, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    for (const auto* header : {R"({"op":"frobnicate","id":"x"})", R"({"id":"x"})", R"({"op":7,"id":"x"})"}) {
        BOOST_TEST_CONTEXT(header)
        {
            const auto r = round_trip(peer, raw_frame(padded(header)));
            check_error(r, "unknown_op");
            BOOST_TEST(!r.header.contains("op"));
            BOOST_TEST(str(r, "id") == "x");
        }
    }
}

BOOST_AUTO_TEST_CASE(id_is_copied_verbatim, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    for (const auto* id : {"0", "-42", "18446744073709551615", R"("")", R"("s p a c e")", R"("q\"\\\u0001\u00e9")"}) {
        BOOST_TEST_CONTEXT("id " << id)
        {
            const auto sent = boost::json::parse(id);
            for (const auto* op : {"ping", "echo", "hello", "nope"}) {
                const auto r = round_trip(peer, raw_frame(padded(std::string(R"({"op":")") + op + R"(","id":)" + id + "}")));
                const auto* got = r.header.if_contains("id");
                BOOST_TEST_REQUIRE(got != nullptr, op << " reply has no id");
                BOOST_TEST((*got == sent), op << " reply id " << boost::json::serialize(*got));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(id_of_another_type_gets_bad_request_without_id, *utf::timeout(30))
{
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    for (const auto* id : {"1.5", "true", "null", "[]", "{}"}) {
        BOOST_TEST_CONTEXT("id " << id)
        {
            const auto r = round_trip(peer, raw_frame(padded(std::string(R"({"op":"ping","id":)") + id + "}")));
            check_error(r, "bad_request");
            BOOST_TEST(!r.header.contains("id"));
        }
    }
}

BOOST_AUTO_TEST_CASE(no_reply_is_longer_than_twice_its_request, *utf::timeout(60))
{
    // The smallest requests that draw each kind of reply; round_trip() checks the bound.
    daemon_process daemon({"--set", "limits.max_echo_bytes=1"});
    udp_peer peer(daemon.udp_port());
    const std::vector<std::string> requests{
        raw_frame("{}"),
        raw_frame(R"({"op":0})"),
        raw_frame(R"({"op":""})"),
        raw_frame(R"({"op":"x"})"),
        raw_frame(R"({"id":[]})"),
        raw_frame(R"({"id":{}})"),
        raw_frame(R"({"id":0.5})"),
        raw_frame(R"({"op":"ping"})"),
        raw_frame(R"({"op":"ping","id":1.5})"),
        raw_frame(R"({"op":"stat"})"),
        raw_frame(R"({"op":"list"})"),
        raw_frame(R"({"op":"login"})"),
        raw_frame(R"({"op":"hello"})"),
        raw_frame(R"({"op":"stats"})"),
        raw_frame(R"({"op":"echo"})"),
        raw_frame(R"({"op":"echo"})", "ab"),
        raw_frame(R"({"op":"echo"})", "a"),
        raw_frame(R"({"op":"x","id":"\u00e9\u00e9\u00e9"})"),
        raw_frame(R"({"op":"x","id":"\/\/\/\/"})"),
        raw_frame(R"({"op":"ping","id":-0})"),
    };
    for (const auto& request : requests) {
        BOOST_TEST_CONTEXT("request " << show(request))
        {
            peer.send(request);
            const auto got = peer.receive(2s);
            // A reply that would pass the bound is dropped; one that is sent obeys it.
            if (got) {
                BOOST_TEST(fxd::protocol::udp_reply_within_bound(request.size(), got->size()),
                           "reply of " << got->size() << " bytes: " << show(*got));
            }
        }
    }
    // Every request above is a valid frame: each was answered or its reply dropped for its size.
    const auto s = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(s, "udp.out") + counter(s, "udp.dropped_by_cause.oversize_reply") == requests.size());
    BOOST_TEST(counter(s, "udp.dropped") == counter(s, "udp.dropped_by_cause.oversize_reply"));
    BOOST_TEST(counter(s, "udp.dropped_by_cause.oversize_reply") > 0u); // the tiny ones: {} draws 81 bytes
}

BOOST_AUTO_TEST_CASE(a_request_padded_to_half_its_reply_is_answered, *utf::timeout(30))
{
    // What a client does to be answered: an id (or any field) long enough that
    // the reply is at most twice the datagram.
    daemon_process daemon;
    udp_peer peer(daemon.udp_port());
    peer.send(raw_frame(R"({"op":"ping"})"));
    BOOST_TEST(!peer.receive(300ms).has_value()); // 17 bytes; the reply would be 41
    const auto r = round_trip(peer, raw_frame(R"({"op":"ping","id":"0123"})"));
    BOOST_TEST(r.ok());
    BOOST_TEST(r.header.at("id").as_string() == "0123");
}

BOOST_AUTO_TEST_CASE(udp_counters_move_with_traffic, *utf::timeout(30))
{
    daemon_process daemon;
    const auto before = stats_snapshot(daemon.tcp_port());
    udp_peer peer(daemon.udp_port());
    for (int i = 0; i < 3; ++i)
        BOOST_TEST(round_trip(peer, make_frame({{"op", "ping"}})).ok());
    BOOST_TEST(round_trip(peer, make_frame({{"op", "echo"}}, "x")).ok());
    const auto after = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(after, "udp.in") - counter(before, "udp.in") == 4u);
    BOOST_TEST(counter(after, "udp.out") - counter(before, "udp.out") == 4u);
    BOOST_TEST(counter(after, "requests.ping") - counter(before, "requests.ping") == 3u);
    BOOST_TEST(counter(after, "requests.echo") - counter(before, "requests.echo") == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(udp_rate_limit)

namespace {

/// Sends count pings at once, then counts the replies that come back.
std::size_t answered_of_a_burst(udp_peer& peer, int count)
{
    for (int i = 0; i < count; ++i)
        peer.send(make_frame({{"op", "ping"}, {"id", i}}));
    std::size_t replies = 0;
    while (peer.receive(500ms))
        ++replies;
    return replies;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_source_past_its_burst_is_dropped_and_counted, *utf::timeout(60))
{
    daemon_process daemon({"--set", "udp.rate_per_source=2", "--set", "udp.burst=5"});
    udp_peer peer(daemon.udp_port());
    const auto started = std::chrono::steady_clock::now();
    const std::size_t replies = answered_of_a_burst(peer, 20);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    // The burst, plus what the rate refilled while we were at it.
    BOOST_TEST(replies >= 5u);
    BOOST_TEST(replies <= 5u + static_cast<std::size_t>(2 * elapsed) + 1u);
    const auto s = stats_snapshot(daemon.tcp_port());
    BOOST_TEST(counter(s, "udp.in") == 20u);
    BOOST_TEST(counter(s, "udp.rate_limited") == 20u - replies);
    BOOST_TEST(counter(s, "udp.out") == replies);
}

BOOST_AUTO_TEST_CASE(another_source_keeps_its_own_budget_and_the_rate_refills, *utf::timeout(60))
{
    daemon_process daemon({"--set", "udp.rate_per_source=2", "--set", "udp.burst=5"});
    udp_peer noisy(daemon.udp_port(), "127.0.0.1");
    BOOST_TEST(answered_of_a_burst(noisy, 40) < 40u);
    udp_peer quiet(daemon.udp_port(), "127.0.0.2");
    BOOST_TEST(answered_of_a_burst(quiet, 5) == 5u);
    std::this_thread::sleep_for(1500ms); // at 2 per second, the noisy source earns a token back
    BOOST_TEST(round_trip(noisy, make_frame({{"op", "ping"}})).ok());
}

BOOST_AUTO_TEST_CASE(rate_zero_answers_everything, *utf::timeout(60))
{
    daemon_process daemon({"--set", "udp.rate_per_source=0", "--set", "udp.burst=1"});
    udp_peer peer(daemon.udp_port());
    for (int i = 0; i < 200; ++i)
        BOOST_TEST_REQUIRE(round_trip(peer, make_frame({{"op", "ping"}, {"id", i}})).ok());
    BOOST_TEST(counter(stats_snapshot(daemon.tcp_port()), "udp.rate_limited") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
