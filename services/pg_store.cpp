#include <fxd/services/pg_store.hpp>
#include <fxd/util/time.hpp>

#include <libpq-fe.h>
#include <sodium.h>

#include <charconv>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <set>
#include <utility>

namespace fxd::services {

namespace {

using clock = std::chrono::steady_clock;

// Migration N brings the schema from version N to N+1. Append only; never edit
// a shipped step. Names are TEXT in the "C" collation: sorted by UTF-8 bytes,
// as the SQLite store sorts its BLOB names.
constexpr const char* migrations[] = {
    // 0 -> 1: everything the SQLite store had at its version 4, plus the
    // owner of each upload in progress and the shared limiter counts.
    "CREATE TABLE users ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  created BIGINT NOT NULL,"
    "  password_changed BIGINT NOT NULL DEFAULT 0,"
    "  generation BIGINT NOT NULL DEFAULT 1,"
    "  admin BOOLEAN NOT NULL DEFAULT false);"
    "CREATE TABLE files ("
    "  user_name TEXT NOT NULL,"
    "  name TEXT COLLATE \"C\" NOT NULL,"
    "  size BIGINT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  mtime BIGINT NOT NULL,"
    "  PRIMARY KEY (user_name, name));"
    "CREATE TABLE partials ("
    "  user_name TEXT NOT NULL,"
    "  name TEXT COLLATE \"C\" NOT NULL,"
    "  size BIGINT NOT NULL,"
    "  bytes BIGINT NOT NULL,"
    "  blob TEXT NOT NULL,"
    "  mtime BIGINT NOT NULL,"
    "  PRIMARY KEY (user_name, name));"
    "CREATE INDEX partials_mtime ON partials (mtime);"
    "CREATE TABLE uploads ("
    "  blob TEXT PRIMARY KEY,"
    "  user_name TEXT NOT NULL,"
    "  name TEXT COLLATE \"C\" NOT NULL,"
    "  size BIGINT NOT NULL,"
    "  sha256 TEXT NOT NULL DEFAULT '',"
    "  owner INTEGER NOT NULL);"
    "CREATE INDEX uploads_user ON uploads (user_name, name);"
    "CREATE TABLE limit_events ("
    "  key TEXT PRIMARY KEY,"
    "  window_start BIGINT NOT NULL,"
    "  count INTEGER NOT NULL);",
    // 1 -> 2: remembered logins, as the SQLite store's version 5: only the
    // token's SHA-256, valid while the user's id and generation are these.
    "CREATE TABLE tokens ("
    "  hash TEXT PRIMARY KEY,"
    "  user_id BIGINT NOT NULL,"
    "  generation BIGINT NOT NULL,"
    "  expires BIGINT NOT NULL);"
    "CREATE INDEX tokens_by_user ON tokens (user_id);"
    "CREATE INDEX tokens_by_expiry ON tokens (expires);",
    // 2 -> 3: file bodies in an object store, as the SQLite store's version 6:
    // a file's object key, and the multipart upload state of partials and uploads.
    "ALTER TABLE files ADD COLUMN blob TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE partials ADD COLUMN multipart TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE uploads ADD COLUMN multipart TEXT NOT NULL DEFAULT '';",
};

// Advisory lock classes (the first key of the two-key form), fixed forever:
// every instance of every version must agree on them.
constexpr int migration_lock = 0x66786401; // "fxd" 1
constexpr int liveness_lock = 0x66786402;

// How long a connection failure keeps the pool from trying again; doubled per failure.
constexpr auto first_backoff = std::chrono::milliseconds(250);
constexpr auto max_backoff = std::chrono::seconds(5);

struct conn_closer {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using conn_ptr = std::unique_ptr<PGconn, conn_closer>;

struct result_clearer {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};

/// SQLSTATEs that mean "not now" rather than "wrong": connection exceptions,
/// the server shutting down or starting, too many connections, a statement
/// cancelled by statement_timeout, a serialization or lock failure.
bool is_transient(std::string_view state) noexcept
{
    return state.starts_with("08") || state.starts_with("57P") || state == "53300" || state == "57014" ||
           state == "40001" || state == "40P01" || state == "55P03";
}

std::string num(std::int64_t v)
{
    return std::to_string(v);
}

std::string num(std::uint64_t v)
{
    return std::to_string(v);
}

/// A query's result, cleared on scope exit.
class rows {
public:
    explicit rows(PGresult* r) : result_(r) {}
    int count() const noexcept { return PQntuples(result_.get()); }
    bool empty() const noexcept { return count() == 0; }
    std::string text(int row, int col) const
    {
        return {PQgetvalue(result_.get(), row, col), static_cast<std::size_t>(PQgetlength(result_.get(), row, col))};
    }
    std::int64_t integer(int row, int col) const
    {
        const char* p = PQgetvalue(result_.get(), row, col);
        std::int64_t v = 0;
        std::from_chars(p, p + PQgetlength(result_.get(), row, col), v);
        return v;
    }
    std::uint64_t unsigned_integer(int row, int col) const { return static_cast<std::uint64_t>(integer(row, col)); }
    bool boolean(int row, int col) const { return PQgetvalue(result_.get(), row, col)[0] == 't'; }
    /// Rows changed by an INSERT, UPDATE or DELETE.
    std::int64_t changed() const
    {
        const char* p = PQcmdTuples(result_.get());
        std::int64_t v = 0;
        std::from_chars(p, p + std::char_traits<char>::length(p), v);
        return v;
    }

private:
    std::unique_ptr<PGresult, result_clearer> result_;
};

/// libpq's messages span lines (with tabs); a log line must not.
std::string one_line(std::string_view text)
{
    std::string out;
    bool gap = false;
    for (const char c : text) {
        if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
            gap = !out.empty();
            continue;
        }
        if (gap)
            out += ' ';
        gap = false;
        out += c;
    }
    return out;
}

/// Checks a statement's result. Throws store_unavailable for a lost
/// connection or a transient failure, catalog_full for a full disk, and
/// store_error for the rest.
rows checked(PGconn* conn, PGresult* raw, const char* sql)
{
    rows result(raw);
    const auto status = PQresultStatus(raw);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return result;
    const char* state_field = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    const std::string_view state = state_field ? state_field : "";
    std::string why = "postgresql: ";
    const char* message = raw ? PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    why += one_line(message ? message : PQerrorMessage(conn));
    if (PQstatus(conn) != CONNECTION_OK || is_transient(state))
        throw store_unavailable(why);
    if (state == "53100")
        throw catalog_full(why);
    throw store_error(why + " (in: " + std::string(sql).substr(0, 60) + ")");
}

/// Runs one statement with text parameters.
rows run(PGconn* conn, const char* sql, std::initializer_list<std::string> params = {})
{
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
        values.push_back(p.c_str());
    return checked(conn,
                   PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0),
                   sql);
}

/// Runs several statements without parameters (a migration step).
void run_script(PGconn* conn, const char* sql)
{
    checked(conn, PQexec(conn, sql), sql);
}

file_record file_row(const rows& r, int i)
{
    return {r.text(i, 0), r.unsigned_integer(i, 1), r.text(i, 2), r.integer(i, 3), r.text(i, 4)};
}

partial_record partial_row(const rows& r, int i, int first)
{
    return {r.text(i, first), r.unsigned_integer(i, first + 1), r.unsigned_integer(i, first + 2), r.text(i, first + 3),
            r.integer(i, first + 4), r.text(i, first + 5)};
}

std::int32_t random_instance_id()
{
    // Positive and non-zero, so it never looks like "no owner".
    return static_cast<std::int32_t>(randombytes_uniform(0x7FFFFFFE) + 1);
}

} // namespace

