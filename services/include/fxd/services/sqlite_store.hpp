#pragma once
/// The SQLite database under storage.dir: one file, WAL mode, full sync on
/// commit (an acknowledged write survives a crash), versioned schema with
/// migrations applied at open.

#include <fxd/services/database.hpp>

#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>

struct sqlite3;

namespace fxd::services {

class sqlite_store final : public database {
public:
    /// Opens (creating if needed) and migrates the database. Throws store_error.
    /// With create false, a missing file is an error instead of a new database.
    explicit sqlite_store(const std::filesystem::path& file, bool create = true);
    ~sqlite_store() override;
    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    /// The schema version this build writes.
    static int schema_version_written() noexcept;
    int current_schema_version() const noexcept override { return schema_version_written(); }
    int schema_version() override;
    std::string describe() const override { return "sqlite:" + path_.string(); }

    bool create(std::string_view name, std::string_view password_hash) override;
    std::optional<std::string> password_hash(std::string_view name) override;
    bool set_password_hash(std::string_view name, std::string_view password_hash) override;
    bool remove(std::string_view name) override;
    std::vector<std::string> names() override;
    std::optional<std::pair<std::string, user_identity>> credentials(std::string_view name) override;
    std::optional<user_identity> identity(std::int64_t id) override;
    bool set_admin(std::string_view name, bool admin) override;
    std::vector<user_entry> entries() override;
    void add_token(std::int64_t user_id, std::int64_t generation, std::string_view token_hash,
                   std::int64_t expires) override;
    std::optional<std::pair<std::string, user_identity>> token_identity(std::string_view token_hash,
                                                                         std::int64_t now) override;
    bool remove_token(std::string_view token_hash) override;
    std::uint64_t remove_expired_tokens(std::int64_t now) override;

    std::optional<file_record> find_file(std::string_view user, std::string_view name) override;
    std::vector<file_record> list_files(std::string_view user) override;
    std::uint64_t bytes_used(std::string_view user) override;
    std::uint64_t bytes_used_total() override;
    user_usage usage(std::string_view user) override;
    void put_file(std::string_view user, const file_record& file) override;
    bool remove_file(std::string_view user, std::string_view name) override;
    std::optional<partial_record> find_partial(std::string_view user, std::string_view name) override;
    void put_partial(std::string_view user, const partial_record& partial) override;
    bool remove_partial(std::string_view user, std::string_view name) override;
    std::vector<std::pair<std::string, partial_record>> partials_older_than(std::int64_t mtime) override;
    std::uint64_t partial_count() override;
    void remove_user_files(std::string_view user) override;
    void begin_upload(const upload_record& upload) override;
    void prepare_publish(const upload_record& upload, const file_record& file) override;
    void publish(const upload_record& upload, const file_record& file) override;
    void upload_to_partial(std::string_view blob, std::string_view user, const partial_record& partial) override;
    void drop_upload(std::string_view blob) override;
    void record_upload_progress(std::string_view blob, std::string_view multipart) override;
    std::vector<std::string> referenced_blobs() override;
    std::vector<upload_record> uploads() override;
    std::vector<std::pair<std::string, partial_record>> all_partials() override;
    std::vector<std::string> users_with_files() override;

private:
    void exec(const char* sql);
    /// Runs fn inside BEGIN IMMEDIATE ... COMMIT, rolling back on an exception.
    template <class Fn>
    void transaction(Fn&& fn);
    void migrate();

    std::filesystem::path path_;
    std::mutex mutex_; // one connection, shared by the worker threads
    sqlite3* db_ = nullptr;
};

} // namespace fxd::services
