#pragma once
/// Per-user file storage on the local disk: storage.dir/users/NAME/, every
/// file opened relative to the user's folder descriptor with O_NOFOLLOW, so a
/// client's name never becomes a path. Uploads stream into a private blob and
/// are published by rename after fsync; metadata lives in the catalog.
/// Every call except upload::write blocks (fsync, SQLite): call it from the
/// worker pool. upload::write only copies into the page cache; the SHA-256
/// of an upload is computed behind it by local_files' small hashing pool
/// (reading back from the page cache), which also starts the write-back.

#include <fxd/protocol/names.hpp>
#include <fxd/services/file_catalog.hpp>
#include <fxd/util/trailing_hash.hpp>
#include <fxd/util/unique_fd.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace fxd::services {

enum class file_status {
    ok,
    not_found,
    bad_offset,        ///< offset does not match the partial held
    quota_exceeded,    ///< the upload would pass the user's byte quota
    too_many_files,    ///< the upload would pass the user's file count (files plus partials)
    storage_full,      ///< ENOSPC or EDQUOT
    checksum_mismatch,
};

class local_files;

/// The keys (blob names, object keys) of the uploads this process is writing,
/// shared between the loop and the workers: a recovery must not touch them.
class active_uploads {
public:
    void insert(const std::string& key)
    {
        std::lock_guard lock(mutex_);
        keys_.insert(key);
    }
    void erase(const std::string& key)
    {
        std::lock_guard lock(mutex_);
        keys_.erase(key);
    }
    bool contains(const std::string& key) const
    {
        std::lock_guard lock(mutex_);
        return keys_.contains(key);
    }

private:
    mutable std::mutex mutex_;
    std::set<std::string> keys_;
};

/// One upload in progress. Destroying it without commit or keep_partial
/// removes its blob (use the blocking calls of local_files from a worker).
class upload {
public:
    ~upload();
    upload(const upload&) = delete;
    upload& operator=(const upload&) = delete;

    /// Appends body bytes (page-cache write, fine on the event loop).
    std::error_code write(std::span<const char> bytes);
    std::uint64_t received() const noexcept { return received_; }
    std::uint64_t size() const noexcept { return record_.size; }
    const std::string& name() const noexcept { return record_.name; }

private:
    friend class local_files;
    upload(local_files& owner, util::unique_fd dir, util::unique_fd file, upload_record record, std::uint64_t received,
           util::trailing_hash hash);

    local_files& owner_;
    util::unique_fd dir_;
    util::unique_fd file_;
    upload_record record_;
    std::uint64_t received_ = 0;
    /// SHA-256 of the blob from byte 0 (a resumed partial's bytes too),
    /// hashed by owner_'s pool as the bytes are written; commit catches up.
    util::trailing_hash hash_;
    bool finished_ = false; ///< committed, kept as partial or removed
};

class local_files {
public:
    /// What one user may hold; 0 means no limit. Uploads in progress count
    /// with their whole declared size, partials with the bytes they hold.
    struct limits {
        std::uint64_t quota_bytes = 0;
        std::uint64_t max_files = 0; ///< finished files plus partials (and uploads in progress)
    };

    /// Creates storage.dir/users if needed. Throws std::system_error.
    local_files(const std::filesystem::path& storage_dir, file_catalog& catalog);

    /// Brings folders and catalog into agreement after a crash; returns one
    /// line per repair made (for the log). With a catalog shared by several
    /// instances it leaves alone what the others are doing.
    std::vector<std::string> repair();
    /// Finishes, keeps as partial or drops the uploads nobody writes any more:
    /// this process's own left-overs and those of instances that died.
    std::vector<std::string> recover_uploads();
    /// Removes partials last touched before `before` (seconds since the epoch); returns how many.
    std::size_t expire_partials(std::int64_t before);