struct pg_store::impl {
    explicit impl(const database_options& o) : options(o) {}

    database_options options;
    std::int32_t instance = 0;

    std::mutex mutex;
    std::condition_variable returned; ///< a connection went back to the pool (or closed)
    std::vector<conn_ptr> idle;
    unsigned open = 0;               ///< idle plus leased
    clock::time_point retry_at{};    ///< no connection attempt before this
    clock::duration backoff{};
    std::string last_error;

    std::mutex liveness_mutex;
    conn_ptr liveness; ///< holds (liveness_lock, instance) for as long as it is open
    std::set<std::int32_t> seen_free; ///< owners whose liveness lock was free at the previous look

    conn_ptr connect_now();
    conn_ptr checkout();
    void give_back(conn_ptr conn);
    void hold_liveness_lock();
};

namespace {

/// The connection the current thread holds inside exclusive(): calls made
/// within it reuse it, so they see the lock and need no second connection.
/// Per thread by nature, and empty outside exclusive().
thread_local struct {
    const pg_store::impl* owner = nullptr;
    PGconn* conn = nullptr;
} bound_connection;

/// A pooled connection for one call, given back (or closed when broken) on scope exit.
class lease {
public:
    explicit lease(pg_store::impl& pool) : pool_(pool)
    {
        if (bound_connection.owner == &pool) {
            borrowed_ = bound_connection.conn;
            return;
        }
        conn_ = pool.checkout();
    }
    ~lease()
    {
        if (conn_)
            pool_.give_back(std::move(conn_));
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;

    PGconn* get() const noexcept { return borrowed_ ? borrowed_ : conn_.get(); }

private:
    pg_store::impl& pool_;
    conn_ptr conn_;
    PGconn* borrowed_ = nullptr;
};

/// Runs fn(conn) inside BEGIN ... COMMIT, rolling back on an exception.
template <class Fn>
void in_transaction(pg_store::impl& pool, Fn&& fn)
{
    lease l(pool);
    if (PQtransactionStatus(l.get()) == PQTRANS_INTRANS) {
        fn(l.get()); // inside atomically(): part of that transaction, committed with it
        return;
    }
    run(l.get(), "BEGIN");
    try {
        fn(l.get());
        run(l.get(), "COMMIT");
    } catch (...) {
        // A failed rollback leaves the connection mid-transaction: give_back closes it.
        PQclear(PQexec(l.get(), "ROLLBACK"));
        throw;
    }
}

} // namespace

conn_ptr pg_store::impl::connect_now()
{
    const auto timeout = std::to_string(std::max(2L, std::lround(options.connect_timeout_s)));
    const auto statement_options =
        "-c statement_timeout=" + std::to_string(std::lround(options.statement_timeout_s * 1000));
    // dbname with expand_dbname set takes the whole URL (or key=value string);
    // the keys after it override the URL's own values of the same names, so
    // fxd's config keys decide the timeouts.
    const char* keys[] = {"dbname", "connect_timeout", "options", "application_name", "client_encoding", nullptr};
    const char* values[] = {options.url.c_str(), timeout.c_str(), statement_options.c_str(), "fxd", "UTF8", nullptr};
    conn_ptr conn(PQconnectdbParams(keys, values, 1));
    if (!conn)
        throw store_unavailable("postgresql: out of memory while connecting");
    // Notices ("table already exists, skipping") are not for the daemon's stderr.
    PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        const std::string why = one_line(PQerrorMessage(conn.get()));
        throw store_unavailable("cannot connect to " + redact_url(options.url) + ": " + why);
    }
    return conn;
}

