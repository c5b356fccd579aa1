#pragma once
/// Helpers of the file tests (tests/integration/files_*_test.cpp): reproducible
/// test data, users and their sessions, the file ops, the upload reply check,
/// and what the daemon keeps in its storage folder.

#include "daemon_process.hpp"

#include <fxd/client/client.hpp>
#include <fxd/util/time.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/test/detail/global_typedef.hpp>
#include <boost/test/tools/assertion_result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::test {

using namespace std::chrono_literals;

inline constexpr std::uint64_t MiB = 1024 * 1024;

/// Seconds since the epoch, as the daemon writes mtime.
using util::unix_now;

// ---- Test data -----------------------------------------------------------------------------

/// SHA-256 in hex, from the client library (OpenSSL), apart from the daemon's own.
std::string sha256_of(std::string_view bytes);

/// A reproducible pseudo-random byte stream: byte i depends only on the seed
/// and i, so any range can be made again without keeping the whole file.
struct pattern {
    std::uint64_t seed;

    void fill(std::uint64_t offset, char* out, std::size_t n) const;
    std::string bytes(std::uint64_t offset, std::size_t n) const;
    /// SHA-256 of the first total bytes.
    std::string sha(std::uint64_t total) const;
};

/// Compares two byte strings without printing megabytes on failure.
boost::test_tools::assertion_result same_bytes(std::string_view got, std::string_view want);

// ---- Replies -------------------------------------------------------------------------------

/// A boolean reply field: 1 true, 0 false, -1 missing or not a boolean.
int flag(const client::reply& r, std::string_view key);

/// An ok reply to op.
void check_ok(const client::reply& r, std::string_view op);

/// The upload ok reply: name, total (the whole file), sha256, size 0 (no body).
void check_upload_ok(const client::reply& r, std::string_view name, std::uint64_t total, std::string_view sha);

// ---- Users and sessions --------------------------------------------------------------------

/// The password the helpers below register a user with.
std::string password_of(const std::string& user);

void register_user(std::uint16_t port, const std::string& user);

/// A connection logged in as an existing user.
client::connection login_session(std::uint16_t port, const std::string& user, std::chrono::milliseconds timeout = 30s);

/// Registers the user, then logs a new connection in.
client::connection user_session(std::uint16_t port, const std::string& user, std::chrono::milliseconds timeout = 30s);

// ---- File ops ------------------------------------------------------------------------------

/// Frame prefix and header of an upload whose body the caller sends.
std::string upload_prefix(std::string_view name, std::uint64_t total, std::optional<std::uint64_t> offset,
                          const std::optional<std::string>& sha);

client::reply upload(client::connection& conn, std::string_view name, std::string_view data,
                     const std::optional<std::string>& sha = {});

/// Resumes an upload of `whole` at offset: size is the whole file's, the body the rest.
client::reply upload_resume(client::connection& conn, std::string_view name, std::string_view whole,
                            std::uint64_t offset, const std::optional<std::string>& sha = {});

/// Sends bytes [from, to) of a pattern in 1 MiB pieces.
void send_pattern(client::connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to);

/// Sends bytes [from, to) of a pattern in pieces of odd sizes, most of them
/// small, pausing now and then, so the daemon gets the body in many small reads.
void send_pattern_in_small_pieces(client::connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to);

/// Like send_pattern, in small pieces, stopping when the server answers or
/// closes first; returns the bytes sent.
std::uint64_t send_pattern_until_answer(client::connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to);

client::reply download(client::connection& conn, std::string_view name, std::optional<std::uint64_t> offset = {});
client::reply stat_file(client::connection& conn, std::string_view name);
client::reply delete_file(client::connection& conn, std::string_view name);

struct streamed_download {
    bool ok = false;
    boost::json::object header;
    std::uint64_t bytes = 0;
    std::string sha;
};

/// Downloads without holding the body: hashes it piece by piece.
streamed_download download_streamed(client::connection& conn, std::string_view name);

/// list's array (empty, after a failed check, when list failed).
boost::json::array list_of(client::connection& conn);
std::vector<std::string> list_names(client::connection& conn);
std::map<std::string, std::uint64_t> list_sizes(client::connection& conn);

/// Starts an upload of `data` as user, sends its first `cut` bytes, waits
/// until the daemon has them on disk, then drops the connection.
void interrupt_upload(const daemon_process& fxd, const std::string& user, std::string_view name, std::string_view data,
                      std::uint64_t cut, const std::optional<std::string>& sha);

// ---- The storage folder --------------------------------------------------------------------

std::filesystem::path user_folder(const daemon_process& fxd, const std::string& user);
std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, std::string_view bytes);
/// Permission bits (0 when the path is missing).
unsigned mode_of(const std::filesystem::path& path);
/// 0 when the file is missing.
std::uint64_t file_size_of(const std::filesystem::path& path);
/// Names in a folder, sorted.
std::vector<std::string> folder_entries(const std::filesystem::path& folder);
/// The upload blobs (".blob-...") in a user's folder.
std::vector<std::filesystem::path> blobs_in(const std::filesystem::path& folder);
std::uint64_t largest_blob(const std::filesystem::path& folder);
/// Every path under root (relative, sorted), except the database's own files.
std::vector<std::string> tree_of(const std::filesystem::path& root);

/// First column of every row of a query, as text (opens the database read-only).
std::vector<std::string> sqlite_rows(const std::filesystem::path& db_path, const std::string& sql);

// ---- The daemon process --------------------------------------------------------------------

/// A field of /proc/PID/status in KiB (VmRSS:, VmHWM:).
std::uint64_t proc_kib(int pid, const std::string& key);

/// The lines of a log that hold every one of the needles.
std::vector<std::string> log_lines_with(const std::string& log, const std::vector<std::string>& needles);

/// A tmpfs mounted for the life of the object (root only).
class tmpfs_mount {
public:
    tmpfs_mount(std::filesystem::path at, const std::string& size);
    ~tmpfs_mount();
    tmpfs_mount(const tmpfs_mount&) = delete;
    tmpfs_mount& operator=(const tmpfs_mount&) = delete;
    bool mounted() const noexcept { return mounted_; }
    const std::string& error() const noexcept { return error_; }

private:
    std::filesystem::path at_;
    bool mounted_ = false;
    std::string error_;
};

/// Precondition of a Boost.Test case that mounts a tmpfs: false, so that the case shows as
/// skipped, when not root or when a trial mount is refused (a container without CAP_SYS_ADMIN).
boost::test_tools::assertion_result can_mount_tmpfs(boost::unit_test::test_unit_id);

} // namespace fxd::test
