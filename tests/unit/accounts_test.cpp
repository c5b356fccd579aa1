// Accounts below the wire: the SQLite user store on a temporary folder
// (including migrations from an older schema and refusal of a newer one),
// Argon2id registration and verification, and the brute-force backoff
// counter driven by an injected clock.

#include "temp_dir.hpp"

#include <fxd/services/accounts.hpp>
#include <fxd/services/login_limiter.hpp>
#include <fxd/services/register_limiter.hpp>
#include <fxd/services/sqlite_store.hpp>

#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using fxd::services::accounts;
using fxd::services::hash_cost;
using fxd::services::login_limiter;
using fxd::services::register_limiter;
using fxd::services::sqlite_store;
using fxd::services::store_error;
using fxd::test::temp_dir;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace {

/// A raw sqlite3 handle for building and inspecting databases behind the store's back.
class raw_db {
public:
    explicit raw_db(const fs::path& file)
    {
        if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK)
            throw std::runtime_error("sqlite3_open failed");
    }
    ~raw_db() { sqlite3_close(db_); }
    raw_db(const raw_db&) = delete;
    raw_db& operator=(const raw_db&) = delete;

    void exec(const std::string& sql)
    {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
            std::string why = err ? err : "?";
            sqlite3_free(err);
            throw std::runtime_error("sqlite: " + why + " in " + sql);
        }
    }

    /// The first column of the first row as text; nullopt when there is no row.
    std::optional<std::string> scalar(const std::string& sql)
    {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(db_) + " in " + sql);
        std::optional<std::string> out;
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            const auto* p = sqlite3_column_text(stmt, 0);
            out = p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
        }
        sqlite3_finalize(stmt);
        return out;
    }

private:
    sqlite3* db_ = nullptr;
};

/// The v1 schema exactly as migration 0 -> 1 shipped it.
void build_version_1(const fs::path& file)
{
    raw_db db(file);
    db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL);"
            "INSERT INTO schema_version (version) VALUES (1);"
            "CREATE TABLE users ("
            "  name TEXT PRIMARY KEY NOT NULL,"
            "  password_hash TEXT NOT NULL,"
            "  created INTEGER NOT NULL"
            ") WITHOUT ROWID;"
            "INSERT INTO users (name, password_hash, created) VALUES ('olduser', '$argon2id$v=19$old-hash', 1600000000);");
}

// Tiny Argon2id cost so the accounts tests stay fast.
constexpr hash_cost tiny{1, 8192 * 8};

using tp = login_limiter::clock::time_point;
tp at(int s)
{
    return tp{} + std::chrono::seconds(s);
}

login_limiter::limits limits_of(std::uint32_t per_pair, std::uint32_t per_address, int window_s = 60,
                                std::size_t max_tracked = 100000)
{
    login_limiter::limits l;
    l.max_failures = per_pair;
    l.max_failures_per_address = per_address;
    l.window = std::chrono::seconds(window_s);
    l.max_tracked = max_tracked;
    return l;
}

} // namespace

BOOST_AUTO_TEST_SUITE(user_store_on_sqlite)

BOOST_AUTO_TEST_CASE(creates_finds_and_refuses_a_duplicate_name, *utf::timeout(30))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST(store.create("alice", "hash-a"));
    BOOST_TEST(!store.create("alice", "hash-other"));
    BOOST_TEST(store.password_hash("alice").value_or("<none>") == "hash-a"); // the duplicate did not overwrite
    BOOST_TEST(!store.password_hash("bob").has_value());
    BOOST_TEST(!store.password_hash("Alice").has_value()); // names are compared exactly
}

BOOST_AUTO_TEST_CASE(replaces_a_hash_only_for_a_known_user, *utf::timeout(30))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST(store.create("alice", "hash-1"));
    BOOST_TEST(store.set_password_hash("alice", "hash-2"));
    BOOST_TEST(store.password_hash("alice").value_or("<none>") == "hash-2");
    BOOST_TEST(!store.set_password_hash("nobody", "hash-3"));
    BOOST_TEST(!store.password_hash("nobody").has_value());
}

BOOST_AUTO_TEST_CASE(removes_a_user_once, *utf::timeout(30))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST(store.create("alice", "h"));
    BOOST_TEST(store.create("bob", "h"));
    BOOST_TEST(store.remove("alice"));
    BOOST_TEST(!store.remove("alice"));
    BOOST_TEST(!store.remove("nobody"));
    BOOST_TEST(!store.password_hash("alice").has_value());
    BOOST_TEST(store.password_hash("bob").has_value());
    BOOST_TEST(store.create("alice", "again")); // the name is free again
}

