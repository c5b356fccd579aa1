// Storage below the wire, on a temporary folder and database, without the
// daemon: the SQLite store as the file catalog (files, partials, uploads and
// their transactions), and local_files' crash repair and partial expiry.
// Expected digests are published SHA-256 values, not computed here.

#include "temp_dir.hpp"

#include <fxd/services/file_catalog.hpp>
#include <fxd/services/files.hpp>
#include <fxd/services/sqlite_store.hpp>

#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using fxd::services::file_catalog;
using fxd::services::file_record;
using fxd::services::local_files;
using fxd::services::partial_record;
using fxd::services::sqlite_store;
using fxd::services::upload_record;
using fxd::test::temp_dir;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace {

// SHA-256 of "abc" (FIPS 180-2 example), of "" and of "hello".
const std::string sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string sha_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string sha_hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// A storage folder as the daemon lays it out (users/USER/NAME) with its database.
struct storage {
    temp_dir dir;
    sqlite_store store{dir / "fxd.db"};
    file_catalog& catalog = store;

    fs::path folder(std::string_view user) const { return dir / "users" / std::string(user); }

    void write(std::string_view user, std::string_view name, std::string_view bytes) const
    {
        fs::create_directories(folder(user));
        std::ofstream out(folder(user) / std::string(name), std::ios::binary | std::ios::trunc);
        out << bytes;
        BOOST_REQUIRE(out.good());
    }
    std::string read(std::string_view user, std::string_view name) const
    {
        std::ifstream in(folder(user) / std::string(name), std::ios::binary);
        return {std::istreambuf_iterator<char>(in), {}};
    }
    bool exists(std::string_view user, std::string_view name) const
    {
        return fs::exists(folder(user) / std::string(name));
    }
};

std::vector<std::string> names_of(const std::vector<file_record>& files)
{
    std::vector<std::string> names;
    for (const auto& f : files)
        names.push_back(f.name);
    return names;
}

/// True when one of the repair's log lines holds every needle.
bool reported(const std::vector<std::string>& lines, std::initializer_list<std::string_view> needles)
{
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
        return std::all_of(needles.begin(), needles.end(),
                           [&](std::string_view n) { return line.find(n) != std::string::npos; });
    });
}

std::string joined(const std::vector<std::string>& lines)
{
    std::string all;
    for (const auto& l : lines)
        all += l + "\n";
    return all;
}

} // namespace

BOOST_AUTO_TEST_SUITE(catalog)

