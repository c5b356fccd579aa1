// The reply side of the wire: decode_reply on whole frames, reply_decoder on a
// byte stream cut at every size, and scan_reply checked against the full decoder.

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/reply.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace fxd::protocol;
namespace json = boost::json;
namespace utf = boost::unit_test;

namespace {

struct expected_reply {
    json::object header;
    std::string body;
};

/// An ok reply as the daemon writes it, with a field and the body appended.
std::string ok_reply(std::string_view op, std::int64_t id, std::string_view body)
{
    std::string out;
    reply_writer w(out);
    const json::value id_value = id;
    w.begin(op, &id_value, true);
    w.field("note", "a \"size\":7} inside a string");
    w.end(body.size());
    out += body;
    return out;
}

std::string error_reply(std::string_view op, errc code)
{
    std::string out;
    reply_writer(out).error(op, nullptr, code, "refused for a test");
    return out;
}

/// A frame whose prefix says header_len, followed by the given bytes.
std::string raw_frame(std::uint32_t header_len, std::string_view rest)
{
    std::string out(prefix_bytes, '\0');
    store_u32_be(reinterpret_cast<unsigned char*>(out.data()), header_len);
    out += rest;
    return out;
}

/// A frame with a correct prefix around any header text, then the body.
std::string frame_of(std::string_view header, std::string_view body = {})
{
    std::string out;
    append_request(out, header, {body.data(), body.size()});
    return out;
}

std::string patterned(std::size_t n)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + (i >> 8)) & 0xFF);
    return s;
}

/// Decodes a byte stream fed in pieces of `piece` bytes, collecting whole replies.
std::vector<expected_reply> decode_in_pieces(std::string_view wire, std::size_t piece)
{
    reply_decoder decoder;
    std::vector<expected_reply> out;
    std::size_t headers = 0;
    for (std::size_t at = 0; at < wire.size();) {
        const std::size_t n = std::min(piece, wire.size() - at);
        decoder.feed(wire.substr(at, n));
        at += n;
        for (auto ev = decoder.next(); ev != reply_decoder::event::need_more; ev = decoder.next()) {
            if (ev == reply_decoder::event::header) {
                ++headers;
                continue;
            }
            BOOST_TEST(decoder.body().size() == decoder.body_size());
            out.push_back({decoder.header(), std::string(decoder.body())});
        }
    }
    BOOST_TEST(headers == out.size()); // a header event before every reply
    BOOST_TEST(decoder.at_boundary());
    return out;
}

/// True when what() holds every one of the fragments.
auto says(std::vector<std::string> fragments)
{
    return [fragments = std::move(fragments)](const reply_format_error& e) {
        const std::string what = e.what();
        for (const auto& f : fragments)
            if (what.find(f) == std::string::npos) {
                BOOST_TEST_MESSAGE("message was: " << what);
                return false;
            }
        return true;
    };
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_reply)

BOOST_AUTO_TEST_CASE(decode_reply_splits_a_whole_frame_into_header_and_body, *utf::timeout(10))
{
    const std::string body = patterned(300);
    const std::string wire = ok_reply("echo", 7, body);
    const auto r = decode_reply(wire);
    BOOST_TEST(r.header.at("status").as_string() == "ok");
    BOOST_TEST(r.header.at("op").as_string() == "echo");
    BOOST_TEST(r.header.at("id").as_int64() == 7);
    BOOST_TEST(r.size == body.size());
    BOOST_TEST(r.body == body);

    const auto e = decode_reply(error_reply("login", errc::bad_credentials));
    BOOST_TEST(e.header.at("code").as_string() == "bad_credentials");
    BOOST_TEST(e.size == 0u);
    BOOST_TEST(e.body.empty());
}