BOOST_AUTO_TEST_CASE(lists_names_sorted, *utf::timeout(30))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST(store.names().empty());
    for (const char* n : {"mallory", "bob", "alice", "0zero", "carol"})
        BOOST_TEST(store.create(n, "h"));
    const std::vector<std::string> expected{"0zero", "alice", "bob", "carol", "mallory"};
    BOOST_TEST(store.names() == expected);
}

BOOST_AUTO_TEST_CASE(keeps_users_after_reopening, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    {
        sqlite_store store(file);
        BOOST_TEST(store.create("alice", "hash-a"));
        BOOST_TEST(store.create("bob", "hash-b"));
        BOOST_TEST(store.set_password_hash("bob", "hash-b2"));
        BOOST_TEST(store.remove("alice"));
        BOOST_TEST(store.create("carol", "hash-c"));
    }
    sqlite_store again(file);
    BOOST_TEST(again.password_hash("bob").value_or("<none>") == "hash-b2");
    BOOST_TEST(again.password_hash("carol").value_or("<none>") == "hash-c");
    BOOST_TEST(!again.password_hash("alice").has_value());
    const std::vector<std::string> expected{"bob", "carol"};
    BOOST_TEST(again.names() == expected);
    BOOST_TEST(again.schema_version() == sqlite_store::schema_version_written());
}

BOOST_AUTO_TEST_CASE(new_database_is_at_the_current_schema_in_wal_mode, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    {
        sqlite_store store(file);
        BOOST_TEST(sqlite_store::schema_version_written() >= 2);
        BOOST_TEST(store.schema_version() == sqlite_store::schema_version_written());
    }
    BOOST_TEST(fs::exists(file));
    raw_db db(file);
    BOOST_TEST(db.scalar("PRAGMA journal_mode").value_or("") == "wal");
    BOOST_TEST(db.scalar("SELECT count(*) FROM schema_version").value_or("") == "1");
}

BOOST_AUTO_TEST_CASE(migrates_a_version_1_database_keeping_its_users, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    build_version_1(file);
    {
        sqlite_store store(file);
        BOOST_TEST(store.schema_version() == sqlite_store::schema_version_written());
        BOOST_TEST(store.password_hash("olduser").value_or("<none>") == "$argon2id$v=19$old-hash");
        const std::vector<std::string> expected{"olduser"};
        BOOST_TEST(store.names() == expected);
        // The migrated table takes writes of the current schema.
        BOOST_TEST(store.create("newuser", "h"));
        BOOST_TEST(store.set_password_hash("olduser", "changed"));
    }
    raw_db db(file);
    BOOST_TEST(db.scalar("SELECT version FROM schema_version").value_or("") ==
               std::to_string(sqlite_store::schema_version_written()));
    BOOST_TEST(db.scalar("SELECT count(*) FROM schema_version").value_or("") == "1");
    // Migration 1 -> 2 added password_changed; the old row got the default and kept its creation time.
    BOOST_TEST(db.scalar("SELECT created FROM users WHERE name = 'olduser'").value_or("") == "1600000000");
    BOOST_TEST(db.scalar("SELECT password_changed FROM users WHERE name = 'newuser'").value_or("0") != "0");
    BOOST_TEST(db.scalar("SELECT password_changed FROM users WHERE name = 'olduser'").value_or("0") != "0");

    // Opening again does not migrate twice.
    sqlite_store again(file);
    BOOST_TEST(again.schema_version() == sqlite_store::schema_version_written());
    BOOST_TEST(again.password_hash("olduser").value_or("<none>") == "changed");
}

BOOST_AUTO_TEST_CASE(migration_leaves_password_changed_zero_for_untouched_rows, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    build_version_1(file);
    { sqlite_store store(file); }
    raw_db db(file);
    BOOST_TEST(db.scalar("SELECT password_changed FROM users WHERE name = 'olduser'").value_or("<none>") == "0");
}

