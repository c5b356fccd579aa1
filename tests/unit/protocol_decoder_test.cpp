#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/ops.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace fxd::protocol;
namespace json = boost::json;

// Counts heap allocations, so a test can check that steady-state decoding allocates nothing.
namespace {
std::atomic<long> heap_allocations{0};
}

void* operator new(std::size_t n)
{
    heap_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

struct test_frame {
    std::string header; // JSON text as sent
    std::string body;
};

/// What the decoder handed out for one frame, copied out of its storage.
struct decoded_frame {
    std::optional<op> operation;
    std::string op_name;
    std::optional<json::value> id;
    std::optional<errc> field_error;
    std::uint64_t size = 0;
    json::object fields;
    std::string body;
    bool body_complete = false; // frame (buffered) or body_end (streamed) seen
};

enum class body_mode { buffer, stream, skip };

std::string patterned(std::size_t n, unsigned seed)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
    return s;
}

std::string binary_prefix(std::uint32_t header_len)
{
    unsigned char p[prefix_bytes];
    store_u32_be(p, header_len);
    return std::string(reinterpret_cast<const char*>(p), prefix_bytes);
}

std::string wire_of(const test_frame& f)
{
    std::string out;
    append_request(out, f.header, {f.body.data(), f.body.size()});
    return out;
}

std::string wire_of(const std::vector<test_frame>& frames)
{
    std::string out;
    for (const auto& f : frames)
        append_request(out, f.header, {f.body.data(), f.body.size()});
    return out;
}

std::string frame_with_header(std::string_view header_json)
{
    std::string out;
    append_request(out, header_json);
    return out;
}

decoded_frame copy_header(const request_header& h)
{
    decoded_frame d;
    d.operation = h.operation;
    d.op_name = std::string(h.op_name);
    if (h.id)
        d.id = json::value(*h.id, json::storage_ptr{});
    d.field_error = h.field_error;
    d.size = h.size;
    d.fields = fields_copy(h); // whichever path of the parser read it
    return d;
}

struct decode_result {
    std::vector<decoded_frame> frames;
    std::optional<errc> error;
    bool ended_at_boundary = false;
    std::size_t body_chunks = 0;
    bool empty_chunk_seen = false;
    bool remaining_mismatch = false;
};

/// Feeds `wire` `chunk` bytes at a time and collects every frame, treating each body per `mode`.
decode_result decode_in_chunks(std::string_view wire, std::size_t chunk, body_mode mode, decoder_limits limits = {})
{
    decoder d(limits);
    decode_result r;
    std::size_t at = 0;
    while (at < wire.size() && !r.error) {
        const std::size_t n = std::min(chunk, wire.size() - at);
        d.feed({wire.data() + at, n});
        at += n;
        for (bool more = true; more;) {
            switch (d.next()) {
            case decoder::event::need_more:
                more = false;
                break;
            case decoder::event::header:
                r.frames.push_back(copy_header(d.header()));
                switch (mode) {
                case body_mode::buffer: d.buffer_body(); break;
                case body_mode::stream: d.stream_body(); break;
                case body_mode::skip:
                    d.skip_body();
                    r.frames.back().body_complete = true;
                    break;
                }
                break;
            case decoder::event::frame:
                BOOST_REQUIRE(!r.frames.empty());
                r.frames.back().body.assign(d.body().data(), d.body().size());
                r.frames.back().body_complete = true;
                break;
            case decoder::event::body_chunk: {
                BOOST_REQUIRE(!r.frames.empty());
                auto& f = r.frames.back();
                ++r.body_chunks;
                if (d.body().empty())
                    r.empty_chunk_seen = true;
                f.body.append(d.body().data(), d.body().size());
                if (d.body_remaining() != f.size - f.body.size())
                    r.remaining_mismatch = true;
                break;
            }
            case decoder::event::body_end:
                BOOST_REQUIRE(!r.frames.empty());
                r.frames.back().body_complete = true;
                break;
            case decoder::event::error:
                r.error = d.error();
                more = false;
                break;
            }
        }
    }
    r.ended_at_boundary = d.at_frame_boundary();
    return r;
}