BOOST_AUTO_TEST_CASE(decode_reply_names_what_is_wrong_with_a_broken_frame, *utf::timeout(10))
{
    BOOST_CHECK_EXCEPTION(decode_reply(std::string_view("\0\0\0", 3)), reply_format_error,
                          says({"3 bytes", "shorter than its length prefix"}));
    BOOST_CHECK_EXCEPTION(decode_reply(raw_frame(0, R"({"size":0})")), reply_format_error,
                          says({"reply header length is 0"}));
    // "HTTP" read as a length: what a client sees when it talks to a web server.
    BOOST_CHECK_EXCEPTION(decode_reply("HTTP/1.1 400 Bad Request\r\n\r\n"), reply_format_error,
                          says({"reply header length 1213486160 is larger than the 16777216 bytes"}));
    BOOST_CHECK_EXCEPTION(decode_reply(raw_frame(50, R"({"size":0})")), reply_format_error,
                          says({"reply header length 50 runs past the end of the 14-byte frame"}));
    BOOST_CHECK_EXCEPTION(decode_reply(frame_of("{\"size\":")), reply_format_error, says({"reply header is not JSON"}));
    BOOST_CHECK_EXCEPTION(decode_reply(frame_of("[1,2]")), reply_format_error,
                          says({"reply header is not a JSON object: [1,2]"}));
    BOOST_CHECK_EXCEPTION(decode_reply(frame_of(R"({"status":"ok"})")), reply_format_error,
                          says({"reply header has no size"}));
    for (const std::string_view size : {"-1", "1.5", "\"3\"", "null", "true", "1e3"})
        BOOST_CHECK_EXCEPTION(decode_reply(frame_of(R"({"status":"ok","size":)" + std::string(size) + "}")),
                              reply_format_error, says({"size is not a non-negative integer"}));
    BOOST_CHECK_EXCEPTION(decode_reply(frame_of(R"({"status":"ok","size":4})", "abc")), reply_format_error,
                          says({"carries 3 body bytes but its size says 4"}));
    BOOST_CHECK_EXCEPTION(decode_reply(frame_of(R"({"status":"ok","size":2})", "abc")), reply_format_error,
                          says({"carries 3 body bytes but its size says 2"}));
}

BOOST_AUTO_TEST_CASE(the_header_length_limit_can_be_lowered, *utf::timeout(10))
{
    const std::string wire = frame_of(R"({"status":"ok","size":0,"pad":"................................"})");
    BOOST_CHECK_NO_THROW(decode_reply(wire));
    BOOST_CHECK_EXCEPTION(decode_reply(wire, reply_limits{16}), reply_format_error,
                          says({"is larger than the 16 bytes"}));
    reply_decoder decoder(reply_limits{16});
    decoder.feed(wire);
    BOOST_CHECK_EXCEPTION(decoder.next(), reply_format_error, says({"is larger than the 16 bytes"}));
}

