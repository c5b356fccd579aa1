#include <fxd/services/sqlite_store.hpp>
#include <fxd/util/time.hpp>

#include <sqlite3.h>

#include <utility>

namespace fxd::services {

namespace {

// Migration N brings the schema from version N to N+1. Append only; never edit a shipped step.
constexpr const char* migrations[] = {
    // 0 -> 1: accounts
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  password_hash TEXT NOT NULL,"
    "  created INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    // 1 -> 2: when each password last changed (fxd user passwd)
    "ALTER TABLE users ADD COLUMN password_changed INTEGER NOT NULL DEFAULT 0;",
    // 2 -> 3: file metadata and partial uploads
    "CREATE TABLE files ("
    "  user TEXT NOT NULL,"
    "  name BLOB NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  mtime INTEGER NOT NULL,"
    "  PRIMARY KEY (user, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE partials ("
    "  user TEXT NOT NULL,"
    "  name BLOB NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  blob TEXT NOT NULL,"
    "  mtime INTEGER NOT NULL,"
    "  PRIMARY KEY (user, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE uploads ("
    "  blob TEXT PRIMARY KEY NOT NULL,"
    "  user TEXT NOT NULL,"
    "  name BLOB NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL DEFAULT ''"
    ") WITHOUT ROWID;",
    // 3 -> 4: a login is a user id and a credential generation, not a name
    // (issue 14, finding 2). AUTOINCREMENT: a deleted user's id is never
    // given again, so a login of the deleted account never matches a new
    // account of the same name. The table is rebuilt: SQLite cannot add a key.
    "CREATE TABLE users_v4 ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  password_changed INTEGER NOT NULL DEFAULT 0,"
    "  generation INTEGER NOT NULL DEFAULT 1,"
    "  admin INTEGER NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO users_v4 (name, password_hash, created, password_changed)"
    "  SELECT name, password_hash, created, password_changed FROM users ORDER BY name;"
    "DROP TABLE users;"
    "ALTER TABLE users_v4 RENAME TO users;",
    // 4 -> 5: remembered logins (issue 19). Only the token's SHA-256 is kept;
    // it logs in while the user's id and generation are still these.
    "CREATE TABLE tokens ("
    "  hash TEXT PRIMARY KEY NOT NULL,"
    "  user_id INTEGER NOT NULL,"
    "  generation INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX tokens_by_user ON tokens (user_id);"
    "CREATE INDEX tokens_by_expiry ON tokens (expires);",
    // 5 -> 6: file bodies in an object store (issue 16): a file's object key,
    // and the multipart upload state of partials and uploads in progress.
    "ALTER TABLE files ADD COLUMN blob TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE partials ADD COLUMN multipart TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE uploads ADD COLUMN multipart TEXT NOT NULL DEFAULT '';",
};

/// A prepared statement, finalized on scope exit.
class statement {
public:
    statement(sqlite3* db, const char* sql) : db_(db)
    {
        if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
            throw store_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
    }
    ~statement() { sqlite3_finalize(stmt_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    /// Names are compared as bytes (BLOB), so sorting is by UTF-8 byte order.
    statement& bind_blob(int i, std::string_view bytes)
    {
        sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
        return *this;
    }
    statement& bind(int i, std::string_view text)
    {
        sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
        return *this;
    }
    statement& bind(int i, std::int64_t v)
    {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    /// SQLITE_ROW, SQLITE_DONE or SQLITE_CONSTRAINT; anything else throws.
    int step()
    {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE || (rc & 0xFF) == SQLITE_CONSTRAINT)
            return rc & 0xFF;
        if ((rc & 0xFF) == SQLITE_FULL)
            throw catalog_full(std::string("sqlite step: ") + sqlite3_errmsg(db_));
        throw store_error(std::string("sqlite step: ") + sqlite3_errmsg(db_));
    }
    std::string blob(int col) const
    {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
    }
    std::string text(int col) const
    {
        const auto* p = sqlite3_column_text(stmt_, col);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string();
    }
    std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
};

} // namespace

int sqlite_store::schema_version_written() noexcept
{
    return static_cast<int>(std::size(migrations));
}

sqlite_store::sqlite_store(const std::filesystem::path& file, bool create) : path_(file)
{
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    const int rc = sqlite3_open_v2(file.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw store_error("cannot open database '" + file.string() + "': " + why);
    }
    try {
        sqlite3_busy_timeout(db_, 5000);
        exec("PRAGMA journal_mode=WAL;");
        exec("PRAGMA synchronous=FULL;"); // a commit is on disk before it is acknowledged
        exec("PRAGMA foreign_keys=ON;");
        migrate();
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

sqlite_store::~sqlite_store()
{
    sqlite3_close(db_);
}

void sqlite_store::exec(const char* sql)
{
    char* err = nullptr;
    if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
        std::string why = err ? err : "unknown error";
        sqlite3_free(err);
        why = "sqlite: " + why + " (in: " + std::string(sql).substr(0, 80) + ")";
        if ((rc & 0xFF) == SQLITE_FULL)
            throw catalog_full(why);
        throw store_error(why);
    }
}

int sqlite_store::schema_version()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT version FROM schema_version");
    return s.step() == SQLITE_ROW ? static_cast<int>(s.integer(0)) : 0;
}

void sqlite_store::migrate()
{
    exec("BEGIN IMMEDIATE;");
    try {
        exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);");
        int version = 0;
        {
            statement s(db_, "SELECT version FROM schema_version");
            if (s.step() == SQLITE_ROW)
                version = static_cast<int>(s.integer(0));
            else
                exec("INSERT INTO schema_version (version) VALUES (0);");
        }
        if (version > schema_version_written())
            throw store_error("database schema version " + std::to_string(version) +
                              " is newer than this fxd understands (" + std::to_string(schema_version_written()) + ")");
        for (; version < schema_version_written(); ++version)
            exec(migrations[version]);
        statement update(db_, "UPDATE schema_version SET version = ?");
        update.bind(1, std::int64_t{version}).step();
        exec("COMMIT;");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr);
        throw;
    }
}

bool sqlite_store::create(std::string_view name, std::string_view password_hash)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "INSERT INTO users (name, password_hash, created, password_changed) VALUES (?, ?, ?, ?)");
    const auto now = util::unix_now();
    return s.bind(1, name).bind(2, password_hash).bind(3, now).bind(4, now).step() == SQLITE_DONE;
}

