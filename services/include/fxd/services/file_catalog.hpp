#pragma once
/// What is known about each user's files: the finished ones (name, size,
/// SHA-256, mtime) and the partial uploads. The SQLite store implements it;
/// another database could. Calls block: use them from the worker pool.

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::services {

/// The catalog's own storage has no room left (the disk is full). Callers turn
/// it into storage_full; the write it interrupted left nothing behind.
class catalog_full : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct file_record {
    std::string name;
    std::uint64_t size = 0;
    std::string sha256;   ///< 64 lowercase hex digits
    std::int64_t mtime = 0; ///< seconds since the epoch
    std::string blob{};     ///< the object key in an object store; empty on the local disk
};

struct partial_record {
    std::string name;
    std::uint64_t size = 0;     ///< the whole file's declared size
    std::uint64_t bytes = 0;    ///< bytes held
    std::string blob;           ///< the partial's file name in the user's folder, or its object key
    std::int64_t mtime = 0;
    std::string multipart{};    ///< an object store's multipart upload state (opaque here); empty on the local disk
};

/// An upload in progress: its blob (temporary file) and, once verified, the
/// SHA-256 it is being published with. Recorded so a crash can be repaired.
struct upload_record {
    std::string blob;
    std::string user;
    std::string name;
    std::uint64_t size = 0;
    std::string sha256; ///< empty until the upload is being published
    std::string multipart{}; ///< an object store's multipart upload state (opaque here); empty on the local disk
};

/// What one user holds and has in flight, as the quota checks count it.
struct user_usage {
    std::uint64_t files = 0;
    std::uint64_t file_bytes = 0;
    std::uint64_t partials = 0;
    std::uint64_t partial_bytes = 0; ///< bytes held by partial uploads
    std::uint64_t uploads = 0;       ///< uploads in progress (their records)
    std::uint64_t upload_bytes = 0;  ///< the sizes they declared
};

class file_catalog {
public:
    virtual ~file_catalog() = default;

    virtual std::optional<file_record> find_file(std::string_view user, std::string_view name) = 0;
    virtual std::vector<file_record> list_files(std::string_view user) = 0;
    virtual std::uint64_t bytes_used(std::string_view user) = 0;
    virtual std::uint64_t bytes_used_total() = 0;
    /// Files, partials and uploads in progress of one user, read together.
    virtual user_usage usage(std::string_view user) = 0;
    /// Inserts or replaces a finished file (repairs use it directly).
    virtual void put_file(std::string_view user, const file_record& file) = 0;
    virtual bool remove_file(std::string_view user, std::string_view name) = 0;

    virtual std::optional<partial_record> find_partial(std::string_view user, std::string_view name) = 0;
    virtual void put_partial(std::string_view user, const partial_record& partial) = 0;
    virtual bool remove_partial(std::string_view user, std::string_view name) = 0;
    /// Partials last touched before the given time, as (user, record).
    virtual std::vector<std::pair<std::string, partial_record>> partials_older_than(std::int64_t mtime) = 0;
    virtual std::uint64_t partial_count() = 0;

    virtual void begin_upload(const upload_record& upload) = 0;
    /// Before the blob is renamed into place, in one transaction: the upload's
    /// row marked with the file's SHA-256, the file's row written (replacing
    /// any), any partial of the name and any stale publishing row of the name
    /// gone. drop_upload() ends it after the rename; repair() finishes a crash
    /// in between. Nothing changes when it throws.
    virtual void prepare_publish(const upload_record& upload, const file_record& file) = 0;
    /// In one transaction: the file's row, the upload's row gone, any partial of the name gone.
    virtual void publish(const upload_record& upload, const file_record& file) = 0;
    /// In one transaction: the upload's row gone and the partial of its name set (replacing any).
    virtual void upload_to_partial(std::string_view blob, std::string_view user, const partial_record& partial) = 0;
    virtual void drop_upload(std::string_view blob) = 0;
    /// An upload's multipart state after another part is stored (object store only).
    virtual void record_upload_progress(std::string_view blob, std::string_view multipart) = 0;
    /// Every blob (object key) a file, partial or upload in progress refers to.
    virtual std::vector<std::string> referenced_blobs() = 0;
    virtual std::vector<upload_record> uploads() = 0;
    /// Every (user, record) of every partial, for start-up checks.
    virtual std::vector<std::pair<std::string, partial_record>> all_partials() = 0;
    /// Every user that has file rows.
    virtual std::vector<std::string> users_with_files() = 0;

    /// Forgets everything about a user's files.
    virtual void remove_user_files(std::string_view user) = 0;

    /// True when other processes (instances of a cluster) use the catalog at
    /// the same time, over the same storage folder.
    virtual bool shared() const noexcept { return false; }
    /// Runs fn while holding the named lock against every other process using
    /// the catalog; fn's own catalog calls on this thread see the lock too.
    /// A catalog used by one process only needs no lock (callers lock their
    /// own threads out).
    virtual void exclusive(std::string_view key, const std::function<void()>& fn) { (void)key; fn(); }
    /// Uploads in progress that no live process is writing, or that this one
    /// began (the caller skips the ones it still writes): those a repair may
    /// finish, keep as partial or drop. One process alone: every upload.
    virtual std::vector<upload_record> recoverable_uploads() { return uploads(); }
};

} // namespace fxd::services