BOOST_AUTO_TEST_CASE(a_stream_decodes_the_same_at_every_fragmentation, *utf::timeout(30))
{
    std::vector<std::string> frames = {
        ok_reply("ping", 1, ""),
        ok_reply("echo", 2, "hello"),
        error_reply("upload", errc::quota_exceeded),
        ok_reply("download", 3, patterned(70000)),
        ok_reply("echo", 4, patterned(1)),
        frame_of(R"({"status":"ok","size":3,"extra":{"nested":[1,2,{"size":9}]}})", "xyz"),
    };
    std::string wire;
    std::vector<expected_reply> expected;
    for (const auto& f : frames) {
        wire += f;
        const auto r = decode_reply(f);
        expected.push_back({r.header, std::string(r.body)});
    }
    for (const std::size_t piece : {wire.size(), std::size_t{1000}, std::size_t{100}, std::size_t{10}, std::size_t{5},
                                    std::size_t{2}, std::size_t{1}}) {
        BOOST_TEST_CONTEXT("pieces of " << piece << " bytes")
        {
            const auto got = decode_in_pieces(wire, piece);
            BOOST_REQUIRE_EQUAL(got.size(), expected.size());
            for (std::size_t i = 0; i < got.size(); ++i) {
                BOOST_TEST((got[i].header == expected[i].header), "reply " << i);
                BOOST_TEST(got[i].body == expected[i].body, "reply " << i);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(a_body_split_across_reads_waits_for_its_last_byte, *utf::timeout(10))
{
    const std::string body = "0123456789";
    const std::string wire = ok_reply("echo", 5, body);
    const std::size_t header_end = wire.size() - body.size();
    reply_decoder decoder;
    decoder.feed(wire.substr(0, header_end + 4));
    BOOST_TEST((decoder.next() == reply_decoder::event::header));
    BOOST_TEST(decoder.body_size() == body.size());
    BOOST_TEST(decoder.header().at("id").as_int64() == 5);
    BOOST_TEST((decoder.next() == reply_decoder::event::need_more));
    BOOST_TEST(decoder.needed() == 6u);
    decoder.feed(wire.substr(header_end + 4, 5));
    BOOST_TEST((decoder.next() == reply_decoder::event::need_more));
    BOOST_TEST(decoder.needed() == 1u);
    decoder.feed(wire.substr(wire.size() - 1));
    BOOST_TEST(decoder.needed() == 0u);
    BOOST_TEST((decoder.next() == reply_decoder::event::reply));
    BOOST_TEST(decoder.body() == body);
    BOOST_TEST((decoder.next() == reply_decoder::event::need_more));
    BOOST_TEST(decoder.at_boundary());
    BOOST_TEST(decoder.needed() == prefix_bytes);
}

BOOST_AUTO_TEST_CASE(reading_exactly_what_is_needed_never_passes_the_header, *utf::timeout(10))
{
    // A blocking client reads needed() bytes at a time and stops at the header,
    // so a streamed body is still unread when it takes over.
    const std::string body = patterned(5000);
    const std::string wire = ok_reply("download", 9, body) + ok_reply("ping", 10, "");
    const std::size_t header_end = wire.find(body);
    reply_decoder decoder;
    std::size_t read = 0;
    while (decoder.next() == reply_decoder::event::need_more) {
        const std::size_t n = decoder.needed();
        BOOST_REQUIRE_GT(n, 0u);
        decoder.feed(std::string_view(wire).substr(read, n));
        read += n;
    }
    BOOST_TEST(read == header_end);
    BOOST_TEST(decoder.body_size() == body.size());
    BOOST_TEST(decoder.release_body().empty());
    read += body.size(); // the caller read the body itself
    for (auto ev = decoder.next(); ev != reply_decoder::event::reply; ev = decoder.next()) {
        if (ev == reply_decoder::event::need_more) {
            const std::size_t n = decoder.needed();
            BOOST_REQUIRE_LE(n, wire.size() - read);
            decoder.feed(std::string_view(wire).substr(read, n));
            read += n;
        }
    }
    BOOST_TEST(decoder.header().at("id").as_int64() == 10);
    BOOST_TEST(read == wire.size());
}

BOOST_AUTO_TEST_CASE(release_body_hands_over_the_body_bytes_already_fed, *utf::timeout(10))
{
    const std::string body = "abcdefghij";
    const std::string first = ok_reply("download", 1, body);
    const std::string second = ok_reply("echo", 2, "xy");
    const std::size_t header_end = first.size() - body.size();
    reply_decoder decoder;
    decoder.feed(first.substr(0, header_end + 3));
    BOOST_REQUIRE((decoder.next() == reply_decoder::event::header));
    const auto held = decoder.release_body();
    BOOST_TEST(std::string_view(held.data(), held.size()) == "abc");
    BOOST_TEST(decoder.at_boundary());
    // The other 7 body bytes went elsewhere; the next reply follows.
    decoder.feed(second);
    BOOST_TEST((decoder.next() == reply_decoder::event::header));
    BOOST_TEST((decoder.next() == reply_decoder::event::reply));
    BOOST_TEST(decoder.header().at("id").as_int64() == 2);
    BOOST_TEST(decoder.body() == "xy");

    // With the whole reply and more fed, only the body is handed over.
    reply_decoder whole;
    whole.feed(first + second);
    BOOST_REQUIRE((whole.next() == reply_decoder::event::header));
    const auto all = whole.release_body();
    BOOST_TEST(std::string_view(all.data(), all.size()) == body);
    BOOST_TEST((whole.next() == reply_decoder::event::header));
    BOOST_TEST(whole.header().at("id").as_int64() == 2);

    reply_decoder idle;
    BOOST_CHECK_THROW(idle.release_body(), std::logic_error);
}

BOOST_AUTO_TEST_CASE(a_broken_stream_stays_broken_and_says_why, *utf::timeout(10))
{
    struct bad_case {
        std::string wire;
        std::string says;
    };
    const std::vector<bad_case> cases = {
        {raw_frame(0, ""), "reply header length is 0"},
        {"HTTP/1.1 200 OK\r\n", "reply header length 1213486160 is larger than"},
        {frame_of("\"text\""), "not a JSON object"},
        {frame_of("{not json}"), "not JSON"},
        {frame_of(R"({"status":"ok"})"), "has no size"},
        {frame_of(R"({"status":"ok","size":-5})"), "not a non-negative integer"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.says)
        {
            for (const std::size_t piece : {c.wire.size(), std::size_t{1}}) {
                reply_decoder decoder;
                decoder.feed(ok_reply("ping", 1, "")); // a good reply first
                bool threw = false;
                for (std::size_t at = 0; at < c.wire.size() && !threw; at += piece) {
                    decoder.feed(std::string_view(c.wire).substr(at, piece));
                    try {
                        while (decoder.next() != reply_decoder::event::need_more) {
                        }
                    } catch (const reply_format_error& e) {
                        BOOST_TEST(std::string(e.what()).find(c.says) != std::string::npos, e.what());
                        threw = true;
                    }
                }
                BOOST_TEST(threw);
                BOOST_CHECK_EXCEPTION(decoder.next(), reply_format_error, says({c.says}));
                BOOST_TEST(decoder.needed() == 0u);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(scan_reply_agrees_with_the_full_decoder, *utf::timeout(10))
{
    const std::vector<std::string> frames = {
        ok_reply("ping", 1, ""),
        ok_reply("echo", 123456789, patterned(1000)),
        error_reply("stat", errc::not_found),
        error_reply("", errc::bad_header),
        ok_reply("download", -4, patterned(3)),
    };
    for (const auto& f : frames) {
        const auto full = decode_reply(f);
        const auto extent = scan_reply(f);
        BOOST_REQUIRE(extent.has_value());
        BOOST_TEST(extent->frame_bytes() == f.size());
        BOOST_TEST(extent->body_bytes == full.size);
        BOOST_TEST(extent->ok == (full.header.at("status").as_string() == "ok"));
        // Incomplete until the header's last byte; body bytes are not needed.
        for (std::size_t n = 0; n < extent->header_bytes; ++n)
            BOOST_TEST(!scan_reply(std::string_view(f).substr(0, n)).has_value(), n << " bytes");
        BOOST_TEST(scan_reply(std::string_view(f).substr(0, extent->header_bytes)).has_value());
    }
}

BOOST_AUTO_TEST_CASE(scan_reply_refuses_what_it_cannot_read, *utf::timeout(10))
{
    BOOST_CHECK_EXCEPTION(scan_reply(raw_frame(0, "")), reply_format_error, says({"length is 0"}));
    BOOST_CHECK_EXCEPTION(scan_reply("HTTP/1.1"), reply_format_error, says({"is larger than"}));
    // Valid replies, but not as reply_writer writes them: size not last, spaces, a sign.
    for (const std::string_view header : {R"({"size":0,"status":"ok"})", R"({"status":"ok","size": 0})",
                                          R"({"status":"ok","size":-0})", R"({"status":"ok","size":0 })"}) {
        BOOST_CHECK_NO_THROW(decode_reply(frame_of(header)));
        BOOST_CHECK_THROW(scan_reply(frame_of(header)), reply_format_error);
    }
}

BOOST_AUTO_TEST_SUITE_END()