std::optional<std::string> sqlite_store::password_hash(std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT password_hash FROM users WHERE name = ?");
    if (s.bind(1, name).step() != SQLITE_ROW)
        return std::nullopt;
    return s.text(0);
}

bool sqlite_store::set_password_hash(std::string_view name, std::string_view password_hash)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "UPDATE users SET password_hash = ?, password_changed = ?, generation = generation + 1 WHERE name = ?");
    s.bind(1, password_hash).bind(2, util::unix_now()).bind(3, name).step();
    const bool changed = sqlite3_changes(db_) == 1;
    // The new generation already revokes the user's tokens; their rows go too.
    statement tokens(db_, "DELETE FROM tokens WHERE user_id IN (SELECT id FROM users WHERE name = ?)");
    tokens.bind(1, name).step();
    return changed;
}

bool sqlite_store::remove(std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement tokens(db_, "DELETE FROM tokens WHERE user_id IN (SELECT id FROM users WHERE name = ?)");
    tokens.bind(1, name).step();
    statement s(db_, "DELETE FROM users WHERE name = ?");
    s.bind(1, name).step();
    return sqlite3_changes(db_) == 1;
}

std::vector<std::string> sqlite_store::names()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT name FROM users ORDER BY name");
    std::vector<std::string> out;
    while (s.step() == SQLITE_ROW)
        out.push_back(s.text(0));
    return out;
}

std::optional<std::pair<std::string, user_identity>> sqlite_store::credentials(std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT password_hash, id, generation, admin FROM users WHERE name = ?");
    if (s.bind(1, name).step() != SQLITE_ROW)
        return std::nullopt;
    return std::pair{s.text(0), user_identity{s.integer(1), s.integer(2), s.integer(3) != 0}};
}