BOOST_AUTO_TEST_CASE(files_are_put_found_listed_by_name_in_byte_order_counted_and_removed, *utf::timeout(30))
{
    storage s;
    s.catalog.put_file("alice", {"b.txt", 3, sha_abc, 100});
    s.catalog.put_file("alice", {"B.txt", 5, sha_hello, 101});
    s.catalog.put_file("alice", {"a.txt", 0, sha_empty, 102});
    s.catalog.put_file("bob", {"b.txt", 7, sha_abc, 103});

    const auto found = s.catalog.find_file("alice", "b.txt");
    BOOST_TEST_REQUIRE(found.has_value());
    BOOST_TEST(found->size == 3u);
    BOOST_TEST(found->sha256 == sha_abc);
    BOOST_TEST(found->mtime == 100);
    BOOST_TEST(!s.catalog.find_file("alice", "missing").has_value());
    BOOST_TEST(!s.catalog.find_file("carol", "b.txt").has_value());

    const std::vector<std::string> order{"B.txt", "a.txt", "b.txt"};
    BOOST_TEST(names_of(s.catalog.list_files("alice")) == order, boost::test_tools::per_element());
    BOOST_TEST(s.catalog.bytes_used("alice") == 8u);
    BOOST_TEST(s.catalog.bytes_used("bob") == 7u);
    BOOST_TEST(s.catalog.bytes_used_total() == 15u);

    // Putting a name again replaces its row.
    s.catalog.put_file("alice", {"b.txt", 5, sha_hello, 200});
    BOOST_TEST(s.catalog.find_file("alice", "b.txt")->sha256 == sha_hello);
    BOOST_TEST(s.catalog.list_files("alice").size() == 3u);
    BOOST_TEST(s.catalog.bytes_used("alice") == 10u);

    BOOST_TEST(s.catalog.remove_file("alice", "b.txt"));
    BOOST_TEST(!s.catalog.remove_file("alice", "b.txt"));
    BOOST_TEST(!s.catalog.find_file("alice", "b.txt").has_value());
    BOOST_TEST(s.catalog.find_file("bob", "b.txt").has_value());
    auto users = s.catalog.users_with_files();
    std::sort(users.begin(), users.end());
    BOOST_TEST(users == (std::vector<std::string>{"alice", "bob"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(usage_counts_files_partials_and_uploads_in_progress_of_one_user, *utf::timeout(30))
{
    storage s;
    s.catalog.put_file("alice", {"a.txt", 3, sha_abc, 1});
    s.catalog.put_file("alice", {"b.txt", 5, sha_hello, 1});
    s.catalog.put_partial("alice", {"p.bin", 100, 40, ".blob-p", 1});
    s.catalog.begin_upload({".blob-u", "alice", "u.bin", 70, ""});
    s.catalog.put_file("bob", {"x.txt", 1000, sha_abc, 1});
    const auto u = s.catalog.usage("alice");
    BOOST_TEST(u.files == 2u);
    BOOST_TEST(u.file_bytes == 8u);
    BOOST_TEST(u.partials == 1u);
    BOOST_TEST(u.partial_bytes == 40u);
    BOOST_TEST(u.uploads == 1u);
    BOOST_TEST(u.upload_bytes == 70u);
    const auto none = s.catalog.usage("carol");
    BOOST_TEST(none.files + none.file_bytes + none.partials + none.partial_bytes + none.uploads + none.upload_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(an_upload_in_progress_holds_its_size_against_the_quota_until_it_ends, *utf::timeout(30))
{
    storage s;
    local_files files(s.dir.path(), s.catalog);
    const local_files::limits limits{100, 0};
    auto first = files.begin_upload("alice", "one.bin", 60, 0, limits);
    BOOST_TEST_REQUIRE((first.status == fxd::services::file_status::ok));
    // Nothing of the first is written yet; its reservation alone refuses the second.
    BOOST_TEST((files.begin_upload("alice", "two.bin", 60, 0, limits).status == fxd::services::file_status::quota_exceeded));
    BOOST_TEST((files.begin_upload("bob", "two.bin", 60, 0, limits).status == fxd::services::file_status::ok));
    files.discard(*first.up); // ended: the room is free again
    auto again = files.begin_upload("alice", "two.bin", 60, 0, limits);
    BOOST_TEST((again.status == fxd::services::file_status::ok));
}

BOOST_AUTO_TEST_CASE(the_catalog_survives_closing_and_reopening_the_database, *utf::timeout(30))
{
    temp_dir dir;
    {
        sqlite_store store(dir / "fxd.db");
        store.put_file("alice", {"kept.txt", 3, sha_abc, 42});
        store.put_partial("alice", {"half.bin", 100, 40, ".blob-half", 43});
        store.begin_upload({".blob-up", "alice", "up.bin", 9, ""});
    }
    sqlite_store again(dir / "fxd.db");
    BOOST_TEST(again.find_file("alice", "kept.txt").has_value());
    BOOST_TEST(again.find_partial("alice", "half.bin").has_value());
    BOOST_TEST(again.uploads().size() == 1u);
}

BOOST_AUTO_TEST_CASE(partials_are_put_replaced_counted_expired_by_age_and_removed, *utf::timeout(30))
{
    storage s;
    s.catalog.put_partial("alice", {"old.bin", 100, 10, ".blob-old", 1000});
    s.catalog.put_partial("alice", {"new.bin", 200, 20, ".blob-new", 5000});
    s.catalog.put_partial("bob", {"old.bin", 300, 30, ".blob-bob", 999});
    BOOST_TEST(s.catalog.partial_count() == 3u);

    const auto p = s.catalog.find_partial("alice", "new.bin");
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->size == 200u);
    BOOST_TEST(p->bytes == 20u);
    BOOST_TEST(p->blob == ".blob-new");
    BOOST_TEST(p->mtime == 5000);

    s.catalog.put_partial("alice", {"new.bin", 200, 60, ".blob-new", 6000});
    BOOST_TEST(s.catalog.find_partial("alice", "new.bin")->bytes == 60u);
    BOOST_TEST(s.catalog.partial_count() == 3u);

    // Strictly older than the given time; every user.
    auto old = s.catalog.partials_older_than(1000);
    BOOST_TEST_REQUIRE(old.size() == 1u);
    BOOST_TEST(old[0].first == "bob");
    old = s.catalog.partials_older_than(1001);
    BOOST_TEST(old.size() == 2u);
    BOOST_TEST(s.catalog.all_partials().size() == 3u);

    // Partials are not files: no bytes used, no listing.
    BOOST_TEST(s.catalog.list_files("alice").empty());
    BOOST_TEST(s.catalog.bytes_used("alice") == 0u);

    BOOST_TEST(s.catalog.remove_partial("alice", "old.bin"));
    BOOST_TEST(!s.catalog.remove_partial("alice", "old.bin"));
    BOOST_TEST(s.catalog.partial_count() == 2u);
}

BOOST_AUTO_TEST_CASE(publish_writes_the_file_and_drops_the_upload_and_the_partial_of_its_name, *utf::timeout(30))
{
    storage s;
    s.catalog.put_partial("alice", {"doc.txt", 3, 1, ".blob-partial", 10});
    s.catalog.put_partial("alice", {"other.txt", 3, 1, ".blob-other", 10});
    const upload_record up{".blob-up", "alice", "doc.txt", 3, ""};
    s.catalog.begin_upload(up);
    BOOST_TEST_REQUIRE(s.catalog.uploads().size() == 1u);
    BOOST_TEST(s.catalog.uploads()[0].sha256.empty());

    s.catalog.publish(up, {"doc.txt", 3, sha_abc, 20});
    BOOST_TEST(s.catalog.uploads().empty());
    BOOST_TEST(!s.catalog.find_partial("alice", "doc.txt").has_value());
    BOOST_TEST(s.catalog.find_partial("alice", "other.txt").has_value());
    const auto f = s.catalog.find_file("alice", "doc.txt");
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(f->sha256 == sha_abc);
    BOOST_TEST(f->size == 3u);
}

BOOST_AUTO_TEST_CASE(prepare_publish_marks_the_upload_with_its_sha256_and_writes_the_file_row, *utf::timeout(30))
{
    storage s;
    s.catalog.put_partial("alice", {"doc.txt", 3, 1, ".blob-partial", 10});
    const upload_record up{".blob-up", "alice", "doc.txt", 3, ""};
    s.catalog.begin_upload(up);
    s.catalog.prepare_publish(up, {"doc.txt", 3, sha_abc, 20});

    const auto uploads = s.catalog.uploads();
    BOOST_TEST_REQUIRE(uploads.size() == 1u);
    BOOST_TEST(uploads[0].blob == ".blob-up");
    BOOST_TEST(uploads[0].sha256 == sha_abc);
    BOOST_TEST(s.catalog.find_file("alice", "doc.txt").has_value());
    BOOST_TEST(!s.catalog.find_partial("alice", "doc.txt").has_value());

    // After the rename, drop_upload ends it.
    s.catalog.drop_upload(".blob-up");
    BOOST_TEST(s.catalog.uploads().empty());
    BOOST_TEST(s.catalog.find_file("alice", "doc.txt").has_value());
}

BOOST_AUTO_TEST_CASE(upload_to_partial_turns_the_upload_into_the_partial_of_its_name, *utf::timeout(30))
{
    storage s;
    s.catalog.put_partial("alice", {"big.bin", 100, 10, ".blob-older", 10});
    s.catalog.begin_upload({".blob-up", "alice", "big.bin", 100, ""});
    s.catalog.begin_upload({".blob-another", "alice", "else.bin", 5, ""});

    s.catalog.upload_to_partial(".blob-up", "alice", {"big.bin", 100, 64, ".blob-up", 20});
    const auto uploads = s.catalog.uploads();
    BOOST_TEST_REQUIRE(uploads.size() == 1u);
    BOOST_TEST(uploads[0].blob == ".blob-another");
    const auto p = s.catalog.find_partial("alice", "big.bin");
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->blob == ".blob-up");
    BOOST_TEST(p->bytes == 64u);
    BOOST_TEST(s.catalog.partial_count() == 1u);
    BOOST_TEST(!s.catalog.find_file("alice", "big.bin").has_value());
}

BOOST_AUTO_TEST_CASE(remove_user_files_forgets_files_partials_and_uploads_of_that_user_only, *utf::timeout(30))
{
    storage s;
    for (const auto* user : {"alice", "bob"}) {
        s.catalog.put_file(user, {"f.txt", 3, sha_abc, 1});
        s.catalog.put_partial(user, {"p.bin", 9, 4, std::string(".blob-p-") + user, 1});
        s.catalog.begin_upload({std::string(".blob-u-") + user, user, "u.bin", 9, ""});
    }
    s.catalog.remove_user_files("alice");
    BOOST_TEST(s.catalog.list_files("alice").empty());
    BOOST_TEST(!s.catalog.find_partial("alice", "p.bin").has_value());
    BOOST_TEST(s.catalog.list_files("bob").size() == 1u);
    BOOST_TEST(s.catalog.find_partial("bob", "p.bin").has_value());
    const auto uploads = s.catalog.uploads();
    BOOST_TEST_REQUIRE(uploads.size() == 1u);
    BOOST_TEST(uploads[0].user == "bob");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(repair)

BOOST_AUTO_TEST_CASE(nothing_to_repair_reports_nothing_and_changes_nothing, *utf::timeout(30))
{
    storage s;
    s.write("alice", "a.txt", "abc");
    s.catalog.put_file("alice", {"a.txt", 3, sha_abc, 7});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(lines.empty(), joined(lines));
    BOOST_TEST(s.catalog.find_file("alice", "a.txt")->mtime == 7);
}

BOOST_AUTO_TEST_CASE(a_listed_file_whose_bytes_are_gone_is_forgotten, *utf::timeout(30))
{
    storage s;
    s.write("alice", "kept.txt", "abc");
    s.catalog.put_file("alice", {"kept.txt", 3, sha_abc, 1});
    s.catalog.put_file("alice", {"gone.txt", 5, sha_hello, 1});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"forgot", "gone.txt", "alice"}), joined(lines));
    BOOST_TEST(!s.catalog.find_file("alice", "gone.txt").has_value());
    BOOST_TEST(s.catalog.find_file("alice", "kept.txt").has_value());
}

BOOST_AUTO_TEST_CASE(a_file_whose_size_changed_is_re_hashed_from_its_bytes, *utf::timeout(30))
{
    storage s;
    s.write("alice", "doc.txt", "hello");
    s.catalog.put_file("alice", {"doc.txt", 3, sha_abc, 1});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"re-hashed", "doc.txt"}), joined(lines));
    const auto f = s.catalog.find_file("alice", "doc.txt");
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(f->size == 5u);
    BOOST_TEST(f->sha256 == sha_hello);
    BOOST_TEST(s.catalog.bytes_used("alice") == 5u);
}