BOOST_AUTO_TEST_CASE(an_identity_changes_generation_with_the_password_and_ends_with_the_user, *utf::timeout(30))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST(store.create("alice", "hash-1"));
    const auto first = store.credentials("alice");
    BOOST_REQUIRE(first.has_value());
    BOOST_TEST(first->first == "hash-1");
    const auto id = first->second.id;
    const auto generation = first->second.generation;
    BOOST_TEST(!first->second.admin);
    BOOST_TEST(store.identity(id).value_or(fxd::services::user_identity{}).generation == generation);

    BOOST_TEST(store.set_password_hash("alice", "hash-2"));
    const auto after = store.identity(id);
    BOOST_REQUIRE(after.has_value());
    BOOST_TEST(after->generation > generation); // every login of hash-1 is now stale
    BOOST_TEST(store.credentials("alice")->second.generation == after->generation);

    BOOST_TEST(store.remove("alice"));
    BOOST_TEST(!store.identity(id).has_value());
    BOOST_TEST(!store.credentials("alice").has_value());
}

BOOST_AUTO_TEST_CASE(a_deleted_users_id_is_never_given_to_a_namesake, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    std::int64_t old_id = 0;
    {
        sqlite_store store(file);
        BOOST_TEST(store.create("alice", "h"));
        BOOST_TEST(store.create("bob", "h"));
        old_id = store.credentials("bob")->second.id;
        BOOST_TEST(store.remove("bob")); // the highest id: plain rowids would hand it out again
    }
    sqlite_store again(file);
    BOOST_TEST(again.create("bob", "h"));
    const auto new_id = again.credentials("bob")->second.id;
    BOOST_TEST(new_id != old_id);
    BOOST_TEST(new_id > old_id);
    BOOST_TEST(!again.identity(old_id).has_value());
}

BOOST_AUTO_TEST_CASE(marks_admins_and_lists_them, *utf::timeout(30))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST(store.create("bob", "h"));
    BOOST_TEST(store.create("alice", "h"));
    BOOST_TEST(store.set_admin("bob", true));
    BOOST_TEST(!store.set_admin("nobody", true));
    const auto id = store.credentials("bob")->second.id;
    BOOST_TEST(store.identity(id)->admin);
    const auto listed = store.entries();
    BOOST_REQUIRE(listed.size() == 2u);
    BOOST_TEST(listed[0].name == "alice");
    BOOST_TEST(!listed[0].admin);
    BOOST_TEST(listed[1].name == "bob");
    BOOST_TEST(listed[1].admin);
    BOOST_TEST(store.set_admin("bob", false));
    BOOST_TEST(!store.identity(id)->admin);
}

BOOST_AUTO_TEST_CASE(migration_to_ids_keeps_users_and_starts_them_as_non_admins, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    build_version_1(file);
    sqlite_store store(file);
    const auto old = store.credentials("olduser");
    BOOST_REQUIRE(old.has_value());
    BOOST_TEST(old->first == "$argon2id$v=19$old-hash");
    BOOST_TEST(old->second.id > 0);
    BOOST_TEST(!old->second.admin);
    BOOST_TEST(store.create("newuser", "h"));
    BOOST_TEST(store.credentials("newuser")->second.id != old->second.id);
}

BOOST_AUTO_TEST_CASE(refuses_a_database_newer_than_it_knows, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    const int newer = sqlite_store::schema_version_written() + 1;
    {
        raw_db db(file);
        db.exec("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                "INSERT INTO schema_version (version) VALUES (" + std::to_string(newer) + ");"
                "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, password_hash TEXT NOT NULL, created INTEGER NOT NULL,"
                " password_changed INTEGER NOT NULL DEFAULT 0, future TEXT) WITHOUT ROWID;"
                "INSERT INTO users (name, password_hash, created) VALUES ('futureuser', 'h', 1);");
    }
    BOOST_CHECK_THROW(sqlite_store{file}, store_error);
    // Nothing was changed by the refused open.
    raw_db db(file);
    BOOST_TEST(db.scalar("SELECT version FROM schema_version").value_or("") == std::to_string(newer));
    BOOST_TEST(db.scalar("SELECT name FROM users").value_or("") == "futureuser");
}

BOOST_AUTO_TEST_CASE(refuses_a_file_that_is_not_a_database, *utf::timeout(30))
{
    temp_dir dir;
    const auto file = dir / "fxd.db";
    {
        std::ofstream out(file, std::ios::binary);
        out << std::string(8192, 'x');
    }
    BOOST_CHECK_THROW(sqlite_store{file}, store_error);
}

