#pragma once
/// Incremental frame decoder: feed it any number of bytes at a time; it yields
/// request headers, then bodies in the way the caller chose for each one.
///
/// Frame: u32 header_len (big-endian) | header_len bytes of JSON object | size bytes of body.

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/header.hpp>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace fxd::protocol {

inline constexpr std::size_t prefix_bytes = 4;

struct decoder_limits {
    std::uint32_t max_header_bytes = 16384;
    std::size_t max_json_depth = 32;
};

/// Parses one header's JSON text and checks the fields every op shares.
/// Keeps its memory between calls, so steady-state parsing allocates nothing.
///
/// Two paths give the same answer: a scanner for the common shape (one flat
/// object of short ASCII strings without escapes, unsigned integers up to 19
/// digits and booleans, no key twice, at most max_flat_members) that reads it
/// in place, and Boost.JSON for everything else. The scanner gives up on
/// anything it does not fully understand, and fuzz_header checks both paths
/// against each other on the same text.
class header_parser {
public:
    static constexpr std::size_t max_flat_members = 8;

    explicit header_parser(std::size_t max_depth = 32);
    header_parser(const header_parser&) = delete;
    header_parser& operator=(const header_parser&) = delete;

    /// On success the returned header views this parser's storage and the
    /// text until the next call. Fails with bad_header when the text is not a
    /// UTF-8 JSON object or `size` is not a non-negative integer.
    bool parse(std::string_view json_text, request_header& out, errc& error);

    /// The same with Boost.JSON alone (out.fields is always set): the
    /// reference the fuzzers hold the fast path to.
    bool parse_general(std::string_view json_text, request_header& out, errc& error);

private:
    enum class scan { taken, bad_size, declined };
    scan scan_flat(std::string_view json_text, request_header& out);
    bool parse_tree(std::string_view json_text, request_header& out, errc& error);
    void recycle_storage() noexcept;

    std::size_t max_depth_;
    std::array<header_member, max_flat_members> members_{};
    std::array<unsigned char, 2048> initial_arena_{};
    /// Made anew for each header: Boost 1.81's release() keeps doubling the
    /// next block size, so a reused arena asked for gigabytes after a few
    /// dozen large headers (found by fuzz_header).
    std::optional<boost::json::monotonic_resource> arena_;
    std::array<unsigned char, 1024> parser_stack_{};
    boost::json::parser parser_;
    boost::json::value value_;
    boost::json::value id_value_; ///< the fast path's id (a long string id lives in the arena)
};

class decoder {
public:
    enum class event {
        need_more,   ///< feed more bytes
        header,      ///< header() is ready: call buffer_body(), skip_body() or stream_body()
        frame,       ///< (after buffer_body) the whole body is in body()
        body_chunk,  ///< (after stream_body) body() holds the next piece, already consumed
        body_end,    ///< (after stream_body) the last body byte was delivered
        error,       ///< error() says why; the stream cannot be resynchronised
    };

    explicit decoder(decoder_limits limits = {});

    /// Space to read into: at least min_free bytes. Valid until the next call on the decoder.
    std::span<char> prepare(std::size_t min_free);
    void commit(std::size_t n) noexcept { end_ += n; }
    /// Copies bytes in (for tests and datagrams).
    void feed(std::span<const char> bytes);

    event next();

    /// Before choosing: an op whose body is not `size` bytes (a resumed upload
    /// sends size - offset) sets its real length here.
    void set_body_length(std::uint64_t n) noexcept { remaining_ = n; }
    void buffer_body() noexcept { state_ = state::body_buffer; }
    void skip_body() noexcept { state_ = state::body_skip; }
    void stream_body() noexcept { state_ = state::body_stream; }

    const request_header& header() const noexcept { return header_; }
    std::span<const char> body() const noexcept { return body_; }
    errc error() const noexcept { return error_; }
    /// The last frame's length prefix as read, also when it was refused: after
    /// header_too_large, what the peer sent instead of a frame (a PROXY header's
    /// first bytes, say) can still be told.
    std::uint32_t declared_header_length() const noexcept { return header_len_; }

    /// Body bytes still to come for the current frame.
    std::uint64_t body_remaining() const noexcept { return remaining_; }
    /// Bytes received but not yet decoded.
    std::size_t buffered() const noexcept { return end_ - begin_; }
    /// True between frames with nothing buffered.
    bool at_frame_boundary() const noexcept { return state_ == state::prefix && begin_ == end_; }
    /// True while a frame's prefix or header is partly received.
    bool in_header() const noexcept { return state_ == state::header || (state_ == state::prefix && begin_ != end_); }
    /// True while a body is being buffered, streamed or skipped.
    bool in_body() const noexcept;
    /// True while a body is being gathered whole (after buffer_body()).
    bool buffering_body() const noexcept { return state_ == state::body_buffer; }
    /// Frees the read buffer when nothing is held, and the header parser too
    /// between frames, so an idle connection's decoder holds no memory at all.
    void release_memory() noexcept;
    std::size_t capacity() const noexcept { return capacity_; }

private:
    enum class state { prefix, header, awaiting_choice, body_buffer, body_skip, body_stream, failed };

    event fail(errc code) noexcept;

    /// The header parser and a first read buffer, together in two pages of
    /// their own (mmap): made when the connection becomes busy, unmapped when
    /// it goes idle, so idle connections leave no holes in the heap.
    struct working_set;
    struct working_set_deleter {
        void operator()(working_set* w) const noexcept;
    };
    void ensure_working_set();

    decoder_limits limits_;
    std::unique_ptr<working_set, working_set_deleter> working_;
    std::unique_ptr<char[]> heap_buf_; ///< when more room is needed than the working set's buffer
    char* buf_ = nullptr;              ///< the working set's buffer or heap_buf_
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    state state_ = state::prefix;
    std::uint32_t header_len_ = 0;
    std::uint64_t remaining_ = 0;
    bool frame_pending_release_ = false; // buffered frame delivered; drop it on next call
    std::size_t pending_consume_ = 0;
    request_header header_;
    std::span<const char> body_;
    errc error_ = errc::internal;
};

/// Reads the big-endian u32 at p.
constexpr std::uint32_t load_u32_be(const unsigned char* p) noexcept
{
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

constexpr void store_u32_be(unsigned char* p, std::uint32_t v) noexcept
{
    p[0] = static_cast<unsigned char>(v >> 24);
    p[1] = static_cast<unsigned char>(v >> 16);
    p[2] = static_cast<unsigned char>(v >> 8);
    p[3] = static_cast<unsigned char>(v);
}

} // namespace fxd::protocol