BOOST_AUTO_TEST_CASE(a_file_found_in_the_folder_only_is_listed_with_its_size_and_sha256, *utf::timeout(30))
{
    storage s;
    s.write("carol", "found.txt", "abc");
    s.write("carol", "empty.txt", "");
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"listed", "found.txt", "carol"}), joined(lines));
    const auto f = s.catalog.find_file("carol", "found.txt");
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(f->size == 3u);
    BOOST_TEST(f->sha256 == sha_abc);
    const auto e = s.catalog.find_file("carol", "empty.txt");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->sha256 == sha_empty);
}

BOOST_AUTO_TEST_CASE(a_leftover_temporary_blob_is_removed_and_a_partials_blob_is_kept, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-leftover", "stray bytes");
    s.write("alice", ".blob-partial", "abc");
    s.catalog.put_partial("alice", {"half.bin", 10, 3, ".blob-partial", 1});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"removed a leftover temporary file", "alice"}), joined(lines));
    BOOST_TEST(!s.exists("alice", ".blob-leftover"));
    BOOST_TEST(s.exists("alice", ".blob-partial"));
    BOOST_TEST(s.catalog.find_partial("alice", "half.bin").has_value());
    BOOST_TEST(s.catalog.list_files("alice").empty(), "a blob must never be listed as a file");
}

