#include "object_files.hpp"
#include "logging.hpp"

#include <fxd/s3/client.hpp>
#include <fxd/util/hex.hpp>
#include <fxd/util/sha256.hpp>
#include <fxd/util/time.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/logger.h>

#include <sodium.h>

#include <array>
#include <ctime>
#include <unordered_set>

namespace fxd::daemon {

namespace asio = boost::asio;
namespace json = boost::json;
using services::file_status;

namespace {

/// S3 allows at most this many parts in one multipart upload.
constexpr std::uint64_t max_parts = 10000;

/// The saved state of a multipart upload, as the catalog's multipart column holds it.
struct multipart_state {
    std::string upload_id;
    std::uint64_t part_bytes = 0;
    std::vector<std::string> etags;
    std::string sha256; ///< resumable_sha256::save() after the last stored part
};

std::string to_text(const multipart_state& m)
{
    json::array etags;
    for (const auto& e : m.etags)
        etags.emplace_back(e);
    return json::serialize(json::object{
        {"upload_id", m.upload_id}, {"part_bytes", m.part_bytes}, {"etags", std::move(etags)}, {"sha256", m.sha256}});
}

/// nullopt for text that is not a saved state (an empty column: a local partial).
std::optional<multipart_state> from_text(std::string_view text)
{
    boost::system::error_code ec;
    const json::value v = json::parse(text, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (!o)
        return std::nullopt;
    const auto* id = o->if_contains("upload_id");
    const auto* part = o->if_contains("part_bytes");
    const auto* etags = o->if_contains("etags");
    const auto* sha = o->if_contains("sha256");
    if (!id || !id->is_string() || !part || (!part->is_uint64() && !part->is_int64()) || !etags ||
        !etags->is_array() || !sha || !sha->is_string())
        return std::nullopt;
    multipart_state m;
    m.upload_id = id->get_string();
    m.part_bytes = part->to_number<std::uint64_t>();
    for (const auto& e : etags->get_array()) {
        if (!e.is_string())
            return std::nullopt;
        m.etags.emplace_back(e.get_string());
    }
    m.sha256 = sha->get_string();
    return m;
}

std::uint64_t stored_bytes(const multipart_state& m)
{
    return m.part_bytes * m.etags.size();
}

/// Seconds since the epoch of an S3 timestamp ("2026-11-28T19:00:00.000Z");
/// nullopt when it is not one.
std::optional<std::int64_t> parse_timestamp(const std::string& text)
{
    std::tm tm{};
    int year = 0, month = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &year, &month, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                    &tm.tm_sec) != 6)
        return std::nullopt;
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    return static_cast<std::int64_t>(::timegm(&tm));
}

/// user/name for logs, the name escaped as every log line escapes it.
std::string printable_key(const std::string& user, const std::string& name)
{
    return user + "/" + escape_for_log(name);
}

} // namespace

// --- object_upload ------------------------------------------------------------

object_upload::object_upload(object_files& owner, services::upload_record record)
    : owner_(owner), record_(std::move(record))
{
    owner_.active_.insert(record_.blob);
}

object_upload::~object_upload()
{
    owner_.active_.erase(record_.blob);
}

std::string object_upload::progress() const
{
    return to_text({upload_id_, owner_.part_bytes_, etags_, hash_.save()});
}

asio::awaitable<void> object_upload::write(std::span<const char> bytes)
{
    while (!bytes.empty()) {
        const std::size_t room = owner_.part_bytes_ - part_.size();
        const std::size_t take = std::min(room, bytes.size());
        part_.append(bytes.data(), take);
        bytes = bytes.subspan(take);
        received_ += take;
        // A full part is stored now, unless it is the file's last bytes: those
        // go with the completion (a single PUT for a file of one part).
        if (part_.size() == owner_.part_bytes_ && received_ < record_.size)
            co_await store_part();
    }
}

