#pragma once
/// The daemon's database: accounts, the file catalog and, where several
/// instances share it, the limiter counts. Two implementations: SQLite (one
/// file under storage.dir, the single-host default) and PostgreSQL (shared by
/// every instance of a cluster). Every call may block: the daemon calls them
/// from its worker pools, never from the event loop.

#include <fxd/services/file_catalog.hpp>
#include <fxd/services/user_store.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fxd::services {

/// The database refused or failed a call (a broken invariant, a bad file).
class store_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The database cannot be reached now (down, restarting, timing out). Callers
/// answer `unavailable` and keep the connection; the store reconnects by itself.
class store_unavailable : public store_error {
public:
    using store_error::store_error;
};

/// Event counts in fixed windows, shared by every instance: the login backoff
/// and the registration limit hold across a cluster. Keys are opaque strings.
class limit_ledger {
public:
    virtual ~limit_ledger() = default;
    /// Counts one event under key and returns the count in its current window
    /// (a window starts with the first event after the previous one ended).
    virtual std::uint32_t add_event(std::string_view key, std::int64_t now, std::int64_t window_s) = 0;
    /// The count in the key's current window (0 when it has ended).
    virtual std::uint32_t events(std::string_view key, std::int64_t now, std::int64_t window_s) = 0;
    virtual void clear_events(std::string_view key) = 0;
};

class database : public user_store, public file_catalog {
public:
    /// The schema version this build writes, and the one the database has.
    virtual int current_schema_version() const noexcept = 0;
    virtual int schema_version() = 0;
    /// Where it is, for logs and messages (no password).
    virtual std::string describe() const = 0;
    /// Shared limiter counts, or null when this process is the only user of
    /// the database (its in-memory limiters are then the whole truth).
    virtual limit_ledger* ledger() noexcept { return nullptr; }
    /// Runs fn's calls (on this thread) as one transaction: all or none.
    /// The SQLite store runs fn as it is (its callers are single-process tools).
    virtual void atomically(const std::function<void()>& fn) { fn(); }
};

struct database_options {
    std::string url;                     ///< empty: SQLite at sqlite_path; postgresql://... otherwise
    std::filesystem::path sqlite_path;
    unsigned pool_size = 4;              ///< PostgreSQL connections at most
    double connect_timeout_s = 5;
    double statement_timeout_s = 10;
    bool create = true;                  ///< SQLite: create the file when missing
    bool migrate = true;                 ///< apply schema migrations at open
};

/// Opens the database the options name. Throws store_error (and
/// store_unavailable when PostgreSQL cannot be reached).
std::unique_ptr<database> open_database(const database_options& options);

/// True for a postgresql:// or postgres:// URL.
bool is_postgresql_url(std::string_view url) noexcept;

/// The URL with any password replaced by "***", for logs.
std::string redact_url(std::string_view url);

} // namespace fxd::services
