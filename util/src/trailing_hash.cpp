#include <fxd/util/trailing_hash.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <span>
#include <stdexcept>
#include <system_error>

namespace fxd::util {

namespace {

/// One pread: small enough that the bytes are still in the CPU's cache when
/// they are hashed.
constexpr std::size_t piece_bytes = 256 * 1024;
/// The writer hands a file to the pool at most once per this many bytes, so
/// an idle pool thread is woken a few hundred times per GiB, not per write.
constexpr std::uint64_t hand_over_bytes = 2 << 20;
/// What one pool thread hashes of a file before it goes to the back of the
/// queue, so that many uploads share the threads.
constexpr std::uint64_t turn_bytes = 32 << 20;
/// Write-back is started in steps of this many hashed bytes, on 1 MiB
/// boundaries (the page the writer is still filling is never included).
constexpr std::uint64_t writeback_bytes = 8 << 20;
constexpr std::uint64_t writeback_align = 1 << 20;

/// Reads the next bytes at `at` into buffer; throws when the file ends
/// early or the read fails (a digest of fewer bytes would be wrong).
std::size_t read_piece(int fd, std::span<char> buffer, std::uint64_t at)
{
    for (;;) {
        const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(at));
        if (n > 0)
            return static_cast<std::size_t>(n);
        if (n == 0)
            throw file_too_short("the file ended at " + std::to_string(at) + " bytes, before the bytes written were hashed");
        if (errno != EINTR)
            throw std::system_error(errno, std::generic_category(), "read back for hashing");
    }
}

} // namespace

struct trailing_hash_pool::follower {
    explicit follower(unique_fd file, std::uint64_t present) : fd(std::move(file)), written(present) {}

    const unique_fd fd;
    std::atomic<std::uint64_t> written; ///< bytes the writer has put in the file
    std::atomic<bool> queued{false};    ///< in the pool's queue or being hashed by it
    std::atomic<bool> cancelled{false};

    /// Held while a piece is read and hashed (by the pool or by finish_hex),
    /// so finish_hex waits for at most one piece.
    std::mutex work;
    sha256 hash;                ///< guarded by work
    std::uint64_t hashed = 0;   ///< guarded by work
    std::uint64_t flushed = 0;  ///< guarded by work: write-back started below this
    bool done = false;          ///< guarded by work: finish_hex ran
    bool broken = false;        ///< guarded by work: OpenSSL failed, the digest state is unknown

    /// Whether the pool has anything to do. Call with work held.
    bool wanted() const noexcept
    {
        return !done && !broken && !cancelled.load(std::memory_order_relaxed) &&
               hashed < written.load(std::memory_order_acquire);
    }

    /// Hashes one piece at `hashed`, not past `until`. Call with work held.
    void hash_piece(std::span<char> buffer, std::uint64_t until)
    {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(until - hashed, buffer.size()));
        const std::size_t n = read_piece(fd.get(), buffer.first(want), hashed);
        try {
            hash.update(buffer.first(n));
        } catch (...) {
            broken = true;
            throw;
        }
        hashed += n;
    }

    /// Asks the kernel to start writing what has been hashed, without waiting
    /// for it, so the final fsync has only the tail left. Call with work held.
    void start_writeback() noexcept
    {
        const std::uint64_t ready = hashed / writeback_align * writeback_align;
        if (ready < flushed + writeback_bytes)
            return;
        // Errors are left to the fsync that makes the upload durable.
        ::sync_file_range(fd.get(), static_cast<off_t>(flushed), static_cast<off_t>(ready - flushed),
                          SYNC_FILE_RANGE_WRITE);
        flushed = ready;
    }
};