asio::awaitable<void> object_upload::store_part()
{
    // The part's digest first (SigV4 signs the payload); then the running
    // digest of the whole file on a worker while the part travels, so only
    // one pass over the part is on the critical path.
    auto* self = this;
    const std::string part_sha = co_await owner_.workers_.run([self] { return util::sha256_hex(self->part_); });
    const int number = static_cast<int>(etags_.size()) + 1;
    auto running = [self] {
        self->hash_.update(self->part_);
        return self->hash_.save();
    };
    std::string etag;
    std::string saved;
    try {
        using namespace asio::experimental::awaitable_operators;
        auto [stored, state] = co_await (owner_.client_.upload_part(owner_.bucket_, record_.blob, upload_id_, number,
                                                                    part_, part_sha) &&
                                         owner_.workers_.run(running));
        etag = std::move(stored);
        saved = std::move(state);
    } catch (const std::exception& e) {
        owner_.fail("storing part " + std::to_string(number) + " of " + printable_key(record_.user, record_.name), e);
    }
    owner_.answered();
    etags_.push_back(std::move(etag));
    part_.clear();
    const std::string state = to_text({upload_id_, owner_.part_bytes_, etags_, saved});
    auto& catalog = owner_.catalog_;
    const std::string& key = record_.blob;
    co_await owner_.workers_.run([&catalog, &key, &state] {
        catalog.record_upload_progress(key, state);
        return true;
    });
    recorded_ = state;
}

// --- object_files ---------------------------------------------------------------

object_files::object_files(s3::client& client, std::string bucket, std::string prefix, std::uint64_t part_bytes,
                           services::file_catalog& catalog, worker_pool& workers, spdlog::logger& log)
    : client_(client), bucket_(std::move(bucket)), prefix_(std::move(prefix)), part_bytes_(part_bytes),
      catalog_(catalog), workers_(workers), log_(log)
{
}

object_files::~object_files() = default;

std::string object_files::fresh_key() const
{
    std::array<unsigned char, 16> noise{};
    randombytes_buf(noise.data(), noise.size());
    return prefix_ + "blobs/" + util::to_hex(noise);
}

void object_files::fail(std::string_view what, const std::exception& e)
{
    {
        // /readyz shows it without a login: the store's answer, not whose file it was.
        std::lock_guard lock(health_mutex_);
        failing_ = e.what();
    }
    throw store_failure(std::string(what) + ": " + e.what());
}

void object_files::answered()
{
    std::lock_guard lock(health_mutex_);
    failing_.reset();
}

std::optional<std::string> object_files::unavailable_reason() const
{
    std::lock_guard lock(health_mutex_);
    return failing_;
}

object_files::admitted object_files::admit_now(const std::string& user, const std::string& name, std::uint64_t size,
                                               std::uint64_t offset, const services::local_files::limits& allowed)
{
    admitted a;
    std::lock_guard admitting(admit_mutex_);
    catalog_.exclusive(services::admit_lock(user), [&] {
        auto partial = catalog_.find_partial(user, name);
        const auto state = partial ? from_text(partial->multipart) : std::nullopt;
        const bool resuming = offset != 0 && state && partial->bytes == offset && partial->size == size &&
                              stored_bytes(*state) == offset && state->part_bytes == part_bytes_;
        if (const auto over = services::over_user_limits(catalog_, user, name, size, resuming ? partial : std::nullopt,
                                                         allowed)) {
            a.status = *over;
            return;
        }
        if (offset != 0 && !resuming) {
            a.status = file_status::bad_offset;
            a.partial = partial ? partial->bytes : 0;
            return;
        }
        // A resume goes on with the partial's multipart upload, so its key;
        // the row moves from partials to uploads (uploads first: a crash in
        // between leaves both, and the recovery makes them one partial again).
        a.record = {resuming ? partial->blob : fresh_key(), user, name, size, {}, resuming ? partial->multipart : ""};
        active_.insert(a.record.blob);
        try {
            catalog_.begin_upload(a.record);
            if (resuming)
                catalog_.remove_partial(user, name);
        } catch (...) {
            active_.erase(a.record.blob);
            throw;
        }
        if (resuming)
            a.resumed = std::move(partial);
    });
    return a;
}

