#pragma once
/// What the admin listener's /metrics shows beyond the `stats` counters:
/// histograms of request durations and transfer sizes, observed on the loop's
/// thread, and the Prometheus text exposition of everything.

#include <fxd/protocol/ops.hpp>
#include <fxd/services/stats.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace fxd::daemon {

/// Upper bounds of the duration buckets, in seconds: from a cached echo
/// (tens of microseconds) to a large transfer (minutes).
inline constexpr std::array<double, 18> duration_bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                        0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                        1,      2.5,     5,      10,    30,     120};
/// Upper bounds of the size buckets, in bytes: 1 KiB to 16 GiB, by fours.
inline constexpr std::array<double, 13> size_bounds{1024.0,        4096.0,        16384.0,        65536.0,
                                                    262144.0,      1048576.0,     4194304.0,      16777216.0,
                                                    67108864.0,    268435456.0,   1073741824.0,   4294967296.0,
                                                    17179869184.0};

/// A fixed-bucket histogram. Touched only from the loop's thread (like
/// services::counters), so an observation is a short scan and two adds: no
/// lock, no allocation. Counts are per bucket; the exposition sums them.
template <std::size_t Buckets>
class histogram {
public:
    explicit constexpr histogram(const std::array<double, Buckets>& bounds) noexcept : bounds_(&bounds) {}

    void observe(double value) noexcept
    {
        std::size_t i = 0;
        while (i < Buckets && value > (*bounds_)[i])
            ++i;
        ++counts_[i]; // counts_[Buckets] is +Inf
        sum_ += value;
    }
    void observe(std::chrono::steady_clock::duration d) noexcept
    {
        observe(std::chrono::duration<double>(d).count());
    }

    std::span<const double, Buckets> bounds() const noexcept { return *bounds_; }
    std::span<const std::uint64_t, Buckets + 1> counts() const noexcept { return counts_; }
    double sum() const noexcept { return sum_; }

private:
    const std::array<double, Buckets>* bounds_;
    std::array<std::uint64_t, Buckets + 1> counts_{};
    double sum_ = 0;
};

using duration_histogram = histogram<duration_bounds.size()>;
using size_histogram = histogram<size_bounds.size()>;

/// The daemon's histograms: one per server, beside services::counters.
struct timings {
    /// From a request's header being decoded to its reply being queued (a
    /// download: to its last byte handed to the kernel), TCP and UDP alike.
    std::array<duration_histogram, protocol::op_count> request_seconds{
        []<std::size_t... I>(std::index_sequence<I...>) {
            return std::array<duration_histogram, sizeof...(I)>{((void)I, duration_histogram(duration_bounds))...};
        }(std::make_index_sequence<protocol::op_count>())};
    /// Uploads whose body arrived in full: bytes, and seconds from the first body byte to the reply.
    size_histogram upload_bytes{size_bounds};
    duration_histogram upload_seconds{duration_bounds};
    /// Downloads sent in full: bytes, and seconds from the reply header to the last byte.
    size_histogram download_bytes{size_bounds};
    duration_histogram download_seconds{duration_bounds};
    /// Completed TLS handshakes.
    duration_histogram tls_handshake_seconds{duration_bounds};

    void observe_request(std::optional<protocol::op> op, std::chrono::steady_clock::duration took) noexcept
    {
        if (op)
            request_seconds[static_cast<std::size_t>(*op)].observe(took);
    }
};

/// Gauges read from the server at scrape time.
struct gauges {
    std::uint64_t connections_tcp = 0; ///< open plain TCP connections being served
    std::uint64_t connections_tls = 0; ///< open TLS connections being served
    std::uint64_t connections_rejecting = 0; ///< being told busy
    std::uint64_t requests_in_flight = 0;
    std::uint64_t buffered_bytes = 0; ///< what counts against limits.max_buffered_bytes
    std::uint64_t worker_queue_limit = 0;
    std::uint64_t hash_queue_limit = 0;
    std::optional<std::uint64_t> users; ///< none when the database was not asked (worker queue full)
    std::optional<std::uint64_t> partial_bytes; ///< bytes held by partial uploads; none as users
    bool ready = false;
    std::optional<bool> object_store_up; ///< none with the local backend
};

/// What /proc/self says about this process; fields stay empty when it cannot be read.
struct process_sample {
    std::optional<double> cpu_seconds;
    std::optional<std::uint64_t> resident_bytes;
    std::optional<std::uint64_t> virtual_bytes;
    std::optional<std::uint64_t> open_fds;
    std::optional<std::uint64_t> max_fds;
    std::optional<double> start_time_seconds; ///< since the Unix epoch
};

/// Reads /proc/self/stat, statm, fd and limits (a few small reads; no disk).
process_sample sample_process();

/// Parses the text of /proc/self/stat into CPU seconds and the start time
/// (given the clock ticks per second and the boot time). Separate for tests.
void parse_proc_stat(std::string_view stat, long ticks_per_second, double boot_time, process_sample& out);

/// The Prometheus text exposition (format 0.0.4) of all of it.
std::string render_metrics(const services::counters& c, const timings& t, const gauges& g, const process_sample& p,
                           std::string_view version);

} // namespace fxd::daemon
