// The PostgreSQL store on a real server (scripts/lib/postgres.sh), below the
// daemon: the same catalog and account rules as the SQLite store, plus what
// only a shared database has: locks between instances, the liveness of the
// instances that own uploads, the shared limiter counts, transactions for
// tools, and `store_unavailable` while the server is down.

#include "postgres_server.hpp"

#include <fxd/services/pg_store.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using fxd::services::database_options;
using fxd::services::pg_store;
using fxd::services::store_unavailable;
using fxd::services::upload_record;
namespace utf = boost::unit_test;

namespace {

const std::string sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// One server for the whole program: starting one takes seconds.
fxd::test::postgres_server& server()
{
    static fxd::test::postgres_server instance;
    return instance;
}

database_options options_for(const std::string& url)
{
    database_options o;
    o.url = url;
    o.pool_size = 3;
    o.connect_timeout_s = 3;
    return o;
}

std::vector<std::string> blobs_of(const std::vector<upload_record>& uploads)
{
    std::vector<std::string> blobs;
    for (const auto& u : uploads)
        blobs.push_back(u.blob);
    std::sort(blobs.begin(), blobs.end());
    return blobs;
}

} // namespace

BOOST_AUTO_TEST_SUITE(pg_store_rules)

BOOST_AUTO_TEST_CASE(accounts_keep_ids_generations_and_admin_flags, *utf::timeout(60))
{
    pg_store db(options_for(server().fresh_database()));
    BOOST_TEST(db.schema_version() == db.current_schema_version());
    BOOST_TEST(db.create("bob", "hash-b"));
    BOOST_TEST(db.create("alice", "hash-a"));
    BOOST_TEST(!db.create("alice", "other")); // taken
    BOOST_TEST(db.names() == (std::vector<std::string>{"alice", "bob"}), boost::test_tools::per_element());

    const auto first = db.credentials("alice");
    BOOST_TEST_REQUIRE(first.has_value());
    BOOST_TEST(first->first == "hash-a");
    BOOST_TEST(!first->second.admin);
    BOOST_TEST(db.set_password_hash("alice", "hash-a2"));
    const auto changed = db.identity(first->second.id);
    BOOST_TEST_REQUIRE(changed.has_value());
    BOOST_TEST(changed->generation == first->second.generation + 1); // ends the old logins
    BOOST_TEST(db.set_admin("alice", true));
    BOOST_TEST(db.identity(first->second.id)->admin);
    BOOST_TEST(!db.set_admin("carol", true));

    BOOST_TEST(db.remove("alice"));
    BOOST_TEST(!db.identity(first->second.id).has_value());
    BOOST_TEST(db.create("alice", "hash-new"));
    BOOST_TEST(db.credentials("alice")->second.id != first->second.id); // ids are never given again
}

BOOST_AUTO_TEST_CASE(remembered_logins_end_with_a_password_change_expiry_or_removal, *utf::timeout(60))
{
    pg_store db(options_for(server().fresh_database()));
    BOOST_TEST(db.create("alice", "hash"));
    const auto who = db.credentials("alice")->second;
    db.add_token(who.id, who.generation, "token-1", 2000);
    db.add_token(who.id, who.generation, "token-2", 1000);
    BOOST_TEST(db.token_identity("token-1", 1500)->first == "alice");
    BOOST_TEST(!db.token_identity("token-2", 1500).has_value()); // expired
    BOOST_TEST(!db.token_identity("unknown", 1500).has_value());
    BOOST_TEST(db.remove_expired_tokens(1500) == 1u);
    BOOST_TEST(db.set_password_hash("alice", "hash-2"));
    BOOST_TEST(!db.token_identity("token-1", 1500).has_value()); // revoked by the new generation
    const auto now = db.credentials("alice")->second;
    db.add_token(now.id, now.generation, "token-3", 2000);
    BOOST_TEST(db.remove_token("token-3"));
    BOOST_TEST(!db.remove_token("token-3"));
    db.add_token(now.id, now.generation, "token-4", 2000);
    BOOST_TEST(db.remove("alice"));
    BOOST_TEST(!db.token_identity("token-4", 1500).has_value());
}