conn_ptr pg_store::impl::checkout()
{
    std::unique_lock lock(mutex);
    const auto deadline = clock::now() + std::chrono::duration_cast<clock::duration>(
                                            std::chrono::duration<double>(options.connect_timeout_s));
    for (;;) {
        while (!idle.empty()) {
            conn_ptr conn = std::move(idle.back());
            idle.pop_back();
            if (PQstatus(conn.get()) == CONNECTION_OK)
                return conn;
            --open; // lost while idle (the server restarted): open a fresh one
        }
        if (open < options.pool_size)
            break;
        if (returned.wait_until(lock, deadline) == std::cv_status::timeout && idle.empty() && open >= options.pool_size)
            throw store_unavailable("all " + std::to_string(options.pool_size) +
                                    " database connections stayed busy for database.connect_timeout_s");
    }
    if (clock::now() < retry_at)
        throw store_unavailable("database unreachable, retrying shortly: " + last_error);
    ++open;
    lock.unlock();
    try {
        conn_ptr conn = connect_now();
        lock.lock();
        backoff = {};
        return conn;
    } catch (const std::exception& e) {
        lock.lock();
        --open;
        backoff = backoff == clock::duration{} ? clock::duration(first_backoff)
                                               : std::min<clock::duration>(backoff * 2, max_backoff);
        retry_at = clock::now() + backoff;
        last_error = e.what();
        returned.notify_one();
        throw;
    }
}

void pg_store::impl::give_back(conn_ptr conn)
{
    const bool reusable = PQstatus(conn.get()) == CONNECTION_OK && PQtransactionStatus(conn.get()) == PQTRANS_IDLE;
    std::lock_guard lock(mutex);
    if (reusable) {
        idle.push_back(std::move(conn));
    } else {
        --open;
        conn.reset();
    }
    returned.notify_one();
}