asio::awaitable<std::unique_ptr<object_upload>> object_files::open(admitted a)
{
    auto up = std::unique_ptr<object_upload>(new object_upload(*this, std::move(a.record)));
    auto& record = up->record_;
    up->part_.reserve(static_cast<std::size_t>(std::min(part_bytes_, record.size)));
    if (a.resumed) {
        const auto state = from_text(a.resumed->multipart);
        up->multipart_ = true;
        up->upload_id_ = state->upload_id;
        up->etags_ = state->etags;
        up->hash_ = util::resumable_sha256::restore(state->sha256);
        up->received_ = stored_bytes(*state);
        up->recorded_ = a.resumed->multipart;
        co_return up;
    }
    if (record.size <= part_bytes_)
        co_return up; // one PUT at commit: nothing to start
    std::optional<store_failure> failed;
    try {
        up->upload_id_ = co_await client_.create_multipart_upload(bucket_, record.blob);
        answered();
    } catch (const std::exception& e) {
        try {
            fail("starting an upload of " + printable_key(record.user, record.name), e);
        } catch (const store_failure& f) {
            failed = f;
        }
    }
    if (failed) {
        co_await discard(*up); // no multipart upload to abort: drops the row
        throw *failed;
    }
    up->multipart_ = true;
    const std::string state = up->progress();
    auto* catalog = &catalog_;
    co_await workers_.run([catalog, &record, &state] {
        catalog->record_upload_progress(record.blob, state);
        return true;
    });
    up->recorded_ = state;
    co_return up;
}

asio::awaitable<void> object_files::store_last(object_upload& up, const std::string& part_sha)
{
    const auto& record = up.record_;
    try {
        if (!up.multipart_) {
            co_await client_.put_object(bucket_, record.blob, up.part_, part_sha);
        } else {
            if (!up.part_.empty() || up.etags_.empty()) {
                const int number = static_cast<int>(up.etags_.size()) + 1;
                auto etag = co_await client_.upload_part(bucket_, record.blob, up.upload_id_, number, up.part_, part_sha);
                up.etags_.push_back(std::move(etag));
            }
            std::vector<s3::completed_part> parts;
            for (std::size_t i = 0; i < up.etags_.size(); ++i)
                parts.push_back({static_cast<int>(i + 1), up.etags_[i], 0});
            co_await client_.complete_multipart_upload(bucket_, record.blob, up.upload_id_, parts);
        }
        answered();
    } catch (const std::exception& e) {
        // The parts stored before stay resumable: the row still holds their
        // state (keep_partial reads it from recorded_).
        fail("publishing " + printable_key(record.user, record.name), e);
    }
}

asio::awaitable<file_status> object_files::commit(object_upload& up, std::optional<std::string> expected_sha256,
                                                  std::optional<std::int64_t> mtime, services::file_record& published)
{
    auto* u = &up;
    struct hashed {
        std::string part_sha; ///< of the bytes still in the buffer
        std::string file_sha;
    };
    const hashed h = co_await workers_.run([u] {
        hashed out{util::sha256_hex(u->part_), {}};
        u->hash_.update(u->part_);
        out.file_sha = u->hash_.finish_hex();
        return out;
    });
    if (expected_sha256 && *expected_sha256 != h.file_sha) {
        co_await discard(up);
        co_return file_status::checksum_mismatch;
    }
    co_await store_last(up, h.part_sha);
    up.finished_ = true;
    up.part_ = std::string(); // the memory goes back before the catalog work
    const auto& record = up.record_;
    published = {record.name, record.size, h.file_sha, mtime.value_or(util::unix_now()), record.blob};
    struct replaced {
        std::optional<services::file_record> previous;
        std::optional<services::partial_record> stale;
    };
    auto* catalog = &catalog_;
    const auto& file = published;
    const replaced r = co_await workers_.run([catalog, &record, &file] {
        replaced out;
        catalog->exclusive(services::name_lock(record.user, record.name), [&] {
            out.previous = catalog->find_file(record.user, record.name);
            out.stale = catalog->find_partial(record.user, record.name);
            catalog->publish(record, file);
        });
        return out;
    });
    // Published: what the name held before is garbage now, deleted in the
    // background (what fails there is left to the sweep).
    removed garbage;
    if (r.previous && !r.previous->blob.empty() && r.previous->blob != record.blob)
        garbage.objects.push_back(r.previous->blob);
    if (r.stale && r.stale->blob != record.blob)
        if (const auto state = from_text(r.stale->multipart))
            garbage.uploads.emplace_back(r.stale->blob, state->upload_id);
    delete_later(std::move(garbage));
    co_return file_status::ok;
}