BOOST_AUTO_TEST_CASE(refuses_a_folder_it_cannot_create_a_file_in, *utf::timeout(30))
{
    temp_dir dir;
    BOOST_CHECK_THROW(sqlite_store{dir / "missing-folder" / "fxd.db"}, store_error);
}

BOOST_AUTO_TEST_CASE(serves_several_threads_at_once, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    std::vector<std::thread> threads;
    std::vector<int> created(4, 0);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                if (store.create("u" + std::to_string(t) + "-" + std::to_string(i), "h"))
                    ++created[static_cast<std::size_t>(t)];
                store.password_hash("u0-0");
            }
        });
    }
    for (auto& th : threads)
        th.join();
    for (int c : created)
        BOOST_TEST(c == 25);
    BOOST_TEST(store.names().size() == 100u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(accounts_with_argon2id)

BOOST_AUTO_TEST_CASE(registers_then_refuses_the_same_name, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "correct horse") == accounts::outcome::ok));
    BOOST_TEST((acc.register_user("alice", "another password") == accounts::outcome::user_exists));
    BOOST_TEST((acc.verify("alice", "correct horse") == accounts::outcome::ok)); // the first password stays
    BOOST_TEST((acc.verify("alice", "another password") == accounts::outcome::bad_credentials));
}

BOOST_AUTO_TEST_CASE(verify_reports_who_logged_in_as_stored, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "correct horse") == accounts::outcome::ok));
    fxd::services::user_identity who;
    BOOST_TEST((acc.verify("alice", "correct horse", who) == accounts::outcome::ok));
    const auto stored = store.credentials("alice")->second;
    BOOST_TEST(who.id == stored.id);
    BOOST_TEST(who.generation == stored.generation);
    BOOST_TEST((acc.change_password("alice", "battery staple") == accounts::outcome::ok));
    fxd::services::user_identity again;
    BOOST_TEST((acc.verify("alice", "battery staple", again) == accounts::outcome::ok));
    BOOST_TEST(again.id == who.id);
    BOOST_TEST(again.generation != who.generation);
    fxd::services::user_identity untouched;
    BOOST_TEST((acc.verify("alice", "correct horse", untouched) == accounts::outcome::bad_credentials));
    BOOST_TEST(untouched.id == 0); // a failed login learns nothing
}

BOOST_AUTO_TEST_CASE(stores_an_argon2id_string_without_the_password, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    const std::string password = "s3cret-Password-Xyzzy";
    BOOST_TEST((acc.register_user("alice", password) == accounts::outcome::ok));
    BOOST_TEST((acc.register_user("bob", password) == accounts::outcome::ok));
    const auto a = store.password_hash("alice").value_or("");
    const auto b = store.password_hash("bob").value_or("");
    BOOST_TEST_MESSAGE("stored hash: " << a);
    BOOST_TEST(a.starts_with("$argon2id$"));
    BOOST_TEST(a.find(password) == std::string::npos);
    BOOST_TEST(a.find("m=64,t=1,p=1") != std::string::npos); // the configured cost is inside the string
    BOOST_TEST(a != b);                                       // each hash has its own salt
}

BOOST_AUTO_TEST_CASE(verifies_right_and_wrong_passwords_and_unknown_users, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "password-one") == accounts::outcome::ok));
    BOOST_TEST((acc.verify("alice", "password-one") == accounts::outcome::ok));
    BOOST_TEST((acc.verify("alice", "password-onE") == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.verify("alice", "password-one ") == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.verify("alice", "") == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.verify("nobody", "password-one") == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.verify("bob", "") == accounts::outcome::bad_credentials));
}

BOOST_AUTO_TEST_CASE(verifies_a_password_with_a_nul_byte_exactly, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    const std::string with_nul("abcd\0efgh", 9);
    BOOST_TEST((acc.register_user("alice", with_nul) == accounts::outcome::ok));
    BOOST_TEST((acc.verify("alice", with_nul) == accounts::outcome::ok));
    BOOST_TEST((acc.verify("alice", "abcd") == accounts::outcome::bad_credentials));
}