void pg_store::impl::hold_liveness_lock()
{
    std::lock_guard lock(liveness_mutex);
    if (liveness && PQstatus(liveness.get()) == CONNECTION_OK) {
        // A cheap round trip tells a connection the server dropped from a live one.
        PQclear(PQexec(liveness.get(), "SELECT 1"));
        if (PQstatus(liveness.get()) == CONNECTION_OK)
            return;
    }
    liveness.reset();
    conn_ptr conn = connect_now();
    // The lock is ours again only if nobody took our number meanwhile.
    rows r = run(conn.get(), "SELECT pg_try_advisory_lock($1::int, $2::int)",
                 {num(std::int64_t{liveness_lock}), num(std::int64_t{instance})});
    if (!r.boolean(0, 0))
        throw store_error("another process holds this instance's liveness lock");
    liveness = std::move(conn);
}

pg_store::pg_store(const database_options& options) : impl_(std::make_unique<impl>(options))
{
    if (impl_->options.pool_size == 0)
        impl_->options.pool_size = 1;
    if (options.migrate) {
        in_transaction(*impl_, [&](PGconn* c) {
            // One instance migrates at a time; the others wait, then find nothing to do.
            run(c, "SELECT pg_advisory_xact_lock($1::int, 0)", {num(std::int64_t{migration_lock})});
            run(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
            rows r = run(c, "SELECT version FROM schema_version");
            int version = 0;
            if (r.empty())
                run(c, "INSERT INTO schema_version (version) VALUES (0)");
            else
                version = static_cast<int>(r.integer(0, 0));
            if (version > current_schema_version())
                throw store_error("database schema version " + std::to_string(version) +
                                  " is newer than this fxd understands (" + std::to_string(current_schema_version()) +
                                  ")");
            for (; version < current_schema_version(); ++version)
                run_script(c, migrations[version]);
            run(c, "UPDATE schema_version SET version = $1", {num(std::int64_t{version})});
        });
        // Only a process that serves (and so migrates) takes part in uploads.
        for (int tries = 0; !impl_->liveness; ++tries) {
            impl_->instance = random_instance_id();
            try {
                impl_->hold_liveness_lock();
            } catch (const store_unavailable&) {
                throw;
            } catch (const store_error&) {
                if (tries == 8)
                    throw;
            }
        }
    }
}

pg_store::~pg_store() = default;

int pg_store::current_schema_version() const noexcept
{
    return static_cast<int>(std::size(migrations));
}

int pg_store::schema_version()
{
    lease l(*impl_);
    rows exists = run(l.get(), "SELECT to_regclass('schema_version') IS NOT NULL");
    if (!exists.boolean(0, 0))
        return 0;
    rows r = run(l.get(), "SELECT version FROM schema_version");
    return r.empty() ? 0 : static_cast<int>(r.integer(0, 0));
}

std::string pg_store::describe() const
{
    return redact_url(impl_->options.url);
}

// --- users -------------------------------------------------------------------

bool pg_store::create(std::string_view name, std::string_view password_hash)
{
    lease l(*impl_);
    const auto now = num(util::unix_now());
    rows r = run(l.get(),
                 "INSERT INTO users (name, password_hash, created, password_changed) VALUES ($1, $2, $3, $3)"
                 " ON CONFLICT (name) DO NOTHING",
                 {std::string(name), std::string(password_hash), now});
    return r.changed() == 1;
}

std::optional<std::string> pg_store::password_hash(std::string_view name)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT password_hash FROM users WHERE name = $1", {std::string(name)});
    if (r.empty())
        return std::nullopt;
    return r.text(0, 0);
}

bool pg_store::set_password_hash(std::string_view name, std::string_view password_hash)
{
    bool changed = false;
    in_transaction(*impl_, [&](PGconn* c) {
        changed = run(c,
                      "UPDATE users SET password_hash = $1, password_changed = $2, generation = generation + 1"
                      " WHERE name = $3",
                      {std::string(password_hash), num(util::unix_now()), std::string(name)})
                      .changed() == 1;
        // The new generation already revokes the user's tokens; their rows go too.
        run(c, "DELETE FROM tokens WHERE user_id IN (SELECT id FROM users WHERE name = $1)", {std::string(name)});
    });
    return changed;
}