std::optional<user_identity> sqlite_store::identity(std::int64_t id)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT id, generation, admin FROM users WHERE id = ?"); // the primary key: one index probe
    if (s.bind(1, id).step() != SQLITE_ROW)
        return std::nullopt;
    return user_identity{s.integer(0), s.integer(1), s.integer(2) != 0};
}

bool sqlite_store::set_admin(std::string_view name, bool admin)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "UPDATE users SET admin = ? WHERE name = ?");
    s.bind(1, std::int64_t{admin ? 1 : 0}).bind(2, name).step();
    return sqlite3_changes(db_) == 1;
}

std::vector<user_entry> sqlite_store::entries()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT name, admin FROM users ORDER BY name");
    std::vector<user_entry> out;
    while (s.step() == SQLITE_ROW)
        out.push_back({s.text(0), s.integer(1) != 0});
    return out;
}

void sqlite_store::add_token(std::int64_t user_id, std::int64_t generation, std::string_view token_hash,
                             std::int64_t expires)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "INSERT OR REPLACE INTO tokens (hash, user_id, generation, expires) VALUES (?, ?, ?, ?)");
    s.bind(1, token_hash).bind(2, user_id).bind(3, generation).bind(4, expires).step();
}

std::optional<std::pair<std::string, user_identity>> sqlite_store::token_identity(std::string_view token_hash,
                                                                                   std::int64_t now)
{
    std::lock_guard lock(mutex_);
    statement s(db_,
                "SELECT u.name, u.id, u.generation, u.admin FROM tokens t JOIN users u ON u.id = t.user_id "
                "WHERE t.hash = ? AND t.expires > ? AND t.generation = u.generation");
    if (s.bind(1, token_hash).bind(2, now).step() != SQLITE_ROW)
        return std::nullopt;
    return std::pair{s.text(0), user_identity{s.integer(1), s.integer(2), s.integer(3) != 0}};
}

bool sqlite_store::remove_token(std::string_view token_hash)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "DELETE FROM tokens WHERE hash = ?");
    s.bind(1, token_hash).step();
    return sqlite3_changes(db_) == 1;
}

std::uint64_t sqlite_store::remove_expired_tokens(std::int64_t now)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "DELETE FROM tokens WHERE expires <= ?");
    s.bind(1, now).step();
    return static_cast<std::uint64_t>(sqlite3_changes(db_));
}

namespace {

file_record read_file_row(const statement& s)
{
    return {s.blob(0), static_cast<std::uint64_t>(s.integer(1)), s.text(2), s.integer(3), s.text(4)};
}

partial_record read_partial_row(const statement& s, int first)
{
    return {s.blob(first), static_cast<std::uint64_t>(s.integer(first + 1)), static_cast<std::uint64_t>(s.integer(first + 2)),
            s.text(first + 3), s.integer(first + 4), s.text(first + 5)};
}

} // namespace

std::optional<file_record> sqlite_store::find_file(std::string_view user, std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT name, size, sha256, mtime, blob FROM files WHERE user = ? AND name = ?");
    if (s.bind(1, user).bind_blob(2, name).step() != SQLITE_ROW)
        return std::nullopt;
    return read_file_row(s);
}

std::vector<file_record> sqlite_store::list_files(std::string_view user)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT name, size, sha256, mtime, blob FROM files WHERE user = ? ORDER BY name");
    s.bind(1, user);
    std::vector<file_record> out;
    while (s.step() == SQLITE_ROW)
        out.push_back(read_file_row(s));
    return out;
}

std::uint64_t sqlite_store::bytes_used(std::string_view user)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT COALESCE(SUM(size), 0) FROM files WHERE user = ?");
    s.bind(1, user).step();
    return static_cast<std::uint64_t>(s.integer(0));
}

std::uint64_t sqlite_store::bytes_used_total()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT COALESCE(SUM(size), 0) FROM files");
    s.step();
    return static_cast<std::uint64_t>(s.integer(0));
}