BOOST_AUTO_TEST_CASE(changes_a_password_of_a_known_user_only, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "old-password") == accounts::outcome::ok));
    const auto before = store.password_hash("alice").value_or("");
    BOOST_TEST((acc.change_password("alice", "new-password") == accounts::outcome::ok));
    BOOST_TEST(store.password_hash("alice").value_or("") != before);
    BOOST_TEST((acc.verify("alice", "new-password") == accounts::outcome::ok));
    BOOST_TEST((acc.verify("alice", "old-password") == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.change_password("nobody", "new-password") == accounts::outcome::unknown_user));
    BOOST_TEST(!store.password_hash("nobody").has_value()); // changing did not create
}

BOOST_AUTO_TEST_CASE(removes_a_user_who_then_cannot_log_in, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "password-a") == accounts::outcome::ok));
    BOOST_TEST((acc.register_user("bob", "password-b") == accounts::outcome::ok));
    BOOST_TEST((acc.remove_user("alice") == accounts::outcome::ok));
    BOOST_TEST((acc.remove_user("alice") == accounts::outcome::unknown_user));
    BOOST_TEST((acc.remove_user("nobody") == accounts::outcome::unknown_user));
    BOOST_TEST((acc.verify("alice", "password-a") == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.verify("bob", "password-b") == accounts::outcome::ok));
    BOOST_TEST((acc.register_user("alice", "password-c") == accounts::outcome::ok));
    BOOST_TEST((acc.verify("alice", "password-c") == accounts::outcome::ok));
}

BOOST_AUTO_TEST_CASE(a_token_logs_in_until_it_expires_or_is_revoked, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "correct horse") == accounts::outcome::ok));
    BOOST_TEST((acc.register_user("bob", "correct horse") == accounts::outcome::ok));
    fxd::services::user_identity alice;
    BOOST_REQUIRE((acc.verify("alice", "correct horse", alice) == accounts::outcome::ok));
    const std::int64_t now = 2000000000;
    const auto token = acc.issue_token(alice, now + 100);
    BOOST_TEST(token.size() == 64u); // 256 random bits in hex
    BOOST_TEST(token.find_first_not_of("0123456789abcdef") == std::string::npos);
    BOOST_TEST(acc.issue_token(alice, now + 100) != token);

    fxd::services::user_identity who;
    BOOST_TEST((acc.verify_token("alice", token, now, who) == accounts::outcome::ok));
    BOOST_TEST(who.id == alice.id);
    BOOST_TEST((acc.verify_token("bob", token, now, who) == accounts::outcome::bad_credentials));
    BOOST_TEST((acc.verify_token("alice", token, now + 100, who) == accounts::outcome::bad_credentials)); // expired
    std::string other = token;
    other[0] = other[0] == 'a' ? 'b' : 'a';
    BOOST_TEST((acc.verify_token("alice", other, now, who) == accounts::outcome::bad_credentials));

    // Only the hash is stored.
    raw_db db(dir / "fxd.db");
    BOOST_TEST(db.scalar("SELECT count(*) FROM tokens WHERE hash = '" + token + "'").value_or("") == "0");
    BOOST_TEST(db.scalar("SELECT count(*) FROM tokens WHERE hash = '" + accounts::token_hash(token) + "'").value_or("") == "1");

    BOOST_TEST(acc.revoke_token(token));
    BOOST_TEST(!acc.revoke_token(token));
    BOOST_TEST((acc.verify_token("alice", token, now, who) == accounts::outcome::bad_credentials));
}

BOOST_AUTO_TEST_CASE(a_password_change_or_deletion_revokes_the_users_tokens, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    accounts acc(store, tiny);
    BOOST_TEST((acc.register_user("alice", "correct horse") == accounts::outcome::ok));
    fxd::services::user_identity alice;
    BOOST_REQUIRE((acc.verify("alice", "correct horse", alice) == accounts::outcome::ok));
    const std::int64_t now = 2000000000;
    const auto before = acc.issue_token(alice, now + 1000);
    BOOST_TEST((acc.change_password("alice", "battery staple") == accounts::outcome::ok));
    fxd::services::user_identity who;
    BOOST_TEST((acc.verify_token("alice", before, now, who) == accounts::outcome::bad_credentials));

    // A token of the new generation works until the user is deleted, and not for a namesake.
    BOOST_REQUIRE((acc.verify("alice", "battery staple", alice) == accounts::outcome::ok));
    const auto after = acc.issue_token(alice, now + 1000);
    BOOST_TEST((acc.verify_token("alice", after, now, who) == accounts::outcome::ok));
    BOOST_TEST((acc.remove_user("alice") == accounts::outcome::ok));
    BOOST_TEST((acc.register_user("alice", "correct horse") == accounts::outcome::ok));
    BOOST_TEST((acc.verify_token("alice", after, now, who) == accounts::outcome::bad_credentials));
}