bool pg_store::remove(std::string_view name)
{
    bool removed = false;
    in_transaction(*impl_, [&](PGconn* c) {
        run(c, "DELETE FROM tokens WHERE user_id IN (SELECT id FROM users WHERE name = $1)", {std::string(name)});
        removed = run(c, "DELETE FROM users WHERE name = $1", {std::string(name)}).changed() == 1;
    });
    return removed;
}

void pg_store::add_token(std::int64_t user_id, std::int64_t generation, std::string_view token_hash,
                         std::int64_t expires)
{
    lease l(*impl_);
    run(l.get(),
        "INSERT INTO tokens (hash, user_id, generation, expires) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (hash) DO UPDATE SET user_id = EXCLUDED.user_id, generation = EXCLUDED.generation,"
        " expires = EXCLUDED.expires",
        {std::string(token_hash), num(user_id), num(generation), num(expires)});
}

std::optional<std::pair<std::string, user_identity>> pg_store::token_identity(std::string_view token_hash,
                                                                               std::int64_t now)
{
    lease l(*impl_);
    rows r = run(l.get(),
                 "SELECT u.name, u.id, u.generation, u.admin FROM tokens t JOIN users u ON u.id = t.user_id"
                 " WHERE t.hash = $1 AND t.expires > $2 AND t.generation = u.generation",
                 {std::string(token_hash), num(now)});
    if (r.empty())
        return std::nullopt;
    return std::pair{r.text(0, 0), user_identity{r.integer(0, 1), r.integer(0, 2), r.boolean(0, 3)}};
}

bool pg_store::remove_token(std::string_view token_hash)
{
    lease l(*impl_);
    return run(l.get(), "DELETE FROM tokens WHERE hash = $1", {std::string(token_hash)}).changed() == 1;
}

std::uint64_t pg_store::remove_expired_tokens(std::int64_t now)
{
    lease l(*impl_);
    return static_cast<std::uint64_t>(run(l.get(), "DELETE FROM tokens WHERE expires <= $1", {num(now)}).changed());
}

std::vector<std::string> pg_store::names()
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT name FROM users ORDER BY name COLLATE \"C\"");
    std::vector<std::string> out;
    for (int i = 0; i < r.count(); ++i)
        out.push_back(r.text(i, 0));
    return out;
}

std::optional<std::pair<std::string, user_identity>> pg_store::credentials(std::string_view name)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT password_hash, id, generation, admin FROM users WHERE name = $1", {std::string(name)});
    if (r.empty())
        return std::nullopt;
    return std::pair{r.text(0, 0), user_identity{r.integer(0, 1), r.integer(0, 2), r.boolean(0, 3)}};
}

std::optional<user_identity> pg_store::identity(std::int64_t id)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT id, generation, admin FROM users WHERE id = $1", {num(id)});
    if (r.empty())
        return std::nullopt;
    return user_identity{r.integer(0, 0), r.integer(0, 1), r.boolean(0, 2)};
}

bool pg_store::set_admin(std::string_view name, bool admin)
{
    lease l(*impl_);
    return run(l.get(), "UPDATE users SET admin = $1 WHERE name = $2", {admin ? "true" : "false", std::string(name)})
               .changed() == 1;
}

std::vector<user_entry> pg_store::entries()
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT name, admin FROM users ORDER BY name COLLATE \"C\"");
    std::vector<user_entry> out;
    for (int i = 0; i < r.count(); ++i)
        out.push_back({r.text(i, 0), r.boolean(i, 1)});
    return out;
}

// --- files -------------------------------------------------------------------

std::optional<file_record> pg_store::find_file(std::string_view user, std::string_view name)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT name, size, sha256, mtime, blob FROM files WHERE user_name = $1 AND name = $2",
                 {std::string(user), std::string(name)});
    if (r.empty())
        return std::nullopt;
    return file_row(r, 0);
}

std::vector<file_record> pg_store::list_files(std::string_view user)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT name, size, sha256, mtime, blob FROM files WHERE user_name = $1 ORDER BY name",
                 {std::string(user)});
    std::vector<file_record> out;
    for (int i = 0; i < r.count(); ++i)
        out.push_back(file_row(r, i));
    return out;
}