user_usage sqlite_store::usage(std::string_view user)
{
    std::lock_guard lock(mutex_);
    // One statement, so the six figures belong to one state of the catalog.
    statement s(db_, "SELECT (SELECT COUNT(*) FROM files WHERE user = ?1),"
                     " (SELECT COALESCE(SUM(size), 0) FROM files WHERE user = ?1),"
                     " (SELECT COUNT(*) FROM partials WHERE user = ?1),"
                     " (SELECT COALESCE(SUM(bytes), 0) FROM partials WHERE user = ?1),"
                     " (SELECT COUNT(*) FROM uploads WHERE user = ?1),"
                     " (SELECT COALESCE(SUM(size), 0) FROM uploads WHERE user = ?1)");
    s.bind(1, user).step();
    const auto column = [&](int i) { return static_cast<std::uint64_t>(s.integer(i)); };
    return {column(0), column(1), column(2), column(3), column(4), column(5)};
}

template <class Fn>
void sqlite_store::transaction(Fn&& fn)
{
    exec("BEGIN IMMEDIATE;");
    try {
        fn();
        exec("COMMIT;");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr);
        throw;
    }
}

namespace {

void insert_file(sqlite3* db, std::string_view user, const file_record& file)
{
    statement put(db, "INSERT OR REPLACE INTO files (user, name, size, sha256, mtime, blob) VALUES (?, ?, ?, ?, ?, ?)");
    put.bind(1, user).bind_blob(2, file.name).bind(3, static_cast<std::int64_t>(file.size)).bind(4, file.sha256)
        .bind(5, file.mtime).bind(6, file.blob).step();
}

void insert_partial(sqlite3* db, std::string_view user, const partial_record& partial)
{
    statement s(db, "INSERT OR REPLACE INTO partials (user, name, size, bytes, blob, mtime, multipart)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, user).bind_blob(2, partial.name).bind(3, static_cast<std::int64_t>(partial.size))
        .bind(4, static_cast<std::int64_t>(partial.bytes)).bind(5, partial.blob).bind(6, partial.mtime)
        .bind(7, partial.multipart).step();
}

void delete_upload(sqlite3* db, std::string_view blob)
{
    statement s(db, "DELETE FROM uploads WHERE blob = ?");
    s.bind(1, blob).step();
}

} // namespace

void sqlite_store::put_file(std::string_view user, const file_record& file)
{
    std::lock_guard lock(mutex_);
    insert_file(db_, user, file);
}

void sqlite_store::begin_upload(const upload_record& upload)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "INSERT INTO uploads (blob, user, name, size, multipart) VALUES (?, ?, ?, ?, ?)");
    s.bind(1, upload.blob).bind(2, upload.user).bind_blob(3, upload.name).bind(4, static_cast<std::int64_t>(upload.size))
        .bind(5, upload.multipart).step();
}

void sqlite_store::record_upload_progress(std::string_view blob, std::string_view multipart)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "UPDATE uploads SET multipart = ? WHERE blob = ?");
    s.bind(1, multipart).bind(2, blob).step();
}

std::vector<std::string> sqlite_store::referenced_blobs()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT blob FROM files WHERE blob != '' UNION SELECT blob FROM partials"
                     " UNION SELECT blob FROM uploads");
    std::vector<std::string> out;
    while (s.step() == SQLITE_ROW)
        out.push_back(s.text(0));
    return out;
}

void sqlite_store::prepare_publish(const upload_record& upload, const file_record& file)
{
    std::lock_guard lock(mutex_);
    transaction([&] {
        {
            statement stale(db_, "DELETE FROM uploads WHERE user = ? AND name = ? AND sha256 != '' AND blob != ?");
            stale.bind(1, upload.user).bind_blob(2, upload.name).bind(3, upload.blob).step();
        }
        {
            statement mark(db_, "UPDATE uploads SET sha256 = ? WHERE blob = ?");
            mark.bind(1, file.sha256).bind(2, upload.blob).step();
        }
        insert_file(db_, upload.user, file);
        statement s(db_, "DELETE FROM partials WHERE user = ? AND name = ?");
        s.bind(1, upload.user).bind_blob(2, file.name).step();
    });
}

