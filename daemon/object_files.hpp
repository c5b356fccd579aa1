#pragma once
/// File bodies in an S3-compatible object store (storage.backend "s3"). Each
/// file version is one object, {prefix}blobs/{32 hex digits}; the catalog (the
/// same SQLite or PostgreSQL tables as for the local disk) names it. An upload
/// larger than one part is a multipart upload whose state (upload id, the
/// ETags of the stored parts, the running SHA-256) is saved in the catalog
/// after every part, so any instance sharing the catalog can resume it.
///
/// Split between threads: the catalog calls block and run on the worker pool
/// (the *_now functions, called from a worker); the S3 calls run on the event
/// loop (the awaitables). Not thread-safe otherwise: one loop drives it.

#include "worker_pool.hpp"

#include <fxd/services/file_catalog.hpp>
#include <fxd/services/files.hpp>
#include <fxd/util/resumable_sha256.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace fxd::s3 {
class client;
class object_stream;
}

namespace fxd::daemon {

/// The object store failed, refused or did not answer in time: the request
/// gets storage_unavailable and the connection stays.
class store_failure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class object_files;

/// One upload in progress into the object store. End it with commit,
/// keep_partial or discard; one destroyed without that leaves its catalog row
/// for the next sweep to keep as a partial or drop.
class object_upload {
public:
    ~object_upload();
    object_upload(const object_upload&) = delete;
    object_upload& operator=(const object_upload&) = delete;

    /// Takes body bytes; each time a part fills, stores it (the caller waits:
    /// that is the backpressure). Throws store_failure.
    boost::asio::awaitable<void> write(std::span<const char> bytes);

    const std::string& name() const noexcept { return record_.name; }
    std::uint64_t size() const noexcept { return record_.size; }
    std::uint64_t received() const noexcept { return received_; }
    /// Memory the upload holds: its part buffer.
    std::size_t held_bytes() const noexcept { return part_.capacity(); }

private:
    friend class object_files;
    object_upload(object_files& owner, services::upload_record record);
    boost::asio::awaitable<void> store_part();
    /// The multipart state as the catalog keeps it.
    std::string progress() const;

    object_files& owner_;
    services::upload_record record_;
    bool multipart_ = false;      ///< false: one PUT at commit (the file fits one part)
    std::string upload_id_;
    std::vector<std::string> etags_; ///< of the stored parts, in order
    util::resumable_sha256 hash_;  ///< of the stored parts' bytes
    std::string part_;             ///< bytes not stored yet
    std::string recorded_;         ///< the multipart state the catalog row holds now
    std::uint64_t received_ = 0;
    bool finished_ = false;
};

class object_files {
public:
    object_files(s3::client& client, std::string bucket, std::string prefix, std::uint64_t part_bytes,
                 services::file_catalog& catalog, worker_pool& workers, spdlog::logger& log);
    ~object_files();

    std::uint64_t part_bytes() const noexcept { return part_bytes_; }

    /// What admit_now() decided.
    struct admitted {
        services::file_status status = services::file_status::ok;
        std::uint64_t partial = 0; ///< bytes held, reported with bad_offset
        services::upload_record record;
        std::optional<services::partial_record> resumed;
    };
    /// On a worker: the user's limits and the offset checked and the upload
    /// recorded (a resume takes the partial's row over), as one step.
    admitted admit_now(const std::string& user, const std::string& name, std::uint64_t size, std::uint64_t offset,
                       const services::local_files::limits& allowed);
    /// On the loop, after admit_now said ok: starts the multipart upload (or
    /// restores the resumed one). Throws store_failure, after dropping the row.
    boost::asio::awaitable<std::unique_ptr<object_upload>> open(admitted a);

    /// Stores the last part, checks the SHA-256, completes the upload and
    /// publishes the catalog row in one transaction; the previous version's
    /// object is deleted after. checksum_mismatch stores nothing. Throws
    /// store_failure (the stored parts stay resumable) or a catalog error.
    boost::asio::awaitable<services::file_status> commit(object_upload& up, std::optional<std::string> expected_sha256,
                                                          std::optional<std::int64_t> mtime,
                                                          services::file_record& published);
    /// The connection ended or the store failed mid-body: the whole parts
    /// stored become the name's partial (none: the upload is dropped).
    boost::asio::awaitable<void> keep_partial(object_upload& up);
    /// Aborts the multipart upload and drops the row.
    boost::asio::awaitable<void> discard(object_upload& up);

    /// On a worker: the file's record, its object named in blob.
    std::optional<services::file_record> find_now(const std::string& user, const std::string& name);
    /// On the loop: the object's bytes from offset on. Throws store_failure.
    boost::asio::awaitable<s3::object_stream> read(const std::string& key, std::uint64_t offset);

    /// What remove_now() took out of the catalog, for delete_objects().
    struct removed {
        bool found = false;
        std::vector<std::string> objects;
        std::vector<std::pair<std::string, std::string>> uploads; ///< (key, upload id) to abort
    };
    /// On a worker: the file's and the partial's rows gone.
    removed remove_now(const std::string& user, const std::string& name);
    /// On the loop: queues the objects and uploads for delete_pending().
    void delete_later(removed r);
    /// On the loop, best effort: deletes what was queued (what fails is left
    /// to the sweep, which finds it unreferenced).
    boost::asio::awaitable<void> delete_pending();

    /// The periodic sweep, on the loop: partials last touched before `before`
    /// (seconds since the epoch) and their multipart uploads go; uploads whose
    /// instance died become partials; multipart uploads and objects under the
    /// prefix that no row names and older than `before` go. One line per change.
    boost::asio::awaitable<std::vector<std::string>> sweep(std::int64_t before);
    /// The sweep's first step alone: uploads whose instance died become partials.
    boost::asio::awaitable<std::vector<std::string>> recover();

    /// Asks the store whether it answers (one small listing); remembers the answer.
    boost::asio::awaitable<void> probe();
    /// Why the store is not usable now, or nullopt (readable from any thread).
    std::optional<std::string> unavailable_reason() const;

private:
    friend class object_upload;
    std::string fresh_key() const;
    /// The last bytes as one PUT (a file of one part), or as the last part and
    /// the completion. Throws store_failure.
    boost::asio::awaitable<void> store_last(object_upload& up, const std::string& part_sha);
    /// Turns an S3 error into store_failure and remembers the store as failing.
    [[noreturn]] void fail(std::string_view what, const std::exception& e);
    void answered();
    std::vector<std::string> recover_now();
    boost::asio::awaitable<std::vector<std::string>> sweep_store(std::int64_t before);
    boost::asio::awaitable<void> abort_quietly(const std::string& key, const std::string& upload_id);

    s3::client& client_;
    std::string bucket_;
    std::string prefix_;
    std::uint64_t part_bytes_;
    services::file_catalog& catalog_;
    worker_pool& workers_;
    spdlog::logger& log_;
    std::mutex admit_mutex_;
    services::active_uploads active_;
    mutable std::mutex health_mutex_;
    std::optional<std::string> failing_; ///< the last failure, until the store answers again
    removed pending_;                    ///< queued by delete_later (loop thread only)
};

} // namespace fxd::daemon
