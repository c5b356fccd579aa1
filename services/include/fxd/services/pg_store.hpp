#pragma once
/// The database on a PostgreSQL server, shared by every fxd instance of a
/// cluster. A bounded pool of libpq connections, used from worker threads
/// (calls block); a call that cannot get a working connection within the
/// connect timeout throws store_unavailable, and the pool reconnects with
/// backoff. Each instance holds an advisory lock for as long as it lives, so
/// the others can tell its interrupted uploads from its live ones.

#include <fxd/services/database.hpp>

#include <memory>

namespace fxd::services {

class pg_store final : public database, public limit_ledger {
public:
    /// Connects, applies migrations (unless options.migrate is false) and
    /// takes this instance's liveness lock. Throws store_error / store_unavailable.
    explicit pg_store(const database_options& options);
    ~pg_store() override;
    pg_store(const pg_store&) = delete;
    pg_store& operator=(const pg_store&) = delete;

    int current_schema_version() const noexcept override;
    int schema_version() override;
    std::string describe() const override;
    limit_ledger* ledger() noexcept override { return this; }
    void atomically(const std::function<void()>& fn) override;
    bool shared() const noexcept override { return true; }

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
    void exclusive(std::string_view key, const std::function<void()>& fn) override;
    std::vector<upload_record> recoverable_uploads() override;

    std::uint32_t add_event(std::string_view key, std::int64_t now, std::int64_t window_s) override;
    std::uint32_t events(std::string_view key, std::int64_t now, std::int64_t window_s) override;
    void clear_events(std::string_view key) override;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

} // namespace fxd::services
