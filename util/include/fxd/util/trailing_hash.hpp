#pragma once
/// SHA-256 of a file while it is being appended to, off the writer's thread.
/// A small fixed pool of threads reads back (pread, from the page cache) what
/// the writer has already written and hashes it, and starts the kernel's
/// write-back of what it has hashed (sync_file_range), so the writer only
/// copies bytes in and a final fsync finds little left to write. Whoever
/// finishes the hash catches up on the bytes the pool has not reached yet.

#include <fxd/util/sha256.hpp>
#include <fxd/util/unique_fd.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace fxd::util {

class trailing_hash;

class trailing_hash_pool {
public:
    /// Starts `threads` threads (at least one); they sleep until there is work.
    explicit trailing_hash_pool(unsigned threads);
    /// Stops and joins the threads. Files still followed keep their hash:
    /// their finish_hex() hashes whatever the pool had not reached.
    ~trailing_hash_pool();
    trailing_hash_pool(const trailing_hash_pool&) = delete;
    trailing_hash_pool& operator=(const trailing_hash_pool&) = delete;

    /// Follows a file whose first `present` bytes are already there (a resumed
    /// upload): those are hashed in the background too. `fd` must be open for
    /// reading; it is duplicated, so the caller may close its own at any time.
    /// Throws std::system_error when the descriptor cannot be duplicated.
    trailing_hash follow(int fd, std::uint64_t present);

    /// The shared state of one followed file (defined in trailing_hash.cpp).
    struct follower;

private:
    friend class trailing_hash;
    void submit(std::shared_ptr<follower> f);
    void serve(const std::stop_token& stop);

    std::mutex mutex_;
    std::condition_variable_any wake_;
    /// At most one entry per followed file (its `queued` flag), so the queue
    /// is bounded by the files being written.
    std::deque<std::shared_ptr<follower>> queue_;
    std::vector<std::jthread> threads_; ///< last: started after, stopped before, the rest
};

/// The hash of one followed file. Destroying it unfinished cancels the pool's
/// work on it (at the latest after the piece being read).
class trailing_hash {
public:
    trailing_hash() = default; ///< follows nothing
    trailing_hash(trailing_hash&&) noexcept = default;
    trailing_hash& operator=(trailing_hash&& other) noexcept;
    trailing_hash(const trailing_hash&) = delete;
    trailing_hash& operator=(const trailing_hash&) = delete;
    ~trailing_hash();

    /// The writer appended: the file now holds `total` bytes. Does no I/O and
    /// never waits for the pool (fine on an event loop); every few MiB it
    /// hands the file to the pool, when the pool is not already on it.
    void written(std::uint64_t total);

    /// SHA-256 of the first `total` bytes as lowercase hex. Blocks: waits for
    /// the piece the pool is reading, then hashes the rest on the calling
    /// thread. Throws like hash_file (file_too_short, std::system_error), or
    /// std::logic_error when called twice; the pool's work on the file ends.
    std::string finish_hex(std::uint64_t total);

private:
    friend class trailing_hash_pool;
    trailing_hash(trailing_hash_pool& pool, std::shared_ptr<trailing_hash_pool::follower> f);
    void cancel() noexcept;

    trailing_hash_pool* pool_ = nullptr;
    std::shared_ptr<trailing_hash_pool::follower> f_;
    std::uint64_t handed_at_ = 0; ///< the writer's total when it last handed the file to the pool
};

} // namespace fxd::util
