#include <fxd/services/files.hpp>
#include <fxd/protocol/names.hpp>
#include <fxd/services/database.hpp>
#include <fxd/util/hex.hpp>
#include <fxd/util/time.hpp>

#include <sodium.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h> // renameat2
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <set>
#include <stdexcept>
#include <thread>

namespace fxd::services {

using util::unique_fd;

namespace {

/// Free space an upload must leave on the disk, so the catalog can still
/// record uploads finishing, deletes and partials when the disk is nearly
/// full: 4 MiB, or 1/64 of a smaller filesystem.
constexpr std::uint64_t catalog_reserve_bytes = 4 << 20;
constexpr std::uint64_t catalog_reserve_share = 64;

[[noreturn]] void throw_errno(const std::string& what)
{
    throw std::system_error(errno, std::system_category(), what);
}

bool is_space_error(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

std::optional<struct stat> stat_at(int dir, const std::string& name)
{
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return std::nullopt;
    return st;
}

/// Like stat_at, but only a regular file counts: a link or anything else
/// planted where a blob should be is treated as no bytes at all.
std::optional<struct stat> regular_at(int dir, const std::string& name)
{
    auto st = stat_at(dir, name);
    if (st && !S_ISREG(st->st_mode))
        return std::nullopt;
    return st;
}

/// Cuts a file in the folder to `bytes` through a descriptor opened without
/// following links (truncate(2) on a path would follow a planted link).
void truncate_at(int dir, const std::string& name, std::uint64_t bytes)
{
    const unique_fd fd(::openat(dir, name.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (fd && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && ::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
        // Left as it is: the record keeps the smaller length, and a resume
        // truncates the blob to its offset before writing.
    }
}

std::string whole_file_sha(int dir, const std::string& name)
{
    const unique_fd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
        throw_errno("open " + name);
    return util::sha256_file(fd.get());
}

std::vector<std::string> folder_entries(int dir)
{
    std::vector<std::string> names;
    unique_fd copy(::dup(dir)); // closedir closes the descriptor it reads
    if (!copy)
        throw_errno("dup");
    struct dir_closer {
        void operator()(DIR* d) const noexcept { ::closedir(d); }
    };
    const std::unique_ptr<DIR, dir_closer> d(::fdopendir(copy.get()));
    if (!d)
        throw_errno("fdopendir");
    copy.release();
    ::rewinddir(d.get());
    while (const dirent* e = ::readdir(d.get())) {
        const std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(n);
    }
    return names;
}

std::string printable(const std::string& name)
{
    std::string out;
    for (const unsigned char c : name) {
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            out += "\\x";
            util::append_hex(out, c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return "\"" + out + "\"";
}

} // namespace

upload::upload(local_files& owner, unique_fd dir, unique_fd file, upload_record record, std::uint64_t received,
               util::trailing_hash hash)
    : owner_(owner), dir_(std::move(dir)), file_(std::move(file)), record_(std::move(record)), received_(received),
      hash_(std::move(hash))
{
    owner_.track(record_.blob);
}

upload::~upload()
{
    if (!finished_) {
        try {
            owner_.discard(*this);
        } catch (...) {
            // The next recovery (at start, or the periodic one) removes what is left.
        }
    }
    owner_.untrack(record_.blob);
}

void local_files::track(const std::string& blob)
{
    active_.insert(blob);
}

void local_files::untrack(const std::string& blob)
{
    active_.erase(blob);
}

bool local_files::tracked(const std::string& blob)
{
    return active_.contains(blob);
}

std::error_code upload::write(std::span<const char> bytes)
{
    while (!bytes.empty()) {
        const ssize_t n = ::write(file_.get(), bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return {errno, std::system_category()};
        }
        received_ += static_cast<std::uint64_t>(n);
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    hash_.written(received_);
    return {};
}

void local_files::refresh_totals(bool always)
{
    // Two aggregates over the whole catalog: with a shared database, where
    // every instance's changes count, they are refreshed on the sweep's
    // schedule rather than after each change.
    if (catalog_.shared() && !always)
        return;
    bytes_stored_.store(catalog_.bytes_used_total(), std::memory_order_relaxed);
    partials_.store(catalog_.partial_count(), std::memory_order_relaxed);
}

local_files::local_files(const std::filesystem::path& storage_dir, file_catalog& catalog)
    : users_root_(storage_dir / "users"), catalog_(catalog),
      // One thread hashes one upload at about the speed of a core, faster than
      // a disk takes it; more threads serve concurrent uploads, up to four.
      hashers_(std::clamp(std::thread::hardware_concurrency(), 1U, 4U))
{
    if (::mkdir(users_root_.c_str(), 0700) != 0 && errno != EEXIST)
        throw_errno("mkdir " + users_root_.string());
    root_ = unique_fd(::open(users_root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_)
        throw_errno("open " + users_root_.string());
}

unique_fd local_files::user_dir(const std::string& user, bool create)
{
    if (create && ::mkdirat(root_.get(), user.c_str(), 0700) != 0 && errno != EEXIST)
        throw_errno("mkdir for user " + user);
    unique_fd dir(::openat(root_.get(), user.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir && (create || errno != ENOENT))
        throw_errno("open folder of user " + user);
    return dir;
}

std::string local_files::fresh_blob_name()
{
    std::array<unsigned char, 12> noise{};
    randombytes_buf(noise.data(), noise.size());
    return ".blob-" + util::to_hex(noise);
}

std::optional<file_status> over_user_limits(file_catalog& catalog, const std::string& user, const std::string& name,
                                            std::uint64_t size, const std::optional<partial_record>& resumed,
                                            const local_files::limits& allowed)
{
    const auto u = catalog.usage(user);
    if (allowed.quota_bytes != 0) {
        // Everything the user holds or has in flight: finished files, the
        // bytes of partials, and the whole declared size of every upload in
        // progress. A resume takes its partial over, so those bytes move into
        // this upload instead of counting twice.
        std::uint64_t used = u.file_bytes + u.partial_bytes + u.upload_bytes;
        if (resumed)
            used -= std::min(used, resumed->bytes);
        if (used > allowed.quota_bytes || size > allowed.quota_bytes - used)
            return file_status::quota_exceeded;
    }
    if (allowed.max_files != 0) {
        // Replacing a file or a partial of the same name adds no entry.
        const bool adds_entry = !resumed && !catalog.find_partial(user, name) && !catalog.find_file(user, name);
        if (adds_entry && u.files + u.partials + u.uploads >= allowed.max_files)
            return file_status::too_many_files;
    }
    return std::nullopt;
}

local_files::begun local_files::begin_upload(const std::string& user, const std::string& name, std::uint64_t size,
                                             std::uint64_t offset, const limits& allowed)
{
    admission a;
    // The blob is ours from the moment it is recorded: a recovery running
    // meanwhile must not take it for a left-over. Given up unless an upload
    // object adopts it.
    struct tracking {
        local_files& files;
        const std::string& blob;
        bool adopted = false;
        ~tracking()
        {
            if (!adopted && !blob.empty())
                files.untrack(blob);
        }
    } claim{*this, a.record.blob};
    if (auto refused = admit(user, name, size, offset, allowed, a))
        return std::move(*refused);
    begun started = offset == 0 ? open_fresh(a) : take_over_partial(a, offset);
    claim.adopted = started.up != nullptr;
    return started;
}

std::optional<local_files::begun> local_files::admit(const std::string& user, const std::string& name,
                                                     std::uint64_t size, std::uint64_t offset, const limits& allowed,
                                                     admission& a)
{
    std::optional<begun> refused;
    // Checking the limits and recording the upload are one step, against
    // this process's other threads and against other instances.
    std::lock_guard admitting(admit_mutex_);
    catalog_.exclusive(admit_lock(user), [&] {
        a.partial = catalog_.find_partial(user, name);
        const bool resuming = offset != 0 && a.partial && a.partial->bytes == offset && a.partial->size == size;
        if (const auto over = over_user_limits(catalog_, user, name, size, resuming ? a.partial : std::nullopt, allowed)) {
            refused = begun{*over, nullptr, 0};
            return;
        }
        if (offset != 0 && !resuming) {
            refused = begun{file_status::bad_offset, nullptr, a.partial ? a.partial->bytes : 0};
            return;
        }
        a.dir = user_dir(user, true);
        // Refused before any byte moves when it cannot fit, keeping room for the
        // catalog (the disk may be shared, so this is a forecast; writes that
        // still hit ENOSPC are refused cleanly too).
        if (struct statvfs fs {}; ::fstatvfs(a.dir.get(), &fs) == 0) {
            const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
            const std::uint64_t total_bytes = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
            const std::uint64_t reserve = std::min(catalog_reserve_bytes, total_bytes / catalog_reserve_share);
            const std::uint64_t needed = size - offset;
            if (free_bytes < reserve || needed > free_bytes - reserve) {
                refused = begun{file_status::storage_full, nullptr, 0};
                return;
            }
        }
        a.record = {fresh_blob_name(), user, name, size, {}};
        track(a.record.blob);
        try {
            catalog_.begin_upload(a.record);
        } catch (const catalog_full&) {
            refused = begun{file_status::storage_full, nullptr, 0};
        }
    });
    return refused;
}

local_files::begun local_files::open_fresh(admission& a)
{
    const int dir_fd = a.dir.get();
    // Readable too: the hashing pool reads the bytes back.
    unique_fd file(::openat(dir_fd, a.record.blob.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file) {
        const int err = errno;
        catalog_.drop_upload(a.record.blob);
        if (is_space_error(err))
            return {file_status::storage_full, nullptr, 0};
        errno = err;
        throw_errno("create upload blob");
    }
    util::trailing_hash hash;
    try {
        hash = hashers_.follow(file.get(), 0);
    } catch (const std::system_error&) {
        // No descriptor left for the hashing pool: as if the blob could not be created.
        ::unlinkat(dir_fd, a.record.blob.c_str(), 0);
        catalog_.drop_upload(a.record.blob);
        throw;
    }
    return {file_status::ok,
            std::unique_ptr<upload>(new upload(*this, std::move(a.dir), std::move(file), a.record, 0, std::move(hash))), 0};
}

local_files::begun local_files::take_over_partial(admission& a, std::uint64_t offset)
{
    const auto& partial = *a.partial;
    const auto& record = a.record;
    const int dir = a.dir.get();
    // Take the partial over under a fresh blob name, so a second resume of
    // the same name cannot write into it too.
    if (::renameat(dir, partial.blob.c_str(), dir, record.blob.c_str()) != 0) {
        catalog_.drop_upload(record.blob);
        catalog_.remove_partial(record.user, record.name);
        return {file_status::bad_offset, nullptr, 0};
    }
    try {
        catalog_.remove_partial(record.user, record.name);
    } catch (const catalog_full&) {
        // Give the partial its blob back, as if this upload never began.
        ::renameat(dir, record.blob.c_str(), dir, partial.blob.c_str());
        try {
            catalog_.drop_upload(record.blob);
        } catch (const std::exception&) {
        }
        return {file_status::storage_full, nullptr, 0};
    }
    refresh_totals();
    unique_fd file(::openat(dir, record.blob.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!file)
        throw_errno("open partial blob");
    struct stat st {};
    if (::fstat(file.get(), &st) != 0)
        throw_errno("stat partial blob");
    if (static_cast<std::uint64_t>(st.st_size) < offset) {
        ::unlinkat(dir, record.blob.c_str(), 0);
        catalog_.drop_upload(record.blob);
        return {file_status::bad_offset, nullptr, 0};
    }
    if (static_cast<std::uint64_t>(st.st_size) > offset && ::ftruncate(file.get(), static_cast<off_t>(offset)) != 0)
        throw_errno("truncate partial blob");
    if (::lseek(file.get(), 0, SEEK_END) < 0)
        throw_errno("seek partial blob");
    // The partial's bytes are hashed by the pool while the rest arrives.
    auto hash = hashers_.follow(file.get(), offset);
    return {file_status::ok,
            std::unique_ptr<upload>(new upload(*this, std::move(a.dir), std::move(file), record, offset, std::move(hash))),
            0};
}

file_status local_files::commit(upload& up, const std::optional<std::string>& expected_sha256, file_record& published,
                                std::optional<std::int64_t> mtime)
{
    try {
        return commit_now(up, expected_sha256, published, mtime);
    } catch (const store_unavailable&) {
        abandon(up);
        throw;
    }
}

void local_files::keep_partial(upload& up)
{
    try {
        keep_partial_now(up);
    } catch (const store_unavailable&) {
        abandon(up);
        throw;
    }
}

void local_files::abandon(upload& up)
{
    // The database went away mid-way: whether the last statement committed is
    // unknown. The blob and the upload's row stay as they are, and the next
    // recovery once the database is back finishes the publish or keeps the
    // bytes as a partial, whichever the row says.
    up.finished_ = true;
}

file_status local_files::commit_now(upload& up, const std::optional<std::string>& expected_sha256,
                                    file_record& published, std::optional<std::int64_t> mtime)
{
    // The fsync first: while it waits for the disk, the hashing pool goes on
    // with whatever it has not reached yet (it lags when the CPUs are busy).
    if (::fsync(up.file_.get()) != 0) {
        const int err = errno;
        discard(up);
        if (is_space_error(err))
            return file_status::storage_full;
        errno = err;
        throw_errno("fsync upload");
    }
    const std::string sha = up.hash_.finish_hex(up.received_);
    if (expected_sha256 && *expected_sha256 != sha) {
        discard(up);
        return file_status::checksum_mismatch;
    }
    std::optional<partial_record> stale;
    std::optional<file_status> failed;
    {
        // Record first, then rename: if the record cannot be written (a full
        // disk), the name still holds its old bytes and the client is told
        // storage_full. Once recorded, a crash before the rename is finished
        // by repair(). The name's lock keeps downloads (here and on other
        // instances) from pairing old bytes with the new record.
        std::lock_guard lock(publish_mutex_);
        catalog_.exclusive(name_lock(up.record_.user, up.record_.name), [&] {
            stale = catalog_.find_partial(up.record_.user, up.record_.name);
            const auto previous = catalog_.find_file(up.record_.user, up.record_.name);
            published = {up.record_.name, up.received_, sha, mtime.value_or(util::unix_now())};
            try {
                catalog_.prepare_publish(up.record_, published);
            } catch (const catalog_full&) {
                discard(up);
                failed = file_status::storage_full;
                return;
            }
            if (::renameat(up.dir_.get(), up.record_.blob.c_str(), up.dir_.get(), up.record_.name.c_str()) != 0) {
                const int err = errno;
                try { // put the record back as it was, so it matches the bytes again
                    if (previous)
                        catalog_.put_file(up.record_.user, *previous);
                    else
                        catalog_.remove_file(up.record_.user, up.record_.name);
                } catch (const std::exception&) {
                    // repair() at the next start compares records with the folder
                }
                discard(up);
                errno = err;
                throw_errno("publish upload");
            }
            ::fsync(up.dir_.get()); // the rename itself must survive a crash
        });
    }
    if (failed)
        return *failed;
    up.finished_ = true;
    try {
        catalog_.drop_upload(up.record_.blob);
    } catch (const std::exception&) {
        // Left for repair(), which finds the name in place and re-records the same file.
    }
    if (stale && stale->blob != up.record_.blob)
        ::unlinkat(up.dir_.get(), stale->blob.c_str(), 0);
    refresh_totals();
    return file_status::ok;
}

void local_files::keep_partial_now(upload& up)
{
    if (up.received_ == 0) {
        discard(up);
        return;
    }
    const auto stale = catalog_.find_partial(up.record_.user, up.record_.name);
    catalog_.upload_to_partial(up.record_.blob, up.record_.user,
                               {up.record_.name, up.record_.size, up.received_, up.record_.blob, util::unix_now()});
    up.finished_ = true;
    if (stale && stale->blob != up.record_.blob)
        ::unlinkat(up.dir_.get(), stale->blob.c_str(), 0);
    refresh_totals();
}

void local_files::discard(upload& up)
{
    up.finished_ = true;
    ::unlinkat(up.dir_.get(), up.record_.blob.c_str(), 0);
    try {
        catalog_.drop_upload(up.record_.blob);
    } catch (const std::exception&) {
        // A row without its blob (a full disk refused the delete): repair() drops it.
    }
}

std::optional<local_files::opened> local_files::open_for_download(const std::string& user, const std::string& name)
{
    std::optional<opened> found;
    std::lock_guard lock(publish_mutex_);
    catalog_.exclusive(name_lock(user, name), [&] {
        auto info = catalog_.find_file(user, name);
        if (!info)
            return;
        unique_fd dir = user_dir(user, false);
        if (!dir)
            return;
        unique_fd fd(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd)
            throw_errno("open a listed file");
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != info->size)
            throw std::runtime_error("folder and catalog disagree about a file's size");
        found = opened{std::move(fd), std::move(*info)};
    });
    return found;
}

bool local_files::remove(const std::string& user, const std::string& name)
{
    bool removed = false;
    std::lock_guard lock(publish_mutex_);
    catalog_.exclusive(name_lock(user, name), [&] {
        const auto file = catalog_.find_file(user, name);
        const auto partial = catalog_.find_partial(user, name);
        if (!file && !partial)
            return;
        unique_fd dir = user_dir(user, false);
        if (file) {
            if (dir)
                ::unlinkat(dir.get(), name.c_str(), 0);
            catalog_.remove_file(user, name);
        }
        if (partial) {
            if (dir)
                ::unlinkat(dir.get(), partial->blob.c_str(), 0);
            catalog_.remove_partial(user, name);
        }
        if (dir)
            ::fsync(dir.get());
        removed = true;
    });
    if (removed)
        refresh_totals();
    return removed;
}

void local_files::remove_user(const std::string& user)
{
    std::lock_guard lock(publish_mutex_);
    if (unique_fd dir = user_dir(user, false)) {
        for (const auto& entry : folder_entries(dir.get()))
            ::unlinkat(dir.get(), entry.c_str(), 0);
        ::unlinkat(root_.get(), user.c_str(), AT_REMOVEDIR);
    }
    catalog_.remove_user_files(user);
    refresh_totals();
}

std::size_t local_files::expire_partials(std::int64_t before)
{
    std::size_t removed = 0;
    for (const auto& [user, partial] : catalog_.partials_older_than(before)) {
        if (unique_fd dir = user_dir(user, false))
            ::unlinkat(dir.get(), partial.blob.c_str(), 0);
        catalog_.remove_partial(user, partial.name);
        ++removed;
    }
    refresh_totals();
    return removed;
}

std::vector<std::string> local_files::recover(const upload_record& u)
{
    std::vector<std::string> done;
    unique_fd dir = user_dir(u.user, false);
    const auto st = dir ? regular_at(dir.get(), u.blob) : std::nullopt;
    if (!u.sha256.empty()) {
        // Verified and synced; the rename may or may not have happened: finish it.
        if (st && ::renameat(dir.get(), u.blob.c_str(), dir.get(), u.name.c_str()) == 0)
            ::fsync(dir.get());
        if (dir && stat_at(dir.get(), u.name)) {
            catalog_.publish(u, {u.name, u.size, u.sha256, util::unix_now()});
            done.push_back("finished publishing " + printable(u.name) + " of user " + u.user);
            return done;
        }
    }
    const std::uint64_t bytes = st ? std::min<std::uint64_t>(static_cast<std::uint64_t>(st->st_size), u.size) : 0;
    const auto existing = catalog_.find_partial(u.user, u.name);
    if (bytes == 0 || (existing && existing->bytes >= bytes)) {
        if (dir)
            ::unlinkat(dir.get(), u.blob.c_str(), 0);
        catalog_.drop_upload(u.blob);
        done.push_back("dropped an empty or superseded interrupted upload of " + printable(u.name) + " of user " + u.user);
        return done;
    }
    if (static_cast<std::uint64_t>(st->st_size) > bytes)
        truncate_at(dir.get(), u.blob, bytes);
    catalog_.upload_to_partial(u.blob, u.user, {u.name, u.size, bytes, u.blob, util::unix_now()});
    if (existing)
        ::unlinkat(dir.get(), existing->blob.c_str(), 0);
    done.push_back("kept " + std::to_string(bytes) + " bytes of an interrupted upload of " + printable(u.name) +
                   " of user " + u.user + " as a partial");
    return done;
}

std::vector<std::string> local_files::recover_uploads()
{
    std::vector<std::string> done;
    // One recovery at a time across instances: two must not both take the
    // same dead upload over. The rows are read inside the lock, so the second
    // one finds what the first did.
    catalog_.exclusive("recover", [&] {
        for (const auto& u : catalog_.recoverable_uploads()) {
            if (tracked(u.blob))
                continue; // this process is still writing it
            for (auto& line : recover(u))
                done.push_back(std::move(line));
        }
    });
    if (!done.empty())
        refresh_totals();
    return done;
}

std::vector<std::string> local_files::repair()
{
    // 1. Uploads that were in progress when this process (or, in a cluster,
    // another instance) stopped.
    std::vector<std::string> done = recover_uploads();

    // 2. Partials whose bytes are gone or shorter than recorded.
    std::set<std::pair<std::string, std::string>> referenced; // (user, blob)
    for (auto [user, p] : catalog_.all_partials()) {
        unique_fd dir = user_dir(user, false);
        const auto st = dir ? regular_at(dir.get(), p.blob) : std::nullopt;
        if (!st) {
            catalog_.remove_partial(user, p.name);
            done.push_back("forgot a partial of " + printable(p.name) + " of user " + user + " whose bytes are gone");
            continue;
        }
        referenced.emplace(user, p.blob);
        if (static_cast<std::uint64_t>(st->st_size) != p.bytes) {
            p.bytes = std::min<std::uint64_t>(static_cast<std::uint64_t>(st->st_size), p.bytes);
            catalog_.put_partial(user, p);
            done.push_back("corrected the size of a partial of " + printable(p.name) + " of user " + user);
        }
    }
    for (auto& line : reconcile_folders(referenced))
        done.push_back(std::move(line));
    // 4. Names stored before fxd kept them in NFC. One host only: in a
    // cluster the names were written by instances that normalise already (a
    // single host moving in runs this version once first, see cluster.md).
    if (!catalog_.shared())
        renormalize_names(done);
    refresh_totals();
    return done;
}

std::vector<std::string> local_files::reconcile_folders(const std::set<std::pair<std::string, std::string>>& referenced)
{
    std::vector<std::string> done;
    if (catalog_.shared()) {
        // Other instances are publishing, deleting and uploading in the same
        // folders right now: the catalog is the truth, and a temporary file
        // is removed only when no upload row names it and it is an hour old
        // (rows are written before their blobs, so a young one may be new).
        std::set<std::string> in_progress;
        for (const auto& u : catalog_.uploads())
            in_progress.insert(u.user + "/" + u.blob);
        const auto hour_ago = util::unix_now() - 3600;
        for (const auto& user : folder_entries(root_.get())) {
            unique_fd dir = user_dir(user, false);
            if (!dir)
                continue;
            for (const auto& entry : folder_entries(dir.get())) {
                const auto st = regular_at(dir.get(), entry);
                if (!st || !entry.starts_with(".") || st->st_mtime > hour_ago || referenced.contains({user, entry}) ||
                    in_progress.contains(user + "/" + entry))
                    continue;
                ::unlinkat(dir.get(), entry.c_str(), 0);
                done.push_back("removed a leftover temporary file of user " + user);
            }
        }
        return done;
    }

    // 3. Finished files: the folder is the truth for bytes, the catalog for names.
    std::set<std::string> users;
    for (const auto& u : catalog_.users_with_files())
        users.insert(u);
    for (const auto& entry : folder_entries(root_.get()))
        users.insert(entry);
    for (const auto& user : users) {
        unique_fd dir = user_dir(user, false);
        std::set<std::string> listed;
        for (const auto& f : catalog_.list_files(user)) {
            const auto st = dir ? stat_at(dir.get(), f.name) : std::nullopt;
            if (!st || !S_ISREG(st->st_mode)) {
                catalog_.remove_file(user, f.name);
                done.push_back("forgot " + printable(f.name) + " of user " + user + ": its bytes are gone");
                continue;
            }
            listed.insert(f.name);
            if (static_cast<std::uint64_t>(st->st_size) != f.size) {
                catalog_.put_file(user, {f.name, static_cast<std::uint64_t>(st->st_size), whole_file_sha(dir.get(), f.name),
                                         static_cast<std::int64_t>(st->st_mtime)});
                done.push_back("re-hashed " + printable(f.name) + " of user " + user + ": its size had changed");
            }
        }
        if (!dir)
            continue;
        for (const auto& entry : folder_entries(dir.get())) {
            const auto st = stat_at(dir.get(), entry);
            if (!st || !S_ISREG(st->st_mode))
                continue;
            if (entry.starts_with(".")) {
                if (!referenced.contains({user, entry})) {
                    ::unlinkat(dir.get(), entry.c_str(), 0);
                    done.push_back("removed a leftover temporary file of user " + user);
                }
            } else if (!listed.contains(entry)) {
                catalog_.put_file(user, {entry, static_cast<std::uint64_t>(st->st_size), whole_file_sha(dir.get(), entry),
                                         static_cast<std::int64_t>(st->st_mtime)});
                done.push_back("listed " + printable(entry) + " of user " + user + ", found in the folder only");
            }
        }
    }
    return done;
}

void local_files::renormalize_names(std::vector<std::string>& done)
{
    // Requests are looked up by the NFC form of their name, so a file recorded
    // under another spelling would be listed but unreachable. It moves to its
    // NFC spelling unless that spelling is taken: then both stay as they are
    // and the log says so (nothing is overwritten or merged).
    auto renamed = [](const std::string& from, const std::string& to, const std::string& user) {
        return "renamed " + printable(from) + " of user " + user + " to its NFC spelling " + printable(to);
    };
    auto kept = [](const std::string& name, const std::string& user, const std::string& why) {
        return "kept " + printable(name) + " of user " + user + " under its old spelling, unreachable by name: " + why;
    };
    for (const auto& user : catalog_.users_with_files()) {
        unique_fd dir = user_dir(user, false);
        if (!dir)
            continue;
        for (const auto& f : catalog_.list_files(user)) {
            const auto nfc = protocol::normalize_file_name(f.name);
            if (nfc && *nfc == f.name)
                continue;
            if (!nfc) {
                done.push_back(kept(f.name, user, "in NFC it breaks the name rules"));
                continue;
            }
            if (catalog_.find_file(user, *nfc) || catalog_.find_partial(user, *nfc) || stat_at(dir.get(), *nfc)) {
                done.push_back(kept(f.name, user, "its NFC spelling " + printable(*nfc) + " is taken"));
                continue;
            }
            // Recorded under the new name first: a crash before the rename
            // leaves a record without bytes (forgotten at the next start) and
            // the old one intact; a crash after it, the reverse.
            catalog_.put_file(user, {*nfc, f.size, f.sha256, f.mtime});
            if (::renameat2(dir.get(), f.name.c_str(), dir.get(), nfc->c_str(), RENAME_NOREPLACE) != 0) {
                const std::error_code ec(errno, std::system_category());
                catalog_.remove_file(user, *nfc);
                done.push_back(kept(f.name, user, "renaming it failed: " + ec.message()));
                continue;
            }
            ::fsync(dir.get());
            catalog_.remove_file(user, f.name);
            done.push_back(renamed(f.name, *nfc, user));
        }
    }
    for (const auto& [user, p] : catalog_.all_partials()) {
        const auto nfc = protocol::normalize_file_name(p.name);
        if (nfc && *nfc == p.name)
            continue;
        const auto holder = nfc ? catalog_.find_partial(user, *nfc) : std::nullopt;
        if (holder && holder->blob == p.blob) { // a crash between the two steps below: finish it
            catalog_.remove_partial(user, p.name);
            continue;
        }
        if (!nfc || holder || catalog_.find_file(user, *nfc)) {
            done.push_back("kept a partial of " + printable(p.name) + " of user " + user +
                           " under its old spelling, unreachable by name: its NFC spelling is taken, or breaks the name rules");
            continue;
        }
        // The bytes stay in their blob; only the record changes its name.
        auto moved = p;
        moved.name = *nfc;
        catalog_.put_partial(user, moved);
        catalog_.remove_partial(user, p.name);
        done.push_back("renamed a partial of " + printable(p.name) + " of user " + user + " to its NFC spelling " +
                       printable(*nfc));
    }
}

std::string name_lock(const std::string& user, const std::string& name)
{
    return "name/" + user + "/" + name;
}

std::string admit_lock(const std::string& user)
{
    return "admit/" + user;
}

} // namespace fxd::services