asio::awaitable<void> object_files::keep_partial(object_upload& up)
{
    // The state the row was last given, as of the last part stored: the
    // running digest may be past it when a later part failed.
    const auto state = up.multipart_ ? from_text(up.recorded_) : std::nullopt;
    const std::uint64_t stored = state ? stored_bytes(*state) : 0;
    if (stored == 0) {
        co_await discard(up);
        co_return;
    }
    up.finished_ = true;
    up.part_ = std::string();
    auto* catalog = &catalog_;
    const auto& record = up.record_;
    const services::partial_record partial{record.name, record.size, stored, record.blob, util::unix_now(), up.recorded_};
    const auto stale = co_await workers_.run([catalog, &record, &partial] {
        auto before = catalog->find_partial(record.user, record.name);
        catalog->upload_to_partial(record.blob, record.user, partial);
        return before;
    });
    if (stale && stale->blob != record.blob)
        if (const auto old = from_text(stale->multipart))
            delete_later({true, {}, {{stale->blob, old->upload_id}}});
}

asio::awaitable<void> object_files::discard(object_upload& up)
{
    up.finished_ = true;
    up.part_ = std::string();
    if (!up.upload_id_.empty())
        co_await abort_quietly(up.record_.blob, up.upload_id_);
    auto* catalog = &catalog_;
    const std::string key = up.record_.blob;
    try {
        co_await workers_.run([catalog, &key] { // reference captures only: GCC 12 destroys a copied string twice
            catalog->drop_upload(key);
            return true;
        });
    } catch (const std::exception& e) {
        log_.warn("could not drop an upload's row: {} (the sweep will)", e.what());
    }
}

asio::awaitable<void> object_files::abort_quietly(const std::string& key, const std::string& upload_id)
{
    if (upload_id.empty())
        co_return;
    try {
        co_await client_.abort_multipart_upload(bucket_, key, upload_id);
    } catch (const std::exception& e) {
        log_.warn("could not abort the multipart upload of {}: {} (the sweep will)", key, e.what());
    }
}

std::optional<services::file_record> object_files::find_now(const std::string& user, const std::string& name)
{
    return catalog_.find_file(user, name);
}

asio::awaitable<s3::object_stream> object_files::read(const std::string& key, std::uint64_t offset)
{
    try {
        auto stream = co_await client_.get_object(bucket_, key, s3::byte_range{offset, std::nullopt});
        answered();
        co_return stream;
    } catch (const std::exception& e) {
        fail("reading " + key, e);
    }
}

object_files::removed object_files::remove_now(const std::string& user, const std::string& name)
{
    removed r;
    catalog_.exclusive(services::name_lock(user, name), [&] {
        const auto file = catalog_.find_file(user, name);
        const auto partial = catalog_.find_partial(user, name);
        if (file) {
            catalog_.remove_file(user, name);
            if (!file->blob.empty())
                r.objects.push_back(file->blob);
        }
        if (partial) {
            catalog_.remove_partial(user, name);
            if (const auto state = from_text(partial->multipart))
                r.uploads.emplace_back(partial->blob, state->upload_id);
        }
        r.found = file || partial;
    });
    return r;
}

void object_files::delete_later(removed r)
{
    pending_.objects.insert(pending_.objects.end(), r.objects.begin(), r.objects.end());
    pending_.uploads.insert(pending_.uploads.end(), r.uploads.begin(), r.uploads.end());
}

asio::awaitable<void> object_files::delete_pending()
{
    removed r = std::exchange(pending_, removed{});
    for (const auto& key : r.objects) {
        try {
            co_await client_.delete_object(bucket_, key);
        } catch (const std::exception& e) {
            log_.warn("could not delete object {}: {} (the sweep will)", key, e.what());
        }
    }
    for (const auto& [key, id] : r.uploads)
        co_await abort_quietly(key, id);
}