BOOST_AUTO_TEST_CASE(the_catalog_sorts_by_bytes_and_its_multi_row_changes_are_whole, *utf::timeout(60))
{
    pg_store db(options_for(server().fresh_database()));
    db.put_file("alice", {"b.txt", 3, sha_abc, 100});
    db.put_file("alice", {"B.txt", 5, sha_abc, 101});
    db.put_file("alice", {"a.txt", 0, sha_abc, 102});
    db.put_file("alice", {"é.txt", 1, sha_abc, 103});
    std::vector<std::string> names;
    for (const auto& f : db.list_files("alice"))
        names.push_back(f.name);
    BOOST_TEST(names == (std::vector<std::string>{"B.txt", "a.txt", "b.txt", "é.txt"}), boost::test_tools::per_element());
    BOOST_TEST(db.bytes_used("alice") == 9u);

    db.put_partial("alice", {"big.bin", 100, 40, ".blob-p", 5});
    db.begin_upload({".blob-u", "alice", "big.bin", 100, ""});
    const auto usage = db.usage("alice");
    BOOST_TEST(usage.files == 4u);
    BOOST_TEST(usage.partial_bytes == 40u);
    BOOST_TEST(usage.upload_bytes == 100u);

    // Published: the file's row, no upload, no partial of the name.
    db.publish({".blob-u", "alice", "big.bin", 100, ""}, {"big.bin", 100, sha_abc, 7});
    BOOST_TEST(db.find_file("alice", "big.bin")->size == 100u);
    BOOST_TEST(!db.find_partial("alice", "big.bin").has_value());
    BOOST_TEST(db.uploads().empty());

    // Kept as a partial: the upload's row turns into the partial.
    db.begin_upload({".blob-v", "alice", "v.bin", 50, ""});
    db.upload_to_partial(".blob-v", "alice", {"v.bin", 50, 20, ".blob-v", 8});
    BOOST_TEST(db.find_partial("alice", "v.bin")->bytes == 20u);
    BOOST_TEST(db.uploads().empty());

    db.remove_user_files("alice");
    BOOST_TEST(db.list_files("alice").empty());
    BOOST_TEST(db.all_partials().empty());
}

BOOST_AUTO_TEST_CASE(a_transaction_that_fails_leaves_nothing_behind, *utf::timeout(60))
{
    pg_store db(options_for(server().fresh_database()));
    BOOST_CHECK_THROW(db.atomically([&] {
        db.create("alice", "hash");
        db.put_file("alice", {"a.txt", 3, sha_abc, 1});
        throw std::runtime_error("cut off mid-way");
    }),
                      std::runtime_error);
    BOOST_TEST(db.names().empty());
    BOOST_TEST(db.list_files("alice").empty());
    db.atomically([&] { db.create("alice", "hash"); });
    BOOST_TEST(db.names().size() == 1u);
    // A change that is itself a transaction joins the outer one instead of
    // committing it early.
    BOOST_CHECK_THROW(db.atomically([&] {
        db.set_password_hash("alice", "hash-2");
        db.remove_user_files("alice");
        throw std::runtime_error("cut off after two transactional changes");
    }),
                      std::runtime_error);
    BOOST_TEST(db.credentials("alice")->first == "hash");
}

BOOST_AUTO_TEST_CASE(shared_counts_run_in_windows_and_clear, *utf::timeout(60))
{
    const auto url = server().fresh_database();
    pg_store one(options_for(url));
    pg_store two(options_for(url)); // another instance: the counts are one
    BOOST_TEST(one.add_event("k", 1000, 60) == 1u);
    BOOST_TEST(two.add_event("k", 1010, 60) == 2u);
    BOOST_TEST(one.events("k", 1059, 60) == 2u);
    BOOST_TEST(two.events("k", 1060, 60) == 0u); // the window that began at 1000 has ended
    BOOST_TEST(one.add_event("k", 1061, 60) == 1u); // a new window
    BOOST_TEST(two.events("other", 1061, 60) == 0u);
    two.clear_events("k");
    BOOST_TEST(one.events("k", 1062, 60) == 0u);
}