/// The shared test frames: bodies of 0, 1, 64 and 70000 bytes, int and string ids, unicode.
std::vector<test_frame> sample_frames()
{
    return {
        {R"({"op":"ping"})", ""},
        {R"({"op":"echo","id":1,"size":1})", "x"},
        {R"({"op":"echo","id":"req-\u00fc-\ud83d\ude80","size":64})", patterned(64, 1)},
        {R"({"op":"upload","id":-7,"name":"résumé.pdf","size":70000})", patterned(70000, 2)},
        {R"({"op":"echo","id":"","size":0})", ""},
        {"{\"op\":\"echo\",\"id\":\"日本語 🚀\",\"note\":\"é 𝄞 \\u00e9\",\"size\":5}", "hello"},
        {"{ \"op\" : \"frobnicate\" ,\n\t\"id\" : 18446744073709551615 , \"extra\": {\"a\":[1,2,{\"b\":null}]}, \"size\": 3 }", "abc"},
        {R"({"id":-9223372036854775808,"op":"stat","name":"a b","size":2})", std::string("\0\xff", 2)},
        {R"({"op":"login","user":"alice","password":"correct horse"})", ""},
    };
}

void check_frames_equal(const decode_result& r, const std::vector<test_frame>& expected, body_mode mode)
{
    BOOST_TEST(!r.error.has_value());
    BOOST_TEST(r.ended_at_boundary);
    BOOST_REQUIRE_EQUAL(r.frames.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        BOOST_TEST_CONTEXT("frame " << i) {
            const auto& got = r.frames[i];
            const json::object want = json::parse(expected[i].header).as_object();
            BOOST_TEST(got.fields == want);
            BOOST_TEST(got.size == expected[i].body.size());
            BOOST_TEST(got.body_complete);
            if (const auto* op_text = want.if_contains("op"); op_text && op_text->is_string()) {
                BOOST_TEST(got.op_name == std::string(op_text->get_string()));
                BOOST_TEST((got.operation == op_from_name(op_text->get_string())));
            }
            if (const auto* id = want.if_contains("id")) {
                BOOST_REQUIRE(got.id.has_value());
                BOOST_TEST((*got.id == *id));
            } else {
                BOOST_TEST(!got.id.has_value());
            }
            BOOST_TEST(!got.field_error.has_value());
            if (mode == body_mode::skip)
                BOOST_TEST(got.body.empty());
            else
                BOOST_TEST((got.body == expected[i].body));
        }
    }
}

const std::size_t chunk_sizes[] = {std::numeric_limits<std::size_t>::max(), 1000, 100, 10, 5, 2, 1};

/// Decodes a single frame whose header is `header_json` (no body), all bytes at once.
struct single_result {
    decoder::event ev;
    std::optional<decoded_frame> frame;
    errc error = errc::internal;
};

single_result decode_one(std::string_view header_json, decoder_limits limits = {})
{
    decoder d(limits);
    const std::string wire = frame_with_header(header_json);
    d.feed({wire.data(), wire.size()});
    single_result r{d.next(), std::nullopt};
    if (r.ev == decoder::event::header)
        r.frame = copy_header(d.header());
    else if (r.ev == decoder::event::error)
        r.error = d.error();
    return r;
}

void expect_bad_header(std::string_view header_json)
{
    BOOST_TEST_CONTEXT("header " << header_json.substr(0, 80) << (header_json.size() > 80 ? "..." : "")) {
        const auto r = decode_one(header_json);
        BOOST_TEST((r.ev == decoder::event::error));
        BOOST_TEST((r.error == errc::bad_header));
    }
}

std::string nested(std::size_t depth)
{
    // {"op":"ping","x": [[[...]]]} with `depth` levels of arrays under the object.
    return R"({"op":"ping","x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol_decoder)

// ---- Frames at every fragmentation -------------------------------------------------------

BOOST_AUTO_TEST_CASE(buffered_frames_survive_every_fragmentation, *boost::unit_test::timeout(60))
{
    const auto frames = sample_frames();
    const std::string wire = wire_of(frames);
    for (const std::size_t chunk : chunk_sizes) {
        BOOST_TEST_CONTEXT("chunk " << chunk) {
            check_frames_equal(decode_in_chunks(wire, chunk, body_mode::buffer), frames, body_mode::buffer);
        }
    }
}

BOOST_AUTO_TEST_CASE(streamed_bodies_concatenate_to_the_original_at_every_fragmentation, *boost::unit_test::timeout(60))
{
    const auto frames = sample_frames();
    const std::string wire = wire_of(frames);
    for (const std::size_t chunk : chunk_sizes) {
        BOOST_TEST_CONTEXT("chunk " << chunk) {
            const auto r = decode_in_chunks(wire, chunk, body_mode::stream);
            check_frames_equal(r, frames, body_mode::stream);
            BOOST_TEST(!r.empty_chunk_seen);
            BOOST_TEST(!r.remaining_mismatch);
            if (chunk == 1) // one byte at a time: one piece per body byte
                BOOST_TEST(r.body_chunks == 64u + 70000u + 1u + 5u + 3u + 2u);
        }
    }
}

