#pragma once
/// Per-source token buckets for UDP (udp.rate_per_source, udp.burst).
///
/// Sources are spread over a fixed table by a keyed hash, so memory stays the
/// same whatever the number of (possibly spoofed) sources, and no client can
/// choose which bucket another source lands in. Sources that share a slot
/// share its budget, which only ever errs towards dropping. IPv6 sources are
/// taken per /64, the block one host usually owns.

#include <boost/asio/ip/address.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>

namespace fxd::daemon {

class source_limiter {
public:
    using clock = std::chrono::steady_clock;

    source_limiter();

    /// rate: datagrams per second, 0 = unlimited; burst: bucket size.
    void configure(double rate, std::uint32_t burst) noexcept
    {
        rate_ = rate;
        burst_ = burst;
    }

    /// Takes one token from the source's bucket; false when it is empty.
    bool allow(const boost::asio::ip::address& source, clock::time_point now) noexcept;

private:
    static constexpr std::size_t slots = 4096; // 64 KiB

    struct bucket {
        double tokens = 0;
        clock::time_point last{}; ///< epoch: never seen, so the bucket starts full
    };

    std::size_t slot_of(const boost::asio::ip::address& source) const noexcept;

    double rate_ = 0;
    std::uint32_t burst_ = 1;
    std::array<unsigned char, 16> key_{};
    std::unique_ptr<std::array<bucket, slots>> buckets_;
};

} // namespace fxd::daemon