namespace {

/// One turn of a pool thread on a file; true when the file goes back to the
/// queue (it still has bytes to hash after a full turn).
bool take_turn(trailing_hash_pool::follower& f, std::span<char> buffer, const std::stop_token& stop)
{
    std::uint64_t turn = 0;
    for (;;) {
        {
            const std::lock_guard lock(f.work);
            if (f.wanted() && !stop.stop_requested()) {
                if (turn >= turn_bytes)
                    return true;
                const std::uint64_t before = f.hashed;
                try {
                    f.hash_piece(buffer, f.written.load(std::memory_order_acquire));
                } catch (const std::exception&) {
                    // Left to finish_hex, which reads again on its own thread and reports the failure.
                    f.queued.store(false, std::memory_order_release);
                    return false;
                }
                turn += f.hashed - before;
                f.start_writeback();
                continue;
            }
        }
        f.queued.store(false, std::memory_order_release);
        // The writer may have appended between the check above and the store,
        // and seen the file still queued: look once more before leaving it.
        bool more = false;
        {
            const std::lock_guard lock(f.work);
            more = f.wanted() && !stop.stop_requested();
        }
        if (!more || f.queued.exchange(true, std::memory_order_acq_rel))
            return false;
    }
}

} // namespace

trailing_hash_pool::trailing_hash_pool(unsigned threads)
{
    threads_.reserve(std::max(threads, 1U));
    for (unsigned i = 0; i < std::max(threads, 1U); ++i) {
        threads_.emplace_back([this](const std::stop_token& stop) { serve(stop); });
        ::pthread_setname_np(threads_.back().native_handle(), "fxd-hash"); // for top -H and perf
    }
}

trailing_hash_pool::~trailing_hash_pool() = default;

void trailing_hash_pool::serve(const std::stop_token& stop)
{
    std::vector<char> buffer(piece_bytes);
    for (;;) {
        std::shared_ptr<follower> f;
        {
            std::unique_lock lock(mutex_);
            if (!wake_.wait(lock, stop, [this] { return !queue_.empty(); }))
                return;
            f = std::move(queue_.front());
            queue_.pop_front();
        }
        if (take_turn(*f, buffer, stop)) {
            const std::lock_guard lock(mutex_);
            queue_.push_back(std::move(f));
        }
    }
}

void trailing_hash_pool::submit(std::shared_ptr<follower> f)
{
    {
        const std::lock_guard lock(mutex_);
        queue_.push_back(std::move(f));
    }
    wake_.notify_one();
}

trailing_hash trailing_hash_pool::follow(int fd, std::uint64_t present)
{
    unique_fd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own)
        throw std::system_error(errno, std::generic_category(), "dup for hashing");
    auto f = std::make_shared<follower>(std::move(own), present);
    trailing_hash h(*this, f);
    h.handed_at_ = present;
    if (present > 0) {
        f->queued.store(true, std::memory_order_relaxed);
        submit(std::move(f));
    }
    return h;
}

trailing_hash::trailing_hash(trailing_hash_pool& pool, std::shared_ptr<trailing_hash_pool::follower> f)
    : pool_(&pool), f_(std::move(f))
{
}

trailing_hash& trailing_hash::operator=(trailing_hash&& other) noexcept
{
    if (this != &other) {
        cancel();
        pool_ = std::exchange(other.pool_, nullptr);
        f_ = std::move(other.f_);
        handed_at_ = other.handed_at_;
    }
    return *this;
}

trailing_hash::~trailing_hash()
{
    cancel();
}

void trailing_hash::cancel() noexcept
{
    if (f_)
        f_->cancelled.store(true, std::memory_order_relaxed);
}

void trailing_hash::written(std::uint64_t total)
{
    if (!f_)
        return;
    f_->written.store(total, std::memory_order_release);
    if (total - handed_at_ < hand_over_bytes)
        return;
    handed_at_ = total;
    if (!f_->queued.exchange(true, std::memory_order_acq_rel))
        pool_->submit(f_);
}

std::string trailing_hash::finish_hex(std::uint64_t total)
{
    if (!f_)
        throw std::logic_error("finish_hex of a hash that follows no file");
    f_->written.store(total, std::memory_order_release);
    const std::lock_guard lock(f_->work);
    if (f_->done)
        throw std::logic_error("finish_hex called twice");
    if (f_->broken)
        throw std::runtime_error("OpenSSL SHA-256 update failed");
    if (f_->hashed > total)
        throw std::logic_error("finish_hex with fewer bytes than already hashed");
    std::vector<char> buffer(static_cast<std::size_t>(std::min<std::uint64_t>(total - f_->hashed, piece_bytes)));
    while (f_->hashed < total)
        f_->hash_piece(buffer, total);
    f_->done = true;
    return f_->hash.finish_hex();
}

} // namespace fxd::util