BOOST_AUTO_TEST_CASE(an_exclusive_section_keeps_other_instances_out_of_that_key_only, *utf::timeout(120))
{
    const auto url = server().fresh_database();
    pg_store one(options_for(url));
    pg_store two(options_for(url));
    std::promise<void> entered;
    std::promise<void> other_key_done;
    std::atomic<bool> first_done{false};
    std::thread holder([&] {
        one.exclusive("name/alice/a.txt", [&] {
            // Calls inside use the locked connection (no second one needed).
            one.put_file("alice", {"a.txt", 3, sha_abc, 1});
            entered.set_value();
            // If another key were blocked too, this wait would never end.
            other_key_done.get_future().wait();
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            first_done = true;
        });
    });
    entered.get_future().wait();
    two.exclusive("name/alice/b.txt", [] {});
    other_key_done.set_value();
    bool saw_first_done = false;
    two.exclusive("name/alice/a.txt", [&] { saw_first_done = first_done.load(); });
    holder.join();
    BOOST_TEST(saw_first_done); // it could only get in once the first had left
    BOOST_TEST(two.find_file("alice", "a.txt").has_value());
}

BOOST_AUTO_TEST_CASE(a_dead_instances_uploads_become_recoverable_at_the_second_look, *utf::timeout(120))
{
    const auto url = server().fresh_database();
    pg_store survivor(options_for(url));
    survivor.begin_upload({".blob-mine", "alice", "mine.bin", 10, ""});
    auto doomed = std::make_unique<pg_store>(options_for(url));
    doomed->begin_upload({".blob-theirs", "alice", "theirs.bin", 10, ""});

    // Alive: its uploads are its own.
    BOOST_TEST(blobs_of(survivor.recoverable_uploads()) == (std::vector<std::string>{".blob-mine"}),
               boost::test_tools::per_element());
    BOOST_TEST(blobs_of(survivor.recoverable_uploads()) == (std::vector<std::string>{".blob-mine"}),
               boost::test_tools::per_element());

    doomed.reset(); // its connections close, its liveness lock with them
    // The first look that finds its lock free only suspects it (a live
    // instance may be retaking its lock): never the first look after.
    int looks = 0;
    std::vector<std::string> found;
    while (looks < 50 && found.size() < 2) {
        ++looks;
        found = blobs_of(survivor.recoverable_uploads());
        if (found.size() < 2)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    BOOST_TEST(found == (std::vector<std::string>{".blob-mine", ".blob-theirs"}), boost::test_tools::per_element());
    BOOST_TEST(looks >= 2);
}

BOOST_AUTO_TEST_CASE(instances_starting_together_migrate_once, *utf::timeout(120))
{
    const auto url = server().fresh_database();
    std::vector<std::future<int>> opened;
    for (int i = 0; i < 3; ++i)
        opened.push_back(std::async(std::launch::async, [&] { return pg_store(options_for(url)).schema_version(); }));
    const int want = pg_store(options_for(url)).current_schema_version();
    for (auto& f : opened)
        BOOST_TEST(f.get() == want);
}

BOOST_AUTO_TEST_CASE(a_stopped_server_means_unavailable_and_a_restarted_one_is_used_again, *utf::timeout(180))
{
    pg_store db(options_for(server().fresh_database()));
    BOOST_TEST(db.create("alice", "hash"));
    server().stop();
    BOOST_CHECK_THROW(db.credentials("alice"), store_unavailable);
    BOOST_CHECK_THROW(db.list_files("alice"), store_unavailable);
    server().start();
    // The pool may wait out its backoff once; then it connects again by itself.
    std::optional<std::pair<std::string, fxd::services::user_identity>> back;
    for (int attempt = 0; attempt < 100 && !back; ++attempt) {
        try {
            back = db.credentials("alice");
        } catch (const store_unavailable&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->first == "hash");
}

BOOST_AUTO_TEST_SUITE_END()