std::uint64_t pg_store::bytes_used(std::string_view user)
{
    lease l(*impl_);
    return run(l.get(), "SELECT COALESCE(SUM(size), 0) FROM files WHERE user_name = $1", {std::string(user)})
        .unsigned_integer(0, 0);
}

std::uint64_t pg_store::bytes_used_total()
{
    lease l(*impl_);
    return run(l.get(), "SELECT COALESCE(SUM(size), 0) FROM files").unsigned_integer(0, 0);
}

user_usage pg_store::usage(std::string_view user)
{
    lease l(*impl_);
    // One statement, so the six figures belong to one snapshot.
    rows r = run(l.get(),
                 "SELECT (SELECT COUNT(*) FROM files WHERE user_name = $1),"
                 " (SELECT COALESCE(SUM(size), 0) FROM files WHERE user_name = $1),"
                 " (SELECT COUNT(*) FROM partials WHERE user_name = $1),"
                 " (SELECT COALESCE(SUM(bytes), 0) FROM partials WHERE user_name = $1),"
                 " (SELECT COUNT(*) FROM uploads WHERE user_name = $1),"
                 " (SELECT COALESCE(SUM(size), 0) FROM uploads WHERE user_name = $1)",
                 {std::string(user)});
    return {r.unsigned_integer(0, 0), r.unsigned_integer(0, 1), r.unsigned_integer(0, 2),
            r.unsigned_integer(0, 3), r.unsigned_integer(0, 4), r.unsigned_integer(0, 5)};
}

namespace {

void upsert_file(PGconn* c, std::string_view user, const file_record& file)
{
    run(c,
        "INSERT INTO files (user_name, name, size, sha256, mtime, blob) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (user_name, name) DO UPDATE SET size = EXCLUDED.size, sha256 = EXCLUDED.sha256,"
        " mtime = EXCLUDED.mtime, blob = EXCLUDED.blob",
        {std::string(user), file.name, num(file.size), file.sha256, num(file.mtime), file.blob});
}

void upsert_partial(PGconn* c, std::string_view user, const partial_record& partial)
{
    run(c,
        "INSERT INTO partials (user_name, name, size, bytes, blob, mtime, multipart)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (user_name, name) DO UPDATE SET size = EXCLUDED.size, bytes = EXCLUDED.bytes,"
        " blob = EXCLUDED.blob, mtime = EXCLUDED.mtime, multipart = EXCLUDED.multipart",
        {std::string(user), partial.name, num(partial.size), num(partial.bytes), partial.blob, num(partial.mtime),
         partial.multipart});
}

} // namespace

void pg_store::put_file(std::string_view user, const file_record& file)
{
    lease l(*impl_);
    upsert_file(l.get(), user, file);
}

bool pg_store::remove_file(std::string_view user, std::string_view name)
{
    lease l(*impl_);
    return run(l.get(), "DELETE FROM files WHERE user_name = $1 AND name = $2", {std::string(user), std::string(name)})
               .changed() == 1;
}

std::optional<partial_record> pg_store::find_partial(std::string_view user, std::string_view name)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT name, size, bytes, blob, mtime, multipart FROM partials WHERE user_name = $1 AND name = $2",
                 {std::string(user), std::string(name)});
    if (r.empty())
        return std::nullopt;
    return partial_row(r, 0, 0);
}

void pg_store::put_partial(std::string_view user, const partial_record& partial)
{
    lease l(*impl_);
    upsert_partial(l.get(), user, partial);
}

bool pg_store::remove_partial(std::string_view user, std::string_view name)
{
    lease l(*impl_);
    return run(l.get(), "DELETE FROM partials WHERE user_name = $1 AND name = $2",
               {std::string(user), std::string(name)})
               .changed() == 1;
}

std::vector<std::pair<std::string, partial_record>> pg_store::partials_older_than(std::int64_t mtime)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT user_name, name, size, bytes, blob, mtime, multipart FROM partials WHERE mtime < $1", {num(mtime)});
    std::vector<std::pair<std::string, partial_record>> out;
    for (int i = 0; i < r.count(); ++i)
        out.emplace_back(r.text(i, 0), partial_row(r, i, 1));
    return out;
}

std::uint64_t pg_store::partial_count()
{
    lease l(*impl_);
    return run(l.get(), "SELECT COUNT(*) FROM partials").unsigned_integer(0, 0);
}

