// fuzz_decoder: the incremental frame decoder fed a byte stream in pieces, with
// the body of each frame buffered, skipped or streamed, checked event by event
// against a reference reading of the whole stream (its headers read by
// Boost.JSON alone, so the decoder's fast path is checked here too).
//
// Input: byte 0 = n (low 5 bits: how many choice bytes follow; bit 5: a small
// max_header_bytes), then n choice bytes, then the stream. Each choice byte
// decides one piece's size and how it is handed over (feed or prepare/commit),
// or, at a header event, the body mode and length and whether to release memory.

#include "fuzz_support.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/header.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

namespace {

using fxd::protocol::decoder;
using fxd::protocol::errc;
using fxd::protocol::request_header;
using event = decoder::event;

constexpr std::size_t piece_sizes[] = {1, 2, 3, 4, 7, 16, 100, std::numeric_limits<std::size_t>::max()};

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b)
{
    return b > std::numeric_limits<std::uint64_t>::max() - a ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

/// Where the reference reading of the stream stands.
struct reference {
    enum class phase { frame_start, buffer, stream };
    phase at = phase::frame_start;
    std::uint64_t pos = 0;        ///< frame_start: offset of the next prefix (past a skipped body)
    std::uint64_t body_start = 0; ///< buffer, stream
    std::uint64_t body_end = 0;   ///< buffer, stream
    std::uint64_t next_chunk = 0; ///< stream: offset of the next body byte to deliver
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const std::size_t n_choices = std::min<std::size_t>(data[0] & 0x1F, size - 1);
    fxd::protocol::decoder_limits limits;
    if (data[0] & 0x20)
        limits.max_header_bytes = 64;
    fxd::fuzz::choices choose({data + 1, n_choices});
    const std::string_view stream(reinterpret_cast<const char*>(data) + 1 + n_choices, size - 1 - n_choices);

    decoder dec(limits);
    fxd::protocol::header_parser ref_parser(limits.max_json_depth);
    request_header ref_header;
    reference ref;
    bool failed = false;
    std::uint64_t fed = 0;
    std::uint64_t consumed = 0; // fed - buffered(): never goes back

    // The reference reading of the frame whose prefix starts at ref.pos, once
    // enough is fed: nullopt while incomplete, else ok or the error it must give.
    struct frame_view {
        bool complete = false;
        bool ok = false;
        errc code{};
        std::uint32_t header_len = 0;
    };
    auto read_frame = [&]() {
        frame_view v;
        if (fed < ref.pos || fed - ref.pos < fxd::protocol::prefix_bytes)
            return v;
        const auto at = static_cast<std::size_t>(ref.pos);
        v.header_len = fxd::protocol::load_u32_be(reinterpret_cast<const unsigned char*>(stream.data() + at));
        if (v.header_len == 0 || v.header_len > limits.max_header_bytes) {
            v.complete = true;
            v.code = v.header_len == 0 ? errc::bad_frame : errc::header_too_large;
            return v;
        }
        if (fed - ref.pos - fxd::protocol::prefix_bytes < v.header_len)
            return v;
        v.complete = true;
        v.ok = ref_parser.parse_general(stream.substr(at + fxd::protocol::prefix_bytes, v.header_len), ref_header, v.code);
        return v;
    };

    auto check_progress = [&] {
        FXD_FUZZ_CHECK(dec.buffered() <= fed);
        const std::uint64_t now = fed - dec.buffered();
        FXD_FUZZ_CHECK(now >= consumed);
        consumed = now;
    };

    // Decodes everything the bytes fed so far allow.
    auto drain = [&] {
        if (failed) {
            FXD_FUZZ_CHECK(dec.next() == event::error); // no frame ever follows an error
            return;
        }
        for (std::size_t guard = 0;; ++guard) {
            FXD_FUZZ_CHECK(guard <= 3 * stream.size() + 8); // every event but need_more makes progress
            const event ev = dec.next();
            check_progress();
            switch (ev) {
            case event::need_more: {
                switch (ref.at) {
                case reference::phase::frame_start: {
                    const auto v = read_frame();
                    FXD_FUZZ_CHECK(!v.complete);
                    FXD_FUZZ_CHECK(dec.at_frame_boundary() == (fed == ref.pos));
                    FXD_FUZZ_CHECK(dec.in_header() == (fed > ref.pos));
                    FXD_FUZZ_CHECK(dec.in_body() == (fed < ref.pos)); // still skipping a body
                    break;
                }
                case reference::phase::buffer:
                    FXD_FUZZ_CHECK(fed < ref.body_end);
                    FXD_FUZZ_CHECK(dec.buffering_body() && dec.in_body());
                    break;
                case reference::phase::stream:
                    FXD_FUZZ_CHECK(ref.next_chunk == fed && fed < ref.body_end);
                    FXD_FUZZ_CHECK(dec.buffered() == 0 && dec.in_body());
                    break;
                }
                if (choose.next() & 0x80)
                    dec.release_memory();
                return;
            }
            case event::error: {
                FXD_FUZZ_CHECK(ref.at == reference::phase::frame_start);
                const auto v = read_frame();
                FXD_FUZZ_CHECK(v.complete && !v.ok);
                FXD_FUZZ_CHECK(dec.error() == v.code);
                failed = true;
                FXD_FUZZ_CHECK(dec.next() == event::error);
                return;
            }
            case event::header: {
                FXD_FUZZ_CHECK(ref.at == reference::phase::frame_start);
                const auto v = read_frame();
                FXD_FUZZ_CHECK(v.complete && v.ok);
                const auto& h = dec.header();
                FXD_FUZZ_CHECK(fxd::protocol::same_reading(h, ref_header));
                FXD_FUZZ_CHECK(dec.body_remaining() == h.size);
                FXD_FUZZ_CHECK(!dec.in_body());

                const std::uint8_t c = choose.next();
                std::uint64_t body_len = h.size;
                if (c & 0x04) { // a resumed upload: the body is size - offset
                    const auto offset = fxd::protocol::uint_field(h, "offset");
                    if (offset && *offset <= h.size)
                        body_len = h.size - *offset;
                    dec.set_body_length(body_len);
                } else if (c & 0x08) { // any shorter length the caller may set
                    body_len = std::min<std::uint64_t>(h.size, c >> 4);
                    dec.set_body_length(body_len);
                }
                ref.body_start = ref.pos + fxd::protocol::prefix_bytes + v.header_len;
                ref.body_end = saturating_add(ref.body_start, body_len);
                switch (c & 0x03) {
                case 0:
                case 3:
                    dec.buffer_body();
                    ref.at = reference::phase::buffer;
                    break;
                case 1:
                    dec.skip_body();
                    ref.pos = ref.body_end;
                    break;
                case 2:
                    dec.stream_body();
                    ref.at = reference::phase::stream;
                    ref.next_chunk = ref.body_start;
                    break;
                }
                break;
            }
            case event::frame: {
                FXD_FUZZ_CHECK(ref.at == reference::phase::buffer);
                FXD_FUZZ_CHECK(fed >= ref.body_end);
                const auto body = dec.body();
                FXD_FUZZ_CHECK(body.size() == ref.body_end - ref.body_start);
                FXD_FUZZ_CHECK(body.empty() ||
                               std::memcmp(body.data(), stream.data() + ref.body_start, body.size()) == 0);
                ref.at = reference::phase::frame_start;
                ref.pos = ref.body_end;
                break;
            }
            case event::body_chunk: {
                FXD_FUZZ_CHECK(ref.at == reference::phase::stream);
                const auto body = dec.body();
                FXD_FUZZ_CHECK(!body.empty());
                FXD_FUZZ_CHECK(body.size() <= ref.body_end - ref.next_chunk);
                FXD_FUZZ_CHECK(std::memcmp(body.data(), stream.data() + ref.next_chunk, body.size()) == 0);
                ref.next_chunk += body.size();
                FXD_FUZZ_CHECK(dec.body_remaining() == ref.body_end - ref.next_chunk);
                break;
            }
            case event::body_end:
                FXD_FUZZ_CHECK(ref.at == reference::phase::stream);
                FXD_FUZZ_CHECK(ref.next_chunk == ref.body_end); // the chunks add up to the body
                ref.at = reference::phase::frame_start;
                ref.pos = ref.body_end;
                break;
            }
        }
    };

    drain(); // nothing fed yet: need_more
    std::size_t offset = 0;
    while (offset < stream.size()) {
        const std::uint8_t c = choose.next();
        const std::size_t n = std::min(piece_sizes[c & 7], stream.size() - offset);
        if (c & 0x08) {
            const auto space = dec.prepare(n + (c >> 4));
            FXD_FUZZ_CHECK(space.size() >= n + (c >> 4));
            std::memcpy(space.data(), stream.data() + offset, n);
            dec.commit(n);
        } else {
            dec.feed({stream.data() + offset, n});
        }
        offset += n;
        fed += n;
        drain();
    }
    return 0;
}
