#pragma once
// Shared by the fuzz targets: invariant checks that abort (so libFuzzer and the
// replay both report them with the input), a byte reader for the choices a
// target takes from its input, and the check that daemon output is well framed.

#include <fxd/protocol/reply.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::fuzz {

/// Aborts with a message when an invariant does not hold.
#define FXD_FUZZ_CHECK(cond)                                                                                  \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
            std::abort();                                                                                     \
        }                                                                                                     \
    } while (false)

/// Hands out the choices a target takes from its input: one byte at a time,
/// cycling through a fixed set; zero when there are none.
class choices {
public:
    choices() = default;
    explicit choices(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    std::uint8_t next() noexcept
    {
        if (bytes_.empty())
            return 0;
        const auto b = bytes_[at_];
        at_ = (at_ + 1) % bytes_.size();
        return b;
    }

private:
    std::span<const std::uint8_t> bytes_;
    std::size_t at_ = 0;
};

/// True when the JSON value v is the string s.
inline bool is_text(const boost::json::value* v, std::string_view s)
{
    return v && v->is_string() && v->get_string() == s;
}
inline bool is_text(const boost::json::value& v, std::string_view s) { return is_text(&v, s); }

/// One reply frame taken apart by check_replies().
struct reply {
    boost::json::object header;
    std::string body;
};

/// Checks that out holds nothing but complete reply frames, as the protocol's
/// reply decoder reads them (a JSON object header with a non-negative "size",
/// then exactly that many body bytes), each with "status" "ok" or "error" and,
/// for an error, a string "code" and no body; returns them.
inline std::vector<reply> check_replies(std::string_view out)
{
    std::vector<reply> replies;
    protocol::reply_decoder decoder;
    decoder.feed(out);
    for (;;) {
        protocol::reply_decoder::event ev{};
        try {
            ev = decoder.next();
        } catch (const protocol::reply_format_error& e) {
            std::fprintf(stderr, "fuzz invariant violated: the daemon wrote a broken reply: %s\n", e.what());
            std::abort();
        }
        if (ev == protocol::reply_decoder::event::need_more)
            break;
        if (ev == protocol::reply_decoder::event::header)
            continue;
        const auto& header = decoder.header();
        const auto* status = header.if_contains("status");
        FXD_FUZZ_CHECK(status && status->is_string());
        const bool ok = status->get_string() == "ok";
        FXD_FUZZ_CHECK(ok || status->get_string() == "error");
        if (!ok) {
            const auto* code = header.if_contains("code");
            FXD_FUZZ_CHECK(code && code->is_string());
            FXD_FUZZ_CHECK(decoder.body().empty());
        }
        replies.push_back({header, std::string(decoder.body())});
    }
    FXD_FUZZ_CHECK(decoder.at_boundary()); // no partial frame left over
    return replies;
}

/// The contract's echo: ASCII letters upper-cased, every other byte as it was.
inline bool is_echo_of(std::string_view reply_body, std::span<const char> request_body)
{
    if (reply_body.size() != request_body.size())
        return false;
    for (std::size_t i = 0; i < reply_body.size(); ++i) {
        const char c = request_body[i];
        const char want = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
        if (reply_body[i] != want)
            return false;
    }
    return true;
}

} // namespace fxd::fuzz