BOOST_AUTO_TEST_CASE(skipped_bodies_leave_the_next_header_intact_at_every_fragmentation, *boost::unit_test::timeout(60))
{
    const auto frames = sample_frames();
    const std::string wire = wire_of(frames);
    for (const std::size_t chunk : chunk_sizes) {
        BOOST_TEST_CONTEXT("chunk " << chunk) {
            const auto r = decode_in_chunks(wire, chunk, body_mode::skip);
            check_frames_equal(r, frames, body_mode::skip);
            BOOST_TEST(r.body_chunks == 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE(mixed_body_modes_per_frame_stay_in_step, *boost::unit_test::timeout(30))
{
    const auto frames = sample_frames();
    const std::string wire = wire_of(frames);
    for (const std::size_t chunk : {std::size_t{7}, std::size_t{4096}}) {
        BOOST_TEST_CONTEXT("chunk " << chunk) {
            decoder d;
            std::vector<std::string> bodies;
            std::size_t headers = 0;
            for (std::size_t at = 0; at < wire.size(); at += chunk) {
                d.feed({wire.data() + at, std::min(chunk, wire.size() - at)});
                for (bool more = true; more;) {
                    const auto ev = d.next();
                    BOOST_REQUIRE((ev != decoder::event::error));
                    switch (ev) {
                    case decoder::event::header:
                        bodies.emplace_back();
                        switch (headers++ % 3) {
                        case 0: d.buffer_body(); break;
                        case 1: d.stream_body(); break;
                        default: d.skip_body(); break;
                        }
                        break;
                    case decoder::event::frame:
                    case decoder::event::body_chunk:
                        bodies.back().append(d.body().data(), d.body().size());
                        break;
                    case decoder::event::need_more: more = false; break;
                    default: break;
                    }
                }
            }
            BOOST_REQUIRE_EQUAL(bodies.size(), frames.size());
            for (std::size_t i = 0; i < frames.size(); ++i) {
                const std::string want = i % 3 == 2 ? std::string{} : frames[i].body;
                BOOST_TEST((bodies[i] == want), "frame " << i);
            }
            BOOST_TEST(d.at_frame_boundary());
        }
    }
}

BOOST_AUTO_TEST_CASE(prepare_and_commit_deliver_the_same_frames_as_feed, *boost::unit_test::timeout(30))
{
    const auto frames = sample_frames();
    const std::string wire = wire_of(frames);
    decoder d;
    std::vector<std::string> bodies;
    std::size_t at = 0;
    while (at < wire.size()) {
        const auto space = d.prepare(13);
        BOOST_REQUIRE_GE(space.size(), 13u);
        const std::size_t n = std::min<std::size_t>({space.size(), 13, wire.size() - at});
        std::memcpy(space.data(), wire.data() + at, n);
        d.commit(n);
        at += n;
        for (auto ev = d.next(); ev != decoder::event::need_more; ev = d.next()) {
            BOOST_REQUIRE((ev != decoder::event::error));
            if (ev == decoder::event::header)
                d.buffer_body();
            else if (ev == decoder::event::frame)
                bodies.emplace_back(d.body().data(), d.body().size());
        }
    }
    BOOST_REQUIRE_EQUAL(bodies.size(), frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i)
        BOOST_TEST((bodies[i] == frames[i].body), "frame " << i);
}

// ---- Bodies of size 0 --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(empty_body_buffered_yields_an_empty_frame, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = frame_with_header(R"({"op":"ping","size":0})");
    d.feed({wire.data(), wire.size()});
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST(d.body_remaining() == 0u);
    d.buffer_body();
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST(d.body().empty());
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(d.at_frame_boundary());
}

BOOST_AUTO_TEST_CASE(empty_body_streamed_yields_body_end_without_chunks, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = frame_with_header(R"({"op":"ping"})");
    d.feed({wire.data(), wire.size()});
    BOOST_TEST((d.next() == decoder::event::header));
    d.stream_body();
    BOOST_TEST((d.next() == decoder::event::body_end));
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(d.at_frame_boundary());
}

BOOST_AUTO_TEST_CASE(empty_body_skipped_goes_straight_to_the_next_header, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = frame_with_header(R"({"op":"ping"})") + frame_with_header(R"({"op":"hello","id":2})");
    d.feed({wire.data(), wire.size()});
    BOOST_TEST((d.next() == decoder::event::header));
    d.skip_body();
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST((d.header().operation == op::hello));
    d.skip_body();
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(d.at_frame_boundary());
}

// ---- State queries -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(state_queries_follow_the_frame, *boost::unit_test::timeout(10))
{
    const std::string body = "0123456789";
    const std::string wire = wire_of(test_frame{R"({"op":"echo","size":10})", body});
    const std::size_t header_end = prefix_bytes + std::strlen(R"({"op":"echo","size":10})");
    decoder d;

    BOOST_TEST(d.at_frame_boundary());
    BOOST_TEST(!d.in_header());
    BOOST_TEST(!d.in_body());
    BOOST_TEST(d.buffered() == 0u);

    d.feed({wire.data(), 2}); // half the prefix
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(!d.at_frame_boundary());
    BOOST_TEST(d.in_header());
    BOOST_TEST(!d.in_body());

    d.feed({wire.data() + 2, 2}); // exactly the prefix, no header byte yet
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(!d.at_frame_boundary());
    BOOST_TEST(d.in_header());
    BOOST_TEST(!d.in_body());
    BOOST_TEST(d.buffered() == 0u);

    d.feed({wire.data() + 4, 4}); // part of the header
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(!d.at_frame_boundary());
    BOOST_TEST(d.in_header());
    BOOST_TEST(!d.in_body());

    d.feed({wire.data() + 8, header_end - 8 + 3}); // rest of the header and 3 body bytes
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST(!d.at_frame_boundary());
    BOOST_TEST(!d.in_header());
    BOOST_TEST(!d.in_body()); // no body handling chosen yet
    BOOST_TEST(d.body_remaining() == 10u);
    BOOST_TEST(d.buffered() == 3u);

    d.buffer_body();
    BOOST_TEST(d.in_body());
    BOOST_TEST(d.buffering_body());
    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(d.in_body());
    BOOST_TEST(!d.in_header());
    BOOST_TEST(!d.at_frame_boundary());

    d.feed({wire.data() + header_end + 3, body.size() - 3});
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST((std::string(d.body().data(), d.body().size()) == body));
    BOOST_TEST(!d.in_body());
    BOOST_TEST(!d.buffering_body());

    BOOST_TEST((d.next() == decoder::event::need_more));
    BOOST_TEST(d.at_frame_boundary());
    BOOST_TEST(!d.in_header());
    BOOST_TEST(!d.in_body());
    BOOST_TEST(d.buffered() == 0u);
}

BOOST_AUTO_TEST_CASE(streaming_and_skipping_count_as_in_body, *boost::unit_test::timeout(10))
{
    const std::string wire = wire_of(test_frame{R"({"op":"echo","size":4})", "abcd"});
    for (const bool stream : {true, false}) {
        BOOST_TEST_CONTEXT((stream ? "stream" : "skip")) {
            decoder d;
            d.feed({wire.data(), wire.size() - 2});
            BOOST_TEST((d.next() == decoder::event::header));
            if (stream)
                d.stream_body();
            else
                d.skip_body();
            BOOST_TEST(d.in_body());
            BOOST_TEST(!d.buffering_body());
            if (stream) {
                BOOST_TEST((d.next() == decoder::event::body_chunk));
                BOOST_TEST((std::string(d.body().data(), d.body().size()) == "ab"));
                BOOST_TEST(d.body_remaining() == 2u);
            }
            BOOST_TEST((d.next() == decoder::event::need_more));
            BOOST_TEST(d.in_body());
            BOOST_TEST(d.body_remaining() == 2u);
            d.feed({wire.data() + wire.size() - 2, 2});
            if (stream) {
                BOOST_TEST((d.next() == decoder::event::body_chunk));
                BOOST_TEST((std::string(d.body().data(), d.body().size()) == "cd"));
                BOOST_TEST((d.next() == decoder::event::body_end));
            }
            BOOST_TEST((d.next() == decoder::event::need_more));
            BOOST_TEST(!d.in_body());
            BOOST_TEST(d.at_frame_boundary());
        }
    }
}

BOOST_AUTO_TEST_CASE(next_without_choosing_a_body_mode_is_a_logic_error, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = frame_with_header(R"({"op":"ping"})");
    d.feed({wire.data(), wire.size()});
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_CHECK_THROW(d.next(), std::logic_error);
}

// ---- Memory ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(release_memory_frees_an_idle_buffer_and_decoding_continues, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string first = wire_of(test_frame{R"({"op":"echo","size":3})", "abc"});
    d.feed({first.data(), first.size()});
    BOOST_TEST(d.capacity() > 0u);
    BOOST_TEST((d.next() == decoder::event::header));
    d.buffer_body();
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST((d.next() == decoder::event::need_more));
    d.release_memory();
    BOOST_TEST(d.capacity() == 0u);
    BOOST_TEST(d.at_frame_boundary());

    const std::string second = wire_of(test_frame{R"({"op":"echo","id":2,"size":2})", "xy"});
    d.feed({second.data(), second.size()});
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_REQUIRE(d.header().id != nullptr);
    BOOST_TEST(d.header().id->as_int64() == 2);
    d.buffer_body();
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST((std::string(d.body().data(), d.body().size()) == "xy"));
}

BOOST_AUTO_TEST_CASE(release_memory_keeps_a_partly_received_frame, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = wire_of(test_frame{R"({"op":"echo","size":3})", "abc"});
    d.feed({wire.data(), 9});
    BOOST_TEST((d.next() == decoder::event::need_more));
    const auto capacity = d.capacity();
    BOOST_TEST(capacity > 0u);
    d.release_memory();
    BOOST_TEST(d.capacity() == capacity);
    BOOST_TEST(d.buffered() == 9u - prefix_bytes);

    d.feed({wire.data() + 9, wire.size() - 9});
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST((d.header().operation == op::echo));
    d.buffer_body();
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST((std::string(d.body().data(), d.body().size()) == "abc"));
}

BOOST_AUTO_TEST_CASE(steady_state_header_parsing_allocates_nothing, *boost::unit_test::timeout(10))
{
    // decoder.hpp: the header parser "keeps its memory between calls, so
    // steady-state parsing allocates nothing".
    std::string wire;
    append_request(wire, R"({"op":"echo","id":"abc-123","size":2,"tags":["a","b",{"c":1}]})", std::span<const char>("hi", 2));
    decoder d;
    int decoded = 0; // no test macros inside the counted loop: they may allocate
    auto one_frame = [&] {
        d.feed({wire.data(), wire.size()});
        if (d.next() != decoder::event::header)
            return;
        d.skip_body();
        if (d.next() == decoder::event::need_more)
            ++decoded;
    };
    for (int i = 0; i < 10; ++i)
        one_frame(); // warm up: buffer and arena reach their size
    const long before = heap_allocations.load();
    for (int i = 0; i < 100; ++i)
        one_frame();
    const long allocations = heap_allocations.load() - before;
    BOOST_REQUIRE_EQUAL(decoded, 110);
    BOOST_TEST(allocations == 0, allocations << " heap allocations for 100 headers");
}

BOOST_AUTO_TEST_CASE(large_then_small_headers_reuse_the_parser, *boost::unit_test::timeout(10))
{
    const std::string big_note(12000, 'n');
    const std::vector<test_frame> frames = {
        {R"({"op":"echo","id":"big","note":")" + big_note + R"(","size":1})", "1"},
        {R"({"op":"ping","id":3})", ""},
        {R"({"op":"echo","id":"big2","note":")" + big_note + R"(","k":[1,2,3],"size":2})", "22"},
        {R"({"op":"whoami"})", ""},
    };
    check_frames_equal(decode_in_chunks(wire_of(frames), 4096, body_mode::buffer), frames, body_mode::buffer);
}

BOOST_AUTO_TEST_CASE(a_long_run_of_large_headers_keeps_the_parser_memory_bounded, *boost::unit_test::timeout(30))
{
    // Regression (found by fuzz_header): the reused arena doubled its next
    // block on every header past its first 2 KiB, asking for 2 GiB after
    // about twenty such headers.
    std::string fields;
    for (int i = 0; i < 300; ++i)
        fields += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
    const std::string header = R"({"op":"ping")" + fields + "}";
    header_parser parser;
    const long before = heap_allocations.load();
    for (int i = 0; i < 200; ++i) {
        request_header h;
        errc error{};
        BOOST_TEST_REQUIRE(parser.parse(header, h, error));
        BOOST_TEST_REQUIRE((h.operation == op::ping));
    }
    // A few blocks per header at most; the broken arena needed ever larger ones.
    BOOST_TEST(heap_allocations.load() - before < 200 * 8);
}

// ---- Errors on the frame itself ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(rejects_zero_header_length, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = binary_prefix(0) + R"({"op":"ping"})";
    d.feed({wire.data(), wire.size()});
    BOOST_TEST((d.next() == decoder::event::error));
    BOOST_TEST((d.error() == errc::bad_frame));
}

BOOST_AUTO_TEST_CASE(rejects_oversized_header_length_from_the_prefix_alone, *boost::unit_test::timeout(10))
{
    for (const std::uint32_t len : {16385u, 1u << 20, 0xFFFFFFFFu}) {
        BOOST_TEST_CONTEXT("header_len " << len) {
            decoder d;
            const std::string wire = binary_prefix(len); // no header bytes at all
            d.feed({wire.data(), wire.size()});
            BOOST_TEST((d.next() == decoder::event::error));
            BOOST_TEST((d.error() == errc::header_too_large));
        }
    }
}

BOOST_AUTO_TEST_CASE(accepts_a_header_of_exactly_the_limit, *boost::unit_test::timeout(10))
{
    for (const std::uint32_t limit : {64u, 16384u}) {
        BOOST_TEST_CONTEXT("limit " << limit) {
            std::string header = R"({"op":"ping","pad":")";
            header += std::string(limit - header.size() - 2, 'p');
            header += "\"}";
            BOOST_REQUIRE_EQUAL(header.size(), limit);

            const auto at_limit = decode_one(header, {limit});
            BOOST_TEST((at_limit.ev == decoder::event::header));

            std::string over = header;
            over.insert(over.size() - 2, "p");
            const auto past = decode_one(over, {limit});
            BOOST_TEST((past.ev == decoder::event::error));
            BOOST_TEST((past.error == errc::header_too_large));
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_header_that_is_not_json, *boost::unit_test::timeout(10))
{
    expect_bad_header("hello");
    expect_bad_header("{op:ping}");
    expect_bad_header("{'op':'ping'}");
    expect_bad_header(R"({"op":"ping")");          // truncated
    expect_bad_header(R"({"op":"ping",})");        // trailing comma: strict JSON
    expect_bad_header(R"({"op":"ping" /* c */})"); // comments: strict JSON
    expect_bad_header(" ");
}

BOOST_AUTO_TEST_CASE(rejects_json_that_is_not_an_object, *boost::unit_test::timeout(10))
{
    expect_bad_header(R"(["op","ping"])");
    expect_bad_header("[]");
    expect_bad_header(R"("ping")");
    expect_bad_header("42");
    expect_bad_header("-1.5");
    expect_bad_header("true");
    expect_bad_header("null");
}

BOOST_AUTO_TEST_CASE(rejects_invalid_utf8_inside_json_strings, *boost::unit_test::timeout(10))
{
    expect_bad_header("{\"op\":\"ping\",\"note\":\"\xff\"}");          // byte never valid
    expect_bad_header("{\"op\":\"ping\",\"note\":\"a\x80z\"}");        // lone continuation
    expect_bad_header("{\"op\":\"ping\",\"note\":\"\xc0\xaf\"}");      // overlong '/'
    expect_bad_header("{\"op\":\"ping\",\"note\":\"\xe0\x80\xaf\"}");  // overlong, 3 bytes
    expect_bad_header("{\"op\":\"ping\",\"note\":\"\xed\xa0\x80\"}");  // UTF-16 surrogate
    expect_bad_header("{\"op\":\"ping\",\"note\":\"\xe2\x82\"}");      // truncated sequence
    expect_bad_header("{\"op\":\"ping\",\"note\":\"\xf4\x90\x80\x80\"}"); // past U+10FFFF
    expect_bad_header("{\"op\":\"\xff\"}");
    expect_bad_header("{\"\xfe\":1,\"op\":\"ping\"}"); // in a key
}

BOOST_AUTO_TEST_CASE(rejects_trailing_garbage_after_the_object, *boost::unit_test::timeout(10))
{
    expect_bad_header(R"({"op":"ping"} x)");
    expect_bad_header(R"({"op":"ping"}{})");
    expect_bad_header(R"({"op":"ping"}})");
    expect_bad_header(std::string(R"({"op":"ping"})") + std::string(1, '\0'));
}

BOOST_AUTO_TEST_CASE(rejects_size_that_is_not_a_non_negative_integer, *boost::unit_test::timeout(10))
{
    expect_bad_header(R"({"op":"echo","size":-1})");
    expect_bad_header(R"({"op":"echo","size":-9223372036854775808})");
    expect_bad_header(R"({"op":"echo","size":1.5})");
    expect_bad_header(R"({"op":"echo","size":5.0})");
    expect_bad_header(R"({"op":"echo","size":1e2})");
    expect_bad_header(R"({"op":"echo","size":18446744073709551616})"); // past u64: a double
    expect_bad_header(R"({"op":"echo","size":"5"})");
    expect_bad_header(R"({"op":"echo","size":null})");
    expect_bad_header(R"({"op":"echo","size":true})");
    expect_bad_header(R"({"op":"echo","size":[5]})");
    expect_bad_header(R"({"op":"echo","size":{"n":5}})");
    expect_bad_header(R"({"size":-1})"); // size is checked even without an op
}

BOOST_AUTO_TEST_CASE(accepts_size_at_the_integer_limits, *boost::unit_test::timeout(10))
{
    const auto zero = decode_one(R"({"op":"echo","size":0})");
    BOOST_REQUIRE((zero.ev == decoder::event::header));
    BOOST_TEST(zero.frame->size == 0u);

    const auto huge = decode_one(R"({"op":"upload","size":18446744073709551615})");
    BOOST_REQUIRE((huge.ev == decoder::event::header));
    BOOST_TEST(huge.frame->size == std::numeric_limits<std::uint64_t>::max());

    const auto absent = decode_one(R"({"op":"echo"})");
    BOOST_REQUIRE((absent.ev == decoder::event::header));
    BOOST_TEST(absent.frame->size == 0u);
}

BOOST_AUTO_TEST_CASE(rejects_nesting_deeper_than_the_depth_limit, *boost::unit_test::timeout(10))
{
    expect_bad_header(nested(64));
    expect_bad_header(nested(1000));
    BOOST_REQUIRE_LE(nested(8000).size(), 16384u);
    expect_bad_header(nested(8000)); // still under max_header_bytes

    const auto shallow = decode_one(nested(8));
    BOOST_TEST((shallow.ev == decoder::event::header));

    decoder_limits tight;
    tight.max_json_depth = 4;
    const auto deep_for_tight = decode_one(nested(8), tight);
    BOOST_TEST((deep_for_tight.ev == decoder::event::error));
    BOOST_TEST((deep_for_tight.error == errc::bad_header));
    const auto fits_tight = decode_one(nested(2), tight);
    BOOST_TEST((fits_tight.ev == decoder::event::header));
}

BOOST_AUTO_TEST_CASE(error_is_sticky, *boost::unit_test::timeout(10))
{
    const std::pair<std::string, errc> bad_starts[] = {
        {binary_prefix(0), errc::bad_frame},
        {binary_prefix(100000), errc::header_too_large},
        {frame_with_header("[1]"), errc::bad_header},
    };
    const std::string good = wire_of(test_frame{R"({"op":"ping"})", ""});
    for (const auto& [wire, code] : bad_starts) {
        BOOST_TEST_CONTEXT("expected " << to_string(code)) {
            decoder d;
            d.feed({wire.data(), wire.size()});
            BOOST_TEST((d.next() == decoder::event::error));
            BOOST_TEST((d.error() == code));
            for (int i = 0; i < 3; ++i) {
                d.feed({good.data(), good.size()});
                BOOST_TEST((d.next() == decoder::event::error));
                BOOST_TEST((d.error() == code));
            }
        }
    }
}

// ---- op and id ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(missing_or_unknown_op_still_yields_a_header, *boost::unit_test::timeout(10))
{
    const std::pair<std::string_view, std::string_view> cases[] = {
        {R"({"id":1})", ""},
        {R"({"op":1,"id":1})", ""},
        {R"({"op":null,"id":1})", ""},
        {R"({"op":["ping"],"id":1})", ""},
        {R"({"op":{"name":"ping"},"id":1})", ""},
        {R"({"op":true,"id":1})", ""},
        {R"({"op":"frobnicate","id":1})", "frobnicate"},
        {R"({"op":"PING","id":1})", "PING"},
        {R"({"op":"ping ","id":1})", "ping "},
        {R"({"op":"","id":1})", ""},
        {R"({"op":"register_user","id":1})", "register_user"},
    };
    for (const auto& [header, name] : cases) {
        BOOST_TEST_CONTEXT("header " << header) {
            const auto r = decode_one(header);
            BOOST_REQUIRE((r.ev == decoder::event::header));
            BOOST_TEST(!r.frame->operation.has_value());
            BOOST_TEST(r.frame->op_name == std::string(name));
            BOOST_REQUIRE(r.frame->id.has_value());
            BOOST_TEST(r.frame->id->as_int64() == 1);
            BOOST_TEST(!r.frame->field_error.has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(every_contract_op_is_recognised, *boost::unit_test::timeout(10))
{
    const std::pair<std::string_view, op> contract_ops[] = {
        {"ping", op::ping},         {"hello", op::hello},   {"echo", op::echo},
        {"register", op::register_user}, {"login", op::login}, {"logout", op::logout},
        {"whoami", op::whoami},     {"upload", op::upload}, {"download", op::download},
        {"stat", op::stat},         {"list", op::list},     {"delete", op::delete_file},
        {"stats", op::stats},
    };
    BOOST_TEST(std::size(contract_ops) == op_count);
    for (const auto& [name, expected] : contract_ops) {
        BOOST_TEST_CONTEXT("op " << name) {
            BOOST_TEST(to_string(expected) == name);
            BOOST_TEST((op_from_name(name) == expected));
            const auto r = decode_one(R"({"op":")" + std::string(name) + R"("})");
            BOOST_REQUIRE((r.ev == decoder::event::header));
            BOOST_TEST((r.frame->operation == expected));
            BOOST_TEST(offered_on_udp(expected) == (expected == op::ping || expected == op::echo));
        }
    }
}

BOOST_AUTO_TEST_CASE(id_of_a_wrong_type_is_a_field_error, *boost::unit_test::timeout(10))
{
    for (const std::string_view id : {R"({"n":1})", "[1]", "[]", "true", "false", "null", "1.5", "1.0", "-0.0", "1e3"}) {
        BOOST_TEST_CONTEXT("id " << id) {
            const auto r = decode_one(R"({"op":"ping","id":)" + std::string(id) + "}");
            BOOST_REQUIRE((r.ev == decoder::event::header));
            BOOST_TEST((r.frame->field_error == errc::bad_request));
            BOOST_TEST(!r.frame->id.has_value());
            BOOST_TEST((r.frame->operation == op::ping));
        }
    }
}

BOOST_AUTO_TEST_CASE(id_of_integer_or_string_is_accepted, *boost::unit_test::timeout(10))
{
    const std::string_view ids[] = {
        "0", "7", "-1", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
        R"("")", R"("abc")", R"("q\"uote\\back\nline\u0001")", R"("日本語 🚀")",
    };
    for (const auto id : ids) {
        BOOST_TEST_CONTEXT("id " << id) {
            const auto r = decode_one(R"({"op":"ping","id":)" + std::string(id) + "}");
            BOOST_REQUIRE((r.ev == decoder::event::header));
            BOOST_TEST(!r.frame->field_error.has_value());
            BOOST_REQUIRE(r.frame->id.has_value());
            BOOST_TEST((*r.frame->id == json::parse(id)));
        }
    }
}

BOOST_AUTO_TEST_CASE(frame_with_a_field_error_can_be_skipped_and_the_next_one_decodes, *boost::unit_test::timeout(10))
{
    const std::vector<test_frame> frames = {
        {R"({"op":"echo","id":{"x":1},"size":5})", "12345"},
        {R"({"op":"nope","size":3})", "abc"},
        {R"({"op":"echo","id":9,"size":2})", "ok"},
    };
    const std::string wire = wire_of(frames);
    decoder d;
    d.feed({wire.data(), wire.size()});
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST((d.header().field_error == errc::bad_request));
    d.skip_body();
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST(!d.header().operation.has_value());
    d.skip_body();
    BOOST_TEST((d.next() == decoder::event::header));
    BOOST_TEST((d.header().operation == op::echo));
    BOOST_TEST(!d.header().field_error.has_value());
    d.buffer_body();
    BOOST_TEST((d.next() == decoder::event::frame));
    BOOST_TEST((std::string(d.body().data(), d.body().size()) == "ok"));
}

BOOST_AUTO_TEST_CASE(op_specific_fields_are_read_with_their_types, *boost::unit_test::timeout(10))
{
    decoder d;
    const std::string wire = frame_with_header(
        R"({"op":"upload","name":"a.txt","offset":12,"neg":-3,"frac":1.5,"num_as_text":"12","nil":null})");
    d.feed({wire.data(), wire.size()});
    BOOST_REQUIRE((d.next() == decoder::event::header));
    const auto& h = d.header();
    BOOST_TEST((string_field(h, "name") == std::optional<std::string_view>{"a.txt"}));
    BOOST_TEST(!string_field(h, "offset").has_value());
    BOOST_TEST(!string_field(h, "missing").has_value());
    BOOST_TEST((uint_field(h, "offset") == std::optional<std::uint64_t>{12}));
    BOOST_TEST(!uint_field(h, "neg").has_value());
    BOOST_TEST(!uint_field(h, "frac").has_value());
    BOOST_TEST(!uint_field(h, "num_as_text").has_value());
    BOOST_TEST(!uint_field(h, "missing").has_value());
    BOOST_TEST(has_field(h, "nil"));
    BOOST_TEST(has_field(h, "name"));
    BOOST_TEST(!has_field(h, "missing"));

    const request_header empty{};
    BOOST_TEST(!has_field(empty, "name"));
    BOOST_TEST(!string_field(empty, "name").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
