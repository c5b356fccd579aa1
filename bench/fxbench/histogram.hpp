#pragma once
/// A latency histogram with logarithmic buckets (HDR-like): values below 128
/// are exact, larger ones fall in buckets 1/64 of their power of two wide, so
/// a percentile is off by at most about 1.6 %.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace fxd::bench {

class histogram {
public:
    void record(std::uint64_t v) noexcept
    {
        ++buckets_[index(v)];
        ++count_;
        sum_ += v;
        max_ = std::max(max_, v);
    }

    void merge(const histogram& other) noexcept
    {
        for (std::size_t i = 0; i < buckets_.size(); ++i)
            buckets_[i] += other.buckets_[i];
        count_ += other.count_;
        sum_ += other.sum_;
        max_ = std::max(max_, other.max_);
    }

    void reset() noexcept { *this = histogram{}; }

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

    /// The value at quantile q (0..1): the middle of the bucket holding it.
    double quantile(double q) const noexcept
    {
        if (count_ == 0)
            return 0;
        const auto target = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen >= target)
                return std::min(middle(i), static_cast<double>(max_));
        }
        return static_cast<double>(max_);
    }

private:
    static constexpr unsigned sub_bits = 6;
    static constexpr std::uint64_t exact = 2u << sub_bits; // 128
    static constexpr std::size_t bucket_count = exact + (63 - sub_bits) * (1u << sub_bits);

    static std::size_t index(std::uint64_t v) noexcept
    {
        if (v < exact)
            return static_cast<std::size_t>(v);
        const unsigned e = 63u - static_cast<unsigned>(std::countl_zero(v)); // >= sub_bits + 1
        const unsigned shift = e - sub_bits;
        const auto mant = static_cast<std::size_t>(v >> shift) - (1u << sub_bits);
        return exact + (e - sub_bits - 1) * (1u << sub_bits) + mant;
    }

    static double middle(std::size_t i) noexcept
    {
        if (i < exact)
            return static_cast<double>(i);
        const std::size_t k = i - exact;
        const unsigned e = static_cast<unsigned>(k >> sub_bits) + sub_bits + 1;
        const unsigned shift = e - sub_bits;
        const double low = static_cast<double>(((k & ((1u << sub_bits) - 1)) + (1u << sub_bits)) << shift);
        return low + static_cast<double>(1ull << shift) / 2.0;
    }

    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
};

} // namespace fxd::bench