    struct begun {
        file_status status = file_status::ok;
        std::unique_ptr<upload> up;
        std::uint64_t partial = 0; ///< bytes held, reported with bad_offset
    };
    /// Checks the user's limits and the offset, records the upload (from then
    /// on its size counts against the quota until it ends, whichever way),
    /// then opens a fresh blob or takes over the partial (its bytes are hashed
    /// in the background while the rest arrives, so the final SHA-256 covers
    /// the whole file).
    begun begin_upload(const std::string& user, const std::string& name, std::uint64_t size, std::uint64_t offset,
                       const limits& allowed);
    /// fsync, finish the SHA-256, rename into place, fsync the folder, record. checksum_mismatch
    /// (nothing stored) when expected_sha256 is given and differs. The file's
    /// mtime is the client's (the upload's optional mtime field), else now.
    file_status commit(upload& up, const std::optional<std::string>& expected_sha256, file_record& published,
                       std::optional<std::int64_t> mtime = std::nullopt);
    /// Keeps the bytes that arrived as the name's partial upload.
    void keep_partial(upload& up);
    /// Removes the blob and its record.
    void discard(upload& up);

    struct opened {
        util::unique_fd fd;
        file_record info;
    };
    /// Opens a finished file and its metadata as one consistent pair.
    std::optional<opened> open_for_download(const std::string& user, const std::string& name);

    /// Removes a finished file and any partial of that name; false when neither existed.
    bool remove(const std::string& user, const std::string& name);
    /// Removes a user's folder and records.
    void remove_user(const std::string& user);

    file_catalog& catalog() noexcept { return catalog_; }

    /// Totals for stats, refreshed after every change, or every sweep with a
    /// shared catalog (readable from any thread).
    std::uint64_t cached_bytes_stored() const noexcept { return bytes_stored_.load(std::memory_order_relaxed); }
    std::uint64_t cached_partials() const noexcept { return partials_.load(std::memory_order_relaxed); }
    /// With a shared catalog only when always is true (the periodic sweep).
    void refresh_totals(bool always = false);

private:
    friend class upload;
    util::unique_fd user_dir(const std::string& user, bool create);
    std::string fresh_blob_name();
    /// What admit() found and recorded for begin_upload().
    struct admission {
        std::optional<partial_record> partial;
        upload_record record;
        util::unique_fd dir;
    };
    /// The limits checked and the upload recorded, as one step; a refusal, or nullopt.
    std::optional<begun> admit(const std::string& user, const std::string& name, std::uint64_t size,
                               std::uint64_t offset, const limits& allowed, admission& a);
    begun open_fresh(admission& a);
    begun take_over_partial(admission& a, std::uint64_t offset);
    file_status commit_now(upload& up, const std::optional<std::string>& expected_sha256, file_record& published,
                           std::optional<std::int64_t> mtime);
    void keep_partial_now(upload& up);
    void abandon(upload& up);
    void track(const std::string& blob);
    void untrack(const std::string& blob);
    bool tracked(const std::string& blob);
    std::vector<std::string> recover(const upload_record& u);
    std::vector<std::string> reconcile_folders(const std::set<std::pair<std::string, std::string>>& referenced);
    /// repair()'s last step: files and partials recorded under a name that is
    /// not in NFC (stored before fxd normalised names) move to the NFC spelling.
    void renormalize_names(std::vector<std::string>& done);

    std::filesystem::path users_root_;
    util::unique_fd root_;
    file_catalog& catalog_;
    /// Publishing (rename + record) and opening for download (open + record)
    /// each happen as one step, so a download never pairs old bytes with a new hash.
    std::mutex publish_mutex_;
    /// Checking a user's limits and recording the upload are one step, so
    /// concurrent uploads (on other worker threads) see each other.
    std::mutex admit_mutex_;
    active_uploads active_;
    std::atomic<std::uint64_t> bytes_stored_{0};
    std::atomic<std::uint64_t> partials_{0};
    /// Hashes uploads off the event loop: a few threads, whatever the number of uploads.
    util::trailing_hash_pool hashers_;
};

/// The quota and file-count checks for an upload of `size` bytes of name
/// (resumed: the partial it takes over); nullopt when it is within them.
std::optional<file_status> over_user_limits(file_catalog& catalog, const std::string& user, const std::string& name,
                                            std::uint64_t size, const std::optional<partial_record>& resumed,
                                            const local_files::limits& allowed);

/// The cluster-wide lock (file_catalog::exclusive) of one name: publishing,
/// opening for download and deleting it take turns, whichever backend.
std::string name_lock(const std::string& user, const std::string& name);
/// The lock under which a user's limits are checked and an upload recorded.
std::string admit_lock(const std::string& user);

} // namespace fxd::services