BOOST_AUTO_TEST_CASE(a_partial_whose_bytes_are_gone_is_forgotten_and_a_short_one_corrected, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-short", "ab");
    s.catalog.put_partial("alice", {"short.bin", 10, 5, ".blob-short", 1});
    s.catalog.put_partial("alice", {"lost.bin", 10, 5, ".blob-lost", 1});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"forgot a partial", "lost.bin"}), joined(lines));
    BOOST_TEST(reported(lines, {"corrected the size", "short.bin"}), joined(lines));
    BOOST_TEST(!s.catalog.find_partial("alice", "lost.bin").has_value());
    const auto p = s.catalog.find_partial("alice", "short.bin");
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->bytes == 2u);
}

BOOST_AUTO_TEST_CASE(a_verified_upload_whose_rename_had_not_happened_is_renamed_and_published, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-up", "abc");
    s.write("alice", "doc.txt", "hello"); // the old version, being replaced
    s.catalog.put_file("alice", {"doc.txt", 5, sha_hello, 1});
    const upload_record up{".blob-up", "alice", "doc.txt", 3, ""};
    s.catalog.begin_upload(up);
    s.catalog.prepare_publish(up, {"doc.txt", 3, sha_abc, 2});

    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"finished publishing", "doc.txt", "alice"}), joined(lines));
    BOOST_TEST(s.read("alice", "doc.txt") == "abc");
    BOOST_TEST(!s.exists("alice", ".blob-up"));
    BOOST_TEST(s.catalog.uploads().empty());
    const auto f = s.catalog.find_file("alice", "doc.txt");
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(f->sha256 == sha_abc);
    BOOST_TEST(f->size == 3u);
}

