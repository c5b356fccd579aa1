#include "source_limiter.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace fxd::daemon {

source_limiter::source_limiter() : buckets_(std::make_unique<std::array<bucket, slots>>())
{
    static_assert(sizeof(key_) == crypto_shorthash_KEYBYTES);
    if (sodium_init() < 0)
        throw std::runtime_error("libsodium failed to initialise");
    randombytes_buf(key_.data(), key_.size());
}

std::size_t source_limiter::slot_of(const boost::asio::ip::address& source) const noexcept
{
    std::array<unsigned char, 9> input{};
    std::size_t length = 0;
    if (source.is_v4() || (source.is_v6() && source.to_v6().is_v4_mapped())) {
        const auto v4 = source.is_v4() ? source.to_v4() : make_address_v4(boost::asio::ip::v4_mapped, source.to_v6());
        const auto bytes = v4.to_bytes();
        input[0] = 4;
        std::memcpy(input.data() + 1, bytes.data(), bytes.size());
        length = 1 + bytes.size();
    } else {
        const auto bytes = source.to_v6().to_bytes();
        input[0] = 6;
        std::memcpy(input.data() + 1, bytes.data(), 8); // the /64 prefix
        length = 9;
    }
    std::array<unsigned char, crypto_shorthash_BYTES> hash{};
    crypto_shorthash(hash.data(), input.data(), length, key_.data());
    std::uint64_t value = 0;
    std::memcpy(&value, hash.data(), sizeof value);
    return static_cast<std::size_t>(value % slots);
}

bool source_limiter::allow(const boost::asio::ip::address& source, clock::time_point now) noexcept
{
    if (rate_ <= 0)
        return true;
    auto& b = (*buckets_)[slot_of(source)];
    const double burst = burst_;
    if (b.last == clock::time_point{}) {
        b.tokens = burst;
    } else {
        const double elapsed = std::chrono::duration<double>(now - b.last).count();
        b.tokens = std::min(burst, b.tokens + elapsed * rate_);
    }
    b.last = now;
    if (b.tokens < 1)
        return false;
    b.tokens -= 1;
    return true;
}

} // namespace fxd::daemon