void pg_store::remove_user_files(std::string_view user)
{
    in_transaction(*impl_, [&](PGconn* c) {
        run(c, "DELETE FROM files WHERE user_name = $1", {std::string(user)});
        run(c, "DELETE FROM partials WHERE user_name = $1", {std::string(user)});
        run(c, "DELETE FROM uploads WHERE user_name = $1", {std::string(user)});
    });
}

void pg_store::begin_upload(const upload_record& upload)
{
    lease l(*impl_);
    run(l.get(), "INSERT INTO uploads (blob, user_name, name, size, owner, multipart) VALUES ($1, $2, $3, $4, $5, $6)",
        {upload.blob, upload.user, upload.name, num(upload.size), num(std::int64_t{impl_->instance}), upload.multipart});
}

void pg_store::record_upload_progress(std::string_view blob, std::string_view multipart)
{
    lease l(*impl_);
    run(l.get(), "UPDATE uploads SET multipart = $1 WHERE blob = $2", {std::string(multipart), std::string(blob)});
}

std::vector<std::string> pg_store::referenced_blobs()
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT blob FROM files WHERE blob <> '' UNION SELECT blob FROM partials"
                          " UNION SELECT blob FROM uploads");
    std::vector<std::string> out;
    for (int i = 0; i < r.count(); ++i)
        out.push_back(r.text(i, 0));
    return out;
}

void pg_store::prepare_publish(const upload_record& upload, const file_record& file)
{
    in_transaction(*impl_, [&](PGconn* c) {
        run(c, "DELETE FROM uploads WHERE user_name = $1 AND name = $2 AND sha256 <> '' AND blob <> $3",
            {upload.user, upload.name, upload.blob});
        run(c, "UPDATE uploads SET sha256 = $1 WHERE blob = $2", {file.sha256, upload.blob});
        upsert_file(c, upload.user, file);
        run(c, "DELETE FROM partials WHERE user_name = $1 AND name = $2", {upload.user, file.name});
    });
}

void pg_store::publish(const upload_record& upload, const file_record& file)
{
    in_transaction(*impl_, [&](PGconn* c) {
        upsert_file(c, upload.user, file);
        run(c, "DELETE FROM uploads WHERE blob = $1", {upload.blob});
        run(c, "DELETE FROM partials WHERE user_name = $1 AND name = $2", {upload.user, file.name});
    });
}

void pg_store::upload_to_partial(std::string_view blob, std::string_view user, const partial_record& partial)
{
    in_transaction(*impl_, [&](PGconn* c) {
        run(c, "DELETE FROM uploads WHERE blob = $1", {std::string(blob)});
        upsert_partial(c, user, partial);
    });
}

void pg_store::drop_upload(std::string_view blob)
{
    lease l(*impl_);
    run(l.get(), "DELETE FROM uploads WHERE blob = $1", {std::string(blob)});
}

namespace {

std::vector<upload_record> upload_rows(const rows& r)
{
    std::vector<upload_record> out;
    for (int i = 0; i < r.count(); ++i)
        out.push_back({r.text(i, 0), r.text(i, 1), r.text(i, 2), r.unsigned_integer(i, 3), r.text(i, 4), r.text(i, 5)});
    return out;
}

} // namespace

std::vector<upload_record> pg_store::uploads()
{
    lease l(*impl_);
    return upload_rows(run(l.get(), "SELECT blob, user_name, name, size, sha256, multipart FROM uploads"));
}