BOOST_AUTO_TEST_CASE(a_verified_upload_whose_rename_had_happened_is_published, *utf::timeout(30))
{
    storage s;
    s.write("alice", "doc.txt", "abc"); // renamed already; the crash came before drop_upload
    const upload_record up{".blob-up", "alice", "doc.txt", 3, ""};
    s.catalog.begin_upload(up);
    s.catalog.prepare_publish(up, {"doc.txt", 3, sha_abc, 2});

    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"finished publishing", "doc.txt"}), joined(lines));
    BOOST_TEST(s.catalog.uploads().empty());
    BOOST_TEST(s.read("alice", "doc.txt") == "abc");
    BOOST_TEST(s.catalog.find_file("alice", "doc.txt")->sha256 == sha_abc);
}

BOOST_AUTO_TEST_CASE(an_unverified_upload_becomes_a_partial_of_the_bytes_held, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-up", "0123456789");
    s.write("alice", "big.bin", "abc"); // the old version stays
    s.catalog.put_file("alice", {"big.bin", 3, sha_abc, 1});
    s.catalog.begin_upload({".blob-up", "alice", "big.bin", 100, ""});

    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"kept 10 bytes", "big.bin", "as a partial"}), joined(lines));
    BOOST_TEST(s.catalog.uploads().empty());
    const auto p = s.catalog.find_partial("alice", "big.bin");
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->bytes == 10u);
    BOOST_TEST(p->size == 100u);
    BOOST_TEST(p->blob == ".blob-up");
    BOOST_TEST(s.exists("alice", ".blob-up"));
    BOOST_TEST(s.read("alice", "big.bin") == "abc");
    BOOST_TEST(s.catalog.find_file("alice", "big.bin")->sha256 == sha_abc);
}

BOOST_AUTO_TEST_CASE(an_unverified_upload_that_holds_nothing_is_dropped, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-empty", "");
    s.catalog.begin_upload({".blob-empty", "alice", "e.bin", 100, ""});
    s.catalog.begin_upload({".blob-missing", "alice", "m.bin", 100, ""});

    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"dropped", "e.bin"}), joined(lines));
    BOOST_TEST(reported(lines, {"dropped", "m.bin"}), joined(lines));
    BOOST_TEST(s.catalog.uploads().empty());
    BOOST_TEST(s.catalog.partial_count() == 0u);
    BOOST_TEST(!s.exists("alice", ".blob-empty"));
}

BOOST_AUTO_TEST_CASE(a_link_planted_as_an_uploads_blob_is_not_followed, *utf::timeout(30))
{
    // Issue 14, finding 7: a path-based truncate would cut the file the link
    // points to (outside the user's folder) down to the upload's size.
    storage s;
    s.write("outside", "victim", "0123456789");
    fs::create_directories(s.folder("alice"));
    fs::create_symlink(s.folder("outside") / "victim", s.folder("alice") / ".blob-up");
    s.catalog.begin_upload({".blob-up", "alice", "up.bin", 3, ""});
    s.write("bob", ".blob-p", "");
    fs::remove(s.folder("bob") / ".blob-p");
    fs::create_symlink(s.folder("outside") / "victim", s.folder("bob") / ".blob-p");
    s.catalog.put_partial("bob", {"p.bin", 100, 4, ".blob-p", 1});

    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(s.read("outside", "victim") == "0123456789");
    BOOST_TEST(s.catalog.uploads().empty());
    BOOST_TEST(!s.catalog.find_partial("alice", "up.bin").has_value());
    BOOST_TEST(!s.catalog.find_partial("bob", "p.bin").has_value(), joined(lines));
    BOOST_TEST(!fs::is_symlink(fs::symlink_status(s.folder("alice") / ".blob-up")));
}

// Files and partials stored before fxd kept names in NFC (here: "cafe" + U+0301).
const std::string nfd_cafe = "cafe\xcc\x81.txt";
const std::string nfc_cafe = "caf\xc3\xa9.txt";

