#include <fxd/util/resumable_sha256.hpp>
#include <fxd/util/hex.hpp>

// OpenSSL 3 deprecates the low-level SHA256_* calls in favour of EVP, whose
// state cannot be read out. These calls still use the same accelerated block
// function (SHA-NI where the CPU has it), and the context is a plain struct.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <array>
#include <charconv>
#include <stdexcept>

namespace fxd::util {

namespace {

/// 64 hex digits into 32 bytes; false when they are not that.
bool words_from_hex(std::string_view hex, std::array<unsigned char, 32>& out)
{
    if (hex.size() != 2 * out.size())
        return false;
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16);
        if (ec != std::errc{} || end != hex.data() + 2 * i + 2)
            return false;
        out[i] = static_cast<unsigned char>(value);
    }
    return true;
}

} // namespace

struct resumable_sha256::state {
    SHA256_CTX ctx{};
};

resumable_sha256::resumable_sha256() : state_(std::make_unique<state>())
{
    SHA256_Init(&state_->ctx);
}

resumable_sha256::~resumable_sha256() = default;
resumable_sha256::resumable_sha256(resumable_sha256&&) noexcept = default;
resumable_sha256& resumable_sha256::operator=(resumable_sha256&&) noexcept = default;

void resumable_sha256::update(std::span<const char> bytes)
{
    SHA256_Update(&state_->ctx, bytes.data(), bytes.size());
}

std::uint64_t resumable_sha256::bytes_hashed() const noexcept
{
    // Nl and Nh count bits: the low and high 32 bits of a 64-bit counter.
    const std::uint64_t bits = (static_cast<std::uint64_t>(state_->ctx.Nh) << 32) | state_->ctx.Nl;
    return bits / 8;
}

std::string resumable_sha256::save() const
{
    if (state_->ctx.num != 0)
        throw std::logic_error("a SHA-256 state can be saved only at a 64-byte boundary");
    std::string out = std::to_string(bytes_hashed()) + ":";
    std::array<unsigned char, 32> words{};
    for (std::size_t i = 0; i < 8; ++i) {
        const auto h = state_->ctx.h[i];
        words[4 * i] = static_cast<unsigned char>(h >> 24);
        words[4 * i + 1] = static_cast<unsigned char>(h >> 16);
        words[4 * i + 2] = static_cast<unsigned char>(h >> 8);
        words[4 * i + 3] = static_cast<unsigned char>(h);
    }
    out += to_hex(words);
    return out;
}

resumable_sha256 resumable_sha256::restore(std::string_view saved)
{
    const auto colon = saved.find(':');
    std::uint64_t bytes = 0;
    const auto hex = colon == std::string_view::npos ? std::string_view{} : saved.substr(colon + 1);
    const auto [end, ec] = std::from_chars(saved.data(), saved.data() + (colon == std::string_view::npos ? 0 : colon), bytes);
    std::array<unsigned char, 32> words{};
    if (colon == std::string_view::npos || ec != std::errc{} || end != saved.data() + colon || bytes % 64 != 0 ||
        bytes > (std::uint64_t{1} << 60) || !words_from_hex(hex, words))
        throw std::invalid_argument("not a saved SHA-256 state");
    resumable_sha256 r;
    for (std::size_t i = 0; i < 8; ++i) {
        const auto at = [&](std::size_t k) { return static_cast<std::uint32_t>(words[4 * i + k]); };
        r.state_->ctx.h[i] = (at(0) << 24) | (at(1) << 16) | (at(2) << 8) | at(3);
    }
    const std::uint64_t bits = bytes * 8;
    r.state_->ctx.Nl = static_cast<SHA_LONG>(bits & 0xffffffffu);
    r.state_->ctx.Nh = static_cast<SHA_LONG>(bits >> 32);
    r.state_->ctx.num = 0;
    return r;
}

std::string resumable_sha256::finish_hex()
{
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256_Final(digest.data(), &state_->ctx);
    return to_hex(digest);
}

} // namespace fxd::util