BOOST_AUTO_TEST_CASE(expired_tokens_are_forgotten, *utf::timeout(60))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    BOOST_TEST((accounts(store, tiny).register_user("alice", "correct horse") == accounts::outcome::ok));
    const auto id = store.credentials("alice")->second;
    store.add_token(id.id, id.generation, std::string(64, 'a'), 100);
    store.add_token(id.id, id.generation, std::string(64, 'b'), 200);
    BOOST_TEST(store.remove_expired_tokens(150) == 1u);
    BOOST_TEST(!store.token_identity(std::string(64, 'a'), 0).has_value());
    BOOST_TEST(store.token_identity(std::string(64, 'b'), 150)->first == "alice");
}

BOOST_AUTO_TEST_CASE(hashes_at_the_default_cost_near_owasp, *utf::timeout(120))
{
    temp_dir dir;
    sqlite_store store(dir / "fxd.db");
    const hash_cost defaults{};
    BOOST_TEST(defaults.passes == 2u);
    BOOST_TEST(defaults.memory_bytes == 19u * 1024 * 1024);
    accounts acc(store, defaults);
    const auto start = std::chrono::steady_clock::now();
    const auto h = acc.hash("a password of some length");
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(h.starts_with("$argon2id$"));
    BOOST_TEST(h.find("m=19456,t=2,p=1") != std::string::npos);
    BOOST_TEST_MESSAGE("one Argon2id hash at the default cost (19 MiB, 2 passes, 1 lane): "
                       << static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()) / 1000.0 << " ms");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(login_backoff)

BOOST_AUTO_TEST_CASE(blocks_a_pair_after_max_failures, *utf::timeout(10))
{
    login_limiter lim(limits_of(3, 100));
    BOOST_TEST(!lim.blocked("alice", "10.0.0.1", at(0)));
    lim.record_failure("alice", "10.0.0.1", at(0));
    lim.record_failure("alice", "10.0.0.1", at(1));
    BOOST_TEST(!lim.blocked("alice", "10.0.0.1", at(2)));
    lim.record_failure("alice", "10.0.0.1", at(2));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(3)));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(30)));
}

BOOST_AUTO_TEST_CASE(does_not_block_another_address_or_another_user, *utf::timeout(10))
{
    login_limiter lim(limits_of(3, 100));
    for (int i = 0; i < 3; ++i)
        lim.record_failure("alice", "10.0.0.1", at(i));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(5)));
    BOOST_TEST(!lim.blocked("alice", "10.0.0.2", at(5))); // the user is not locked out everywhere
    BOOST_TEST(!lim.blocked("bob", "10.0.0.1", at(5)));   // nor is the address, below its own limit
    BOOST_TEST(!lim.blocked("alice", "::1", at(5)));
    BOOST_TEST(!lim.blocked("alice1", "0.0.0.1", at(5))); // keys of user and address do not run together
}

BOOST_AUTO_TEST_CASE(blocks_every_user_from_an_address_past_its_limit, *utf::timeout(10))
{
    login_limiter lim(limits_of(100, 4));
    lim.record_failure("u1", "10.0.0.1", at(0));
    lim.record_failure("u2", "10.0.0.1", at(0));
    lim.record_failure("u3", "10.0.0.1", at(1));
    BOOST_TEST(!lim.blocked("bob", "10.0.0.1", at(1)));
    lim.record_failure("u4", "10.0.0.1", at(1));
    BOOST_TEST(lim.blocked("bob", "10.0.0.1", at(2)));
    BOOST_TEST(lim.blocked("u1", "10.0.0.1", at(2)));
    BOOST_TEST(!lim.blocked("bob", "10.0.0.2", at(2)));
    BOOST_TEST(!lim.blocked("u1", "10.0.0.2", at(2)));
}