std::vector<std::string> object_files::recover_now()
{
    std::vector<std::string> done;
    catalog_.exclusive("recover", [&] {
        for (const auto& u : catalog_.recoverable_uploads()) {
            if (active_.contains(u.blob))
                continue; // this process is still writing it
            const auto state = from_text(u.multipart);
            const std::uint64_t bytes = state ? stored_bytes(*state) : 0;
            const auto existing = catalog_.find_partial(u.user, u.name);
            if (bytes == 0 || (existing && existing->bytes >= bytes && existing->blob != u.blob)) {
                catalog_.drop_upload(u.blob); // its multipart upload is swept as unreferenced
                done.push_back("dropped an interrupted upload of " + printable_key(u.user, u.name) +
                               " with no whole part stored");
                continue;
            }
            catalog_.upload_to_partial(u.blob, u.user, {u.name, u.size, bytes, u.blob, util::unix_now(), u.multipart});
            done.push_back("kept " + std::to_string(bytes) + " bytes of an interrupted upload of " +
                           printable_key(u.user, u.name) + " as a partial");
        }
    });
    return done;
}

asio::awaitable<std::vector<std::string>> object_files::sweep(std::int64_t before)
{
    auto* self = this;
    struct expired {
        std::vector<std::string> lines;
        std::vector<std::pair<std::string, std::string>> aborts;
    };
    expired e = co_await workers_.run([self, before] {
        expired out;
        out.lines = self->recover_now();
        for (const auto& [user, partial] : self->catalog_.partials_older_than(before)) {
            self->catalog_.remove_partial(user, partial.name);
            if (const auto state = from_text(partial.multipart))
                out.aborts.emplace_back(partial.blob, state->upload_id);
            out.lines.push_back("removed the expired partial upload of " + printable_key(user, partial.name));
        }
        return out;
    });
    for (const auto& [key, id] : e.aborts)
        co_await abort_quietly(key, id);
    auto more = co_await sweep_store(before);
    e.lines.insert(e.lines.end(), more.begin(), more.end());
    co_return e.lines;
}

asio::awaitable<std::vector<std::string>> object_files::recover()
{
    auto* self = this;
    co_return co_await workers_.run([self] { return self->recover_now(); });
}

asio::awaitable<std::vector<std::string>> object_files::sweep_store(std::int64_t before)
{
    std::vector<std::string> lines;
    auto* catalog = &catalog_;
    // Listed before the store: an object made after this read is younger than
    // `before` (a sweep never runs with `before` in the future), so it is skipped.
    const auto names = co_await workers_.run([catalog] { return catalog->referenced_blobs(); });
    const std::unordered_set<std::string> referenced(names.begin(), names.end());
    const auto old_enough = [&](const std::string& stamp) {
        const auto t = parse_timestamp(stamp);
        return t && *t < before;
    };
    try {
        std::string key_marker, id_marker;
        for (;;) {
            const auto page = co_await client_.list_multipart_uploads(bucket_, prefix_ + "blobs/", key_marker, id_marker);
            for (const auto& u : page.uploads) {
                if (referenced.contains(u.key) || active_.contains(u.key) || !old_enough(u.initiated))
                    continue;
                co_await client_.abort_multipart_upload(bucket_, u.key, u.upload_id);
                lines.push_back("aborted an abandoned multipart upload of " + u.key);
            }
            if (!page.is_truncated || page.next_key_marker.empty())
                break;
            key_marker = page.next_key_marker;
            id_marker = page.next_upload_id_marker;
        }
        std::string token;
        for (;;) {
            const auto page = co_await client_.list_objects_v2(bucket_, prefix_ + "blobs/", token);
            for (const auto& o : page.objects) {
                if (referenced.contains(o.key) || active_.contains(o.key) || !old_enough(o.last_modified))
                    continue;
                co_await client_.delete_object(bucket_, o.key);
                lines.push_back("deleted an object no file refers to: " + o.key);
            }
            if (!page.is_truncated || page.next_continuation_token.empty())
                break;
            token = page.next_continuation_token;
        }
        answered();
    } catch (const std::exception& e) {
        log_.warn("sweeping the object store failed: {}", e.what());
    }
    co_return lines;
}

asio::awaitable<void> object_files::probe()
{
    try {
        co_await client_.list_objects_v2(bucket_, prefix_ + "blobs/", {}, 1);
        answered();
    } catch (const std::exception& e) {
        std::lock_guard lock(health_mutex_);
        failing_ = std::string("the object store does not answer: ") + e.what();
    }
}

} // namespace fxd::daemon
