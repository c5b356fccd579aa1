#pragma once
/// Reply decoding, for clients, tools and tests: one whole frame (a datagram,
/// or a buffer holding exactly one frame), a byte stream fed in pieces of any
/// size, and a scan that finds a reply's end without parsing its JSON.
///
/// Frame: u32 header_len (big-endian) | header_len bytes of JSON object with a
/// non-negative integer "size" | size bytes of body.

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fxd::protocol {

/// A reply that breaks the frame format; what() names the problem. A stream
/// that gave one is out of step and cannot be read further.
class reply_format_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct reply_limits {
    /// fxd's reply headers are small: a larger length means the stream is out
    /// of step, or is not speaking this protocol at all.
    std::uint32_t max_header_bytes = 1 << 24;
};

/// One reply taken apart; body views the bytes it was decoded from.
struct reply_frame {
    boost::json::object header;
    std::uint64_t size = 0; ///< the header's "size": the body's length
    std::string_view body;
};

/// Decodes exactly one whole reply frame: `frame` holds its prefix, header and
/// `size` body bytes, and nothing more. Throws reply_format_error.
reply_frame decode_reply(std::string_view frame, const reply_limits& limits = {});

/// Decodes replies from a byte stream fed in pieces of any size.
class reply_decoder {
public:
    enum class event {
        need_more, ///< feed at least needed() more bytes
        header,    ///< header() is complete and body_size() body bytes follow: call next()
                   ///< to gather them into a whole reply, or release_body() to read them elsewhere
        reply,     ///< header() and body() hold one whole reply
    };

    explicit reply_decoder(reply_limits limits = {}) : limits_(limits) {}

    void feed(std::span<const char> bytes);
    void feed(std::string_view bytes) { feed(std::span(bytes.data(), bytes.size())); }
    /// A std::string converts to both of the above: this one says which.
    void feed(const std::string& bytes) { feed(std::string_view(bytes)); }

    /// Decodes what has been fed. Throws reply_format_error, and again on every
    /// later call: a broken stream cannot be resynchronised.
    event next();

    /// Bytes still missing before next() can report more than need_more. A
    /// blocking reader that reads exactly this many never takes a byte past the
    /// reply's header or body out of its socket.
    std::size_t needed() const noexcept;

    /// After a header event, hands the body over to the caller, who reads the
    /// rest of it straight from its source (a streamed download): returns the
    /// part already fed (at most body_size() bytes); the other bytes of the
    /// body must not be fed. The decoder then expects the next reply.
    std::span<const char> release_body();

    /// Valid from a header event until the next header.
    const boost::json::object& header() const noexcept { return header_; }
    std::uint64_t body_size() const noexcept { return size_; }
    /// After a reply event: its body.
    std::string_view body() const noexcept { return body_; }
    /// True between replies, with no byte of the next one fed.
    bool at_boundary() const noexcept { return state_ == state::prefix && begin_ + consumed_ == buffer_.size(); }

private:
    enum class state { prefix, header, body, broken };

    [[noreturn]] void fail(const std::string& why);

    reply_limits limits_;
    std::string buffer_;
    std::size_t begin_ = 0;    ///< first byte not yet decoded
    std::size_t consumed_ = 0; ///< bytes of a delivered body, dropped at the next call
    state state_ = state::prefix;
    std::uint32_t header_bytes_ = 0;
    boost::json::object header_;
    std::uint64_t size_ = 0;
    std::string_view body_;
    std::string error_;
};

/// Where a reply starts and ends, as scan_reply() finds it.
struct reply_extent {
    std::size_t header_bytes = 0; ///< the prefix and the header
    std::uint64_t body_bytes = 0;
    bool ok = false;              ///< the header begins {"status":"ok"

    std::uint64_t frame_bytes() const noexcept { return header_bytes + body_bytes; }
};

/// The fast path for load generators: the extent of the reply at the start of
/// `bytes`, read from the length prefix and from the `"size":N}` that fxd's
/// reply_writer always writes last, with no JSON parse. nullopt until the
/// prefix and the whole header are there. Throws reply_format_error on a bad
/// length or a header that does not end that way. It reads only what
/// reply_writer writes; decode_reply and reply_decoder read any valid reply.
std::optional<reply_extent> scan_reply(std::string_view bytes, const reply_limits& limits = {});

} // namespace fxd::protocol