BOOST_AUTO_TEST_CASE(forgets_failures_once_the_window_passes, *utf::timeout(10))
{
    login_limiter lim(limits_of(3, 5, 60));
    for (int i = 0; i < 5; ++i)
        lim.record_failure("alice", "10.0.0.1", at(i)); // both limits reached
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(10)));
    BOOST_TEST(lim.blocked("bob", "10.0.0.1", at(10)));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(59)));
    // Past the window of the first failure and of the last one alike.
    BOOST_TEST(!lim.blocked("alice", "10.0.0.1", at(65)));
    BOOST_TEST(!lim.blocked("bob", "10.0.0.1", at(65)));
    // A new failure starts a new count rather than adding to the old one.
    lim.record_failure("alice", "10.0.0.1", at(70));
    BOOST_TEST(!lim.blocked("alice", "10.0.0.1", at(71)));
    lim.record_failure("alice", "10.0.0.1", at(71));
    lim.record_failure("alice", "10.0.0.1", at(72));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(73)));
}

BOOST_AUTO_TEST_CASE(success_clears_that_pair_only, *utf::timeout(10))
{
    login_limiter lim(limits_of(3, 6));
    lim.record_failure("alice", "10.0.0.1", at(0));
    lim.record_failure("alice", "10.0.0.1", at(1));
    lim.record_failure("bob", "10.0.0.1", at(1));
    lim.record_failure("bob", "10.0.0.1", at(1));
    lim.record_success("alice", "10.0.0.1");
    // alice's pair starts over: two more failures do not block her.
    lim.record_failure("alice", "10.0.0.1", at(2));
    BOOST_TEST(!lim.blocked("alice", "10.0.0.1", at(3)));
    // bob's pair was not cleared: one more failure reaches his limit.
    lim.record_failure("bob", "10.0.0.1", at(3));
    BOOST_TEST(lim.blocked("bob", "10.0.0.1", at(4)));
    // The address count was not cleared either: 6 failures from it, its limit.
    BOOST_TEST(lim.blocked("carol", "10.0.0.1", at(4)));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(4)));
}

BOOST_AUTO_TEST_CASE(success_from_another_address_does_not_clear_the_pair, *utf::timeout(10))
{
    login_limiter lim(limits_of(2, 100));
    lim.record_failure("alice", "10.0.0.1", at(0));
    lim.record_failure("alice", "10.0.0.1", at(0));
    lim.record_success("alice", "10.0.0.2");
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(1)));
}

BOOST_AUTO_TEST_CASE(stays_bounded_under_a_flood_of_user_names, *utf::timeout(30))
{
    const std::size_t bound = 64;
    login_limiter lim(limits_of(3, 1000000, 60, bound));
    std::size_t most = 0;
    for (int i = 0; i < 10000; ++i) {
        lim.record_failure("user" + std::to_string(i), "10.0.0.1", at(i % 50));
        most = std::max(most, lim.tracked());
    }
    BOOST_TEST_MESSAGE("most entries tracked under a flood of 10000 names: " << most << " (max_tracked " << bound << ")");
    BOOST_TEST(most <= bound + 2);
    // The per-address guard is kept through the flood.
    login_limiter strict(limits_of(3, 500, 60, bound));
    for (int i = 0; i < 500; ++i)
        strict.record_failure("user" + std::to_string(i), "10.0.0.1", at(1));
    BOOST_TEST(strict.blocked("anyone", "10.0.0.1", at(2)));
    BOOST_TEST(!strict.blocked("anyone", "10.0.0.2", at(2)));
}

BOOST_AUTO_TEST_CASE(stays_bounded_under_a_flood_of_source_addresses, *utf::timeout(30))
{
    const std::size_t bound = 64;
    login_limiter lim(limits_of(3, 50, 60, bound));
    std::size_t most = 0;
    for (int i = 0; i < 10000; ++i) {
        lim.record_failure("alice", "2001:db8::" + std::to_string(i), at(i % 50));
        most = std::max(most, lim.tracked());
    }
    BOOST_TEST_MESSAGE("most entries tracked under a flood of 10000 addresses: " << most << " (max_tracked " << bound
                                                                                  << ")");
    BOOST_TEST(most <= bound + 2);
}

BOOST_AUTO_TEST_CASE(expired_entries_are_pruned_when_full, *utf::timeout(10))
{
    const std::size_t bound = 10;
    login_limiter lim(limits_of(2, 50, 60, bound));
    for (int i = 0; i < 5; ++i)
        lim.record_failure("u" + std::to_string(i), "10.0.0." + std::to_string(i), at(0));
    BOOST_TEST(lim.tracked() == 10u);
    // Long after the window, a new failure makes room by dropping only the stale entries.
    lim.record_failure("alice", "10.0.1.1", at(1000));
    lim.record_failure("alice", "10.0.1.1", at(1001));
    BOOST_TEST(lim.tracked() == 2u);
    BOOST_TEST(lim.blocked("alice", "10.0.1.1", at(1002))); // and the live pair kept counting
}