void sqlite_store::publish(const upload_record& upload, const file_record& file)
{
    std::lock_guard lock(mutex_);
    transaction([&] {
        insert_file(db_, upload.user, file);
        delete_upload(db_, upload.blob);
        statement s(db_, "DELETE FROM partials WHERE user = ? AND name = ?");
        s.bind(1, upload.user).bind_blob(2, file.name).step();
    });
}

void sqlite_store::upload_to_partial(std::string_view blob, std::string_view user, const partial_record& partial)
{
    std::lock_guard lock(mutex_);
    transaction([&] {
        delete_upload(db_, blob);
        insert_partial(db_, user, partial);
    });
}

void sqlite_store::drop_upload(std::string_view blob)
{
    std::lock_guard lock(mutex_);
    delete_upload(db_, blob);
}

std::vector<upload_record> sqlite_store::uploads()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT blob, user, name, size, sha256, multipart FROM uploads");
    std::vector<upload_record> out;
    while (s.step() == SQLITE_ROW)
        out.push_back({s.text(0), s.text(1), s.blob(2), static_cast<std::uint64_t>(s.integer(3)), s.text(4), s.text(5)});
    return out;
}

std::vector<std::pair<std::string, partial_record>> sqlite_store::all_partials()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT user, name, size, bytes, blob, mtime, multipart FROM partials");
    std::vector<std::pair<std::string, partial_record>> out;
    while (s.step() == SQLITE_ROW)
        out.emplace_back(s.text(0), read_partial_row(s, 1));
    return out;
}

std::vector<std::string> sqlite_store::users_with_files()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT DISTINCT user FROM files");
    std::vector<std::string> out;
    while (s.step() == SQLITE_ROW)
        out.push_back(s.text(0));
    return out;
}

bool sqlite_store::remove_file(std::string_view user, std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "DELETE FROM files WHERE user = ? AND name = ?");
    s.bind(1, user).bind_blob(2, name).step();
    return sqlite3_changes(db_) == 1;
}

std::optional<partial_record> sqlite_store::find_partial(std::string_view user, std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT name, size, bytes, blob, mtime, multipart FROM partials WHERE user = ? AND name = ?");
    if (s.bind(1, user).bind_blob(2, name).step() != SQLITE_ROW)
        return std::nullopt;
    return read_partial_row(s, 0);
}

void sqlite_store::put_partial(std::string_view user, const partial_record& partial)
{
    std::lock_guard lock(mutex_);
    insert_partial(db_, user, partial);
}

bool sqlite_store::remove_partial(std::string_view user, std::string_view name)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "DELETE FROM partials WHERE user = ? AND name = ?");
    s.bind(1, user).bind_blob(2, name).step();
    return sqlite3_changes(db_) == 1;
}

std::vector<std::pair<std::string, partial_record>> sqlite_store::partials_older_than(std::int64_t mtime)
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT user, name, size, bytes, blob, mtime, multipart FROM partials WHERE mtime < ?");
    s.bind(1, mtime);
    std::vector<std::pair<std::string, partial_record>> out;
    while (s.step() == SQLITE_ROW)
        out.emplace_back(s.text(0), read_partial_row(s, 1));
    return out;
}

std::uint64_t sqlite_store::partial_count()
{
    std::lock_guard lock(mutex_);
    statement s(db_, "SELECT COUNT(*) FROM partials");
    s.step();
    return static_cast<std::uint64_t>(s.integer(0));
}

void sqlite_store::remove_user_files(std::string_view user)
{
    std::lock_guard lock(mutex_);
    statement files(db_, "DELETE FROM files WHERE user = ?");
    files.bind(1, user).step();
    statement partials(db_, "DELETE FROM partials WHERE user = ?");
    partials.bind(1, user).step();
    statement uploads(db_, "DELETE FROM uploads WHERE user = ?");
    uploads.bind(1, user).step();
}

} // namespace fxd::services