BOOST_AUTO_TEST_CASE(a_file_stored_under_a_non_nfc_name_moves_to_its_nfc_spelling, *utf::timeout(30))
{
    storage s;
    s.write("alice", nfd_cafe, "abc");
    s.catalog.put_file("alice", {nfd_cafe, 3, sha_abc, 7});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"renamed", "alice", "NFC"}), joined(lines));
    BOOST_TEST(names_of(s.catalog.list_files("alice")) == std::vector<std::string>{nfc_cafe});
    const auto f = s.catalog.find_file("alice", nfc_cafe);
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(f->sha256 == sha_abc);
    BOOST_TEST(f->mtime == 7); // the record moves whole: nothing re-hashed
    BOOST_TEST(s.read("alice", nfc_cafe) == "abc");
    BOOST_TEST(!s.exists("alice", nfd_cafe));
    BOOST_TEST(files.repair().empty());
}

BOOST_AUTO_TEST_CASE(a_non_nfc_name_whose_nfc_spelling_is_taken_is_left_alone_and_reported, *utf::timeout(30))
{
    storage s;
    s.write("alice", nfd_cafe, "abc");
    s.write("alice", nfc_cafe, "hello");
    s.catalog.put_file("alice", {nfd_cafe, 3, sha_abc, 7});
    s.catalog.put_file("alice", {nfc_cafe, 5, sha_hello, 8});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"kept", "alice", "taken"}), joined(lines));
    BOOST_TEST(s.read("alice", nfc_cafe) == "hello"); // nothing overwritten
    BOOST_TEST(s.read("alice", nfd_cafe) == "abc");
    BOOST_TEST(s.catalog.list_files("alice").size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_partial_stored_under_a_non_nfc_name_moves_to_its_nfc_spelling, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-half", "abc");
    s.catalog.put_partial("alice", {nfd_cafe, 10, 3, ".blob-half", 1});
    local_files files(s.dir.path(), s.catalog);
    const auto lines = files.repair();
    BOOST_TEST(reported(lines, {"renamed a partial", "alice"}), joined(lines));
    BOOST_TEST(!s.catalog.find_partial("alice", nfd_cafe).has_value());
    const auto p = s.catalog.find_partial("alice", nfc_cafe);
    BOOST_TEST_REQUIRE(p.has_value());
    BOOST_TEST(p->blob == ".blob-half");
    BOOST_TEST(p->bytes == 3u);
    BOOST_TEST(s.exists("alice", ".blob-half"));

    // A crash between recording the new name and dropping the old one left both on one blob.
    s.catalog.put_partial("alice", {nfd_cafe, 10, 3, ".blob-half", 1});
    BOOST_TEST(files.repair().empty());
    BOOST_TEST(!s.catalog.find_partial("alice", nfd_cafe).has_value());
    BOOST_TEST(s.catalog.find_partial("alice", nfc_cafe).has_value());
    BOOST_TEST(s.exists("alice", ".blob-half"));
}

BOOST_AUTO_TEST_CASE(a_second_repair_finds_nothing_left_to_do, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-up", "01234");
    s.write("alice", ".blob-stray", "x");
    s.write("alice", "only-on-disk.txt", "abc");
    s.catalog.put_file("alice", {"gone.txt", 3, sha_abc, 1});
    s.catalog.begin_upload({".blob-up", "alice", "up.bin", 50, ""});

    local_files files(s.dir.path(), s.catalog);
    BOOST_TEST(!files.repair().empty());
    const auto again = files.repair();
    BOOST_TEST(again.empty(), joined(again));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(expiry)

BOOST_AUTO_TEST_CASE(expire_partials_removes_old_partials_with_their_blobs_and_keeps_newer_ones, *utf::timeout(30))
{
    storage s;
    s.write("alice", ".blob-old", "old");
    s.write("alice", ".blob-new", "new");
    s.catalog.put_partial("alice", {"old.bin", 10, 3, ".blob-old", 100});
    s.catalog.put_partial("alice", {"new.bin", 10, 3, ".blob-new", 300});

    local_files files(s.dir.path(), s.catalog);
    BOOST_TEST(files.expire_partials(200) == 1u);
    BOOST_TEST(!s.exists("alice", ".blob-old"));
    BOOST_TEST(!s.catalog.find_partial("alice", "old.bin").has_value());
    BOOST_TEST(s.exists("alice", ".blob-new"));
    BOOST_TEST(s.catalog.find_partial("alice", "new.bin").has_value());
    BOOST_TEST(files.expire_partials(200) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