BOOST_AUTO_TEST_CASE(attempts_in_flight_count_against_the_limits, *utf::timeout(10))
{
    using verdict = login_limiter::verdict;
    using result = login_limiter::result;
    login_limiter lim(limits_of(3, 4));
    // Three guesses at once use up the pair's three: a fourth waits for their results.
    for (int i = 0; i < 3; ++i)
        BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(0)) == verdict::check));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(0)) == verdict::wait));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.2", at(0)) == verdict::check)); // another address
    BOOST_TEST((lim.begin_attempt("bob", "10.0.0.1", at(0)) == verdict::check));   // the address's 4th
    // All three wrong: now it is refused, as after three sequential failures.
    for (int i = 0; i < 3; ++i)
        lim.end_attempt("alice", "10.0.0.1", result::failed, at(1));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(1)) == verdict::refuse));
    BOOST_TEST(lim.blocked("alice", "10.0.0.1", at(1)));
    // 3 failures and bob's attempt in flight fill the address's 4; his success frees a place.
    BOOST_TEST((lim.begin_attempt("carol", "10.0.0.1", at(1)) == verdict::wait));
    lim.end_attempt("bob", "10.0.0.1", result::succeeded, at(2));
    BOOST_TEST((lim.begin_attempt("carol", "10.0.0.1", at(2)) == verdict::check));
    lim.end_attempt("carol", "10.0.0.1", result::abandoned, at(2)); // busy: counts as nothing
    BOOST_TEST(!lim.blocked("carol", "10.0.0.1", at(2)));
    BOOST_TEST(!lim.blocked("dave", "10.0.0.1", at(2)));
}

BOOST_AUTO_TEST_CASE(a_success_in_flight_clears_the_pair_and_lets_the_waiters_through, *utf::timeout(10))
{
    using verdict = login_limiter::verdict;
    using result = login_limiter::result;
    login_limiter lim(limits_of(2, 50));
    lim.record_failure("alice", "10.0.0.1", at(0));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(0)) == verdict::check));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(0)) == verdict::wait));
    lim.end_attempt("alice", "10.0.0.1", result::succeeded, at(1));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(1)) == verdict::check));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(1)) == verdict::check));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(1)) == verdict::wait));
    // A window that passes while attempts are in flight forgets the failures, not the attempts.
    lim.end_attempt("alice", "10.0.0.1", result::failed, at(2));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(100)) == verdict::check));
    BOOST_TEST((lim.begin_attempt("alice", "10.0.0.1", at(100)) == verdict::wait));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(registration_limit)

register_limiter::limits reg_limits(std::uint32_t per_source, int window_s = 3600, std::size_t max_tracked = 100000)
{
    register_limiter::limits l;
    l.max_per_address = per_source;
    l.window = std::chrono::seconds(window_s);
    l.max_tracked = max_tracked;
    return l;
}

BOOST_AUTO_TEST_CASE(blocks_a_source_past_its_registrations_until_the_window_passes, *utf::timeout(10))
{
    register_limiter lim(reg_limits(3, 60));
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(!lim.blocked("10.0.0.1", at(i)));
        lim.record("10.0.0.1", at(i));
    }
    BOOST_TEST(lim.blocked("10.0.0.1", at(3)));
    BOOST_TEST(lim.blocked("10.0.0.1", at(59)));
    BOOST_TEST(!lim.blocked("10.0.0.2", at(3)));
    BOOST_TEST(!lim.blocked("10.0.0.1", at(60))); // the window of the first one passed
    lim.record("10.0.0.1", at(60));               // and a new one starts
    BOOST_TEST(!lim.blocked("10.0.0.1", at(61)));
}

BOOST_AUTO_TEST_CASE(stays_bounded_under_a_flood_of_sources, *utf::timeout(10))
{
    const std::size_t bound = 64;
    register_limiter lim(reg_limits(2, 3600, bound));
    std::size_t most = 0;
    for (int i = 0; i < 10000; ++i) {
        lim.record("2001:db8:" + std::to_string(i) + "::/64", at(i % 50));
        most = std::max(most, lim.tracked());
    }
    BOOST_TEST(most <= bound);
}

BOOST_AUTO_TEST_SUITE_END()