std::vector<upload_record> pg_store::recoverable_uploads()
{
    // Keep our own lock held first: after a server restart it is gone until retaken.
    impl_->hold_liveness_lock();
    lease l(*impl_);
    rows owners = run(l.get(), "SELECT DISTINCT owner FROM uploads WHERE owner <> $1", {num(std::int64_t{impl_->instance})});
    std::set<std::int32_t> free_now;
    for (int i = 0; i < owners.count(); ++i) {
        const auto owner = static_cast<std::int32_t>(owners.integer(i, 0));
        const auto lock = num(std::int64_t{liveness_lock});
        rows taken = run(l.get(), "SELECT pg_try_advisory_lock($1::int, $2::int)", {lock, num(std::int64_t{owner})});
        if (taken.boolean(0, 0)) {
            run(l.get(), "SELECT pg_advisory_unlock($1::int, $2::int)", {lock, num(std::int64_t{owner})});
            free_now.insert(owner);
        }
    }
    // An owner counts as gone only when its lock was free at two looks in a
    // row: a live instance whose connection the server dropped retakes its
    // lock at its own next look, before the second one.
    std::string gone;
    {
        std::lock_guard lock(impl_->liveness_mutex);
        for (const auto owner : free_now)
            if (impl_->seen_free.contains(owner))
                gone += (gone.empty() ? "" : ",") + std::to_string(owner);
        impl_->seen_free = std::move(free_now);
    }
    run(l.get(), "DELETE FROM limit_events WHERE window_start < $1", {num(util::unix_now() - 7 * 86400)});
    return upload_rows(run(l.get(),
                           "SELECT blob, user_name, name, size, sha256, multipart FROM uploads"
                           " WHERE owner = $1 OR owner = ANY(string_to_array($2, ',')::int[])",
                           {num(std::int64_t{impl_->instance}), gone}));
}

std::vector<std::pair<std::string, partial_record>> pg_store::all_partials()
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT user_name, name, size, bytes, blob, mtime, multipart FROM partials");
    std::vector<std::pair<std::string, partial_record>> out;
    for (int i = 0; i < r.count(); ++i)
        out.emplace_back(r.text(i, 0), partial_row(r, i, 1));
    return out;
}

std::vector<std::string> pg_store::users_with_files()
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT DISTINCT user_name FROM files");
    std::vector<std::string> out;
    for (int i = 0; i < r.count(); ++i)
        out.push_back(r.text(i, 0));
    return out;
}

void pg_store::exclusive(std::string_view key, const std::function<void()>& fn)
{
    if (bound_connection.owner == impl_.get()) {
        fn(); // already inside a lock on this thread: one connection, nested keys
        return;
    }
    lease l(*impl_);
    const std::string lock_key(key);
    // A session-level lock (not a transaction's): fn's statements commit one by
    // one, as they do without a cluster; the lock only keeps other instances out.
    run(l.get(), "SELECT pg_advisory_lock(hashtextextended($1, 0))", {lock_key});
    bound_connection = {impl_.get(), l.get()};
    try {
        fn();
    } catch (...) {
        bound_connection = {};
        const char* value = lock_key.c_str();
        PQclear(PQexecParams(l.get(), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1, nullptr, &value, nullptr,
                             nullptr, 0));
        throw;
    }
    bound_connection = {};
    run(l.get(), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", {lock_key});
}

void pg_store::atomically(const std::function<void()>& fn)
{
    if (bound_connection.owner == impl_.get()) {
        fn(); // part of the transaction or lock already held on this thread
        return;
    }
    in_transaction(*impl_, [&](PGconn* c) {
        bound_connection = {impl_.get(), c};
        try {
            fn();
        } catch (...) {
            bound_connection = {};
            throw;
        }
        bound_connection = {};
    });
}

// --- shared limiter counts ---------------------------------------------------

std::uint32_t pg_store::add_event(std::string_view key, std::int64_t now, std::int64_t window_s)
{
    lease l(*impl_);
    rows r = run(l.get(),
                 "INSERT INTO limit_events AS e (key, window_start, count) VALUES ($1, $2, 1)"
                 " ON CONFLICT (key) DO UPDATE SET"
                 "  count = CASE WHEN e.window_start + $3 <= $2 THEN 1 ELSE e.count + 1 END,"
                 "  window_start = CASE WHEN e.window_start + $3 <= $2 THEN $2 ELSE e.window_start END"
                 " RETURNING count",
                 {std::string(key), num(now), num(window_s)});
    return static_cast<std::uint32_t>(r.integer(0, 0));
}

std::uint32_t pg_store::events(std::string_view key, std::int64_t now, std::int64_t window_s)
{
    lease l(*impl_);
    rows r = run(l.get(), "SELECT count FROM limit_events WHERE key = $1 AND window_start + $3 > $2",
                 {std::string(key), num(now), num(window_s)});
    return r.empty() ? 0 : static_cast<std::uint32_t>(r.integer(0, 0));
}

void pg_store::clear_events(std::string_view key)
{
    lease l(*impl_);
    run(l.get(), "DELETE FROM limit_events WHERE key = $1", {std::string(key)});
}

} // namespace fxd::services
