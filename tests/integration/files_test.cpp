// Files against the real daemon, as the wire contract and issue 4 state them:
// upload/download round trips (0 bytes, 1 byte, 3 MiB + 17, a large streamed
// file with the daemon's memory checked to stay flat), sha256 match and
// mismatch, download offsets, list order, stat, delete, users kept apart, the
// old version readable during a replacing upload, concurrent uploads of one
// name, interrupted uploads resumed, bad_offset, quota, size limits, hostile
// names, login required, stats counters and `fxd user del`.
// And the faults: a full disk (a tiny tmpfs, as root) and kill -9 mid-upload.

#include "daemon_process.hpp"
#include "wire.hpp"

#include <fxd/client/client.hpp>
#include <fxd/util/sha256.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using fxd::client::connection;
using fxd::client::reply;
using fxd::test::counter;
using fxd::test::daemon_process;
using fxd::test::eventually;
using fxd::test::localhost;
using fxd::test::raw_frame;
using fxd::test::show;
using fxd::test::stats_snapshot;
using fxd::test::str;
using fxd::test::temp_dir;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace utf = boost::unit_test;

constexpr std::uint64_t MiB = 1024 * 1024;

/// Cheap Argon2id, so that registering and logging in stay fast.
std::vector<std::string> fast(std::vector<std::string> more = {})
{
    std::vector<std::string> args{"--set", "auth.hash_memory_bytes=65536", "--set", "auth.hash_passes=1"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

std::int64_t unix_now()
{
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string repeat(std::string_view piece, std::size_t times)
{
    std::string s;
    for (std::size_t i = 0; i < times; ++i)
        s += piece;
    return s;
}

// ---- SHA-256 and test data -----------------------------------------------------------------

/// SHA-256 from the client library (OpenSSL), computed apart from the daemon's own.
using sha256_hasher = fxd::util::sha256;

std::string sha256_of(std::string_view bytes)
{
    sha256_hasher h;
    h.update(bytes);
    return h.finish_hex();
}

/// A reproducible pseudo-random byte stream: byte i depends only on the seed
/// and i, so any range can be made again without keeping the whole file.
struct pattern {
    std::uint64_t seed;

    static std::uint64_t mix(std::uint64_t x)
    {
        x += 0x9E3779B97F4A7C15ULL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
        return x ^ (x >> 31);
    }
    void fill(std::uint64_t offset, char* out, std::size_t n) const
    {
        std::size_t i = 0;
        while (i < n) {
            const std::uint64_t pos = offset + i;
            const std::uint64_t word = mix(seed * 0x2545F4914F6CDD1DULL ^ (pos / 8));
            for (unsigned k = static_cast<unsigned>(pos % 8); k < 8 && i < n; ++k, ++i)
                out[i] = static_cast<char>((word >> (8 * k)) & 0xFF);
        }
    }
    std::string bytes(std::uint64_t offset, std::size_t n) const
    {
        std::string s(n, '\0');
        fill(offset, s.data(), n);
        return s;
    }
    std::string sha(std::uint64_t total) const
    {
        sha256_hasher h;
        std::string chunk;
        for (std::uint64_t at = 0; at < total; at += MiB) {
            chunk = bytes(at, static_cast<std::size_t>(std::min<std::uint64_t>(MiB, total - at)));
            h.update(chunk);
        }
        return h.finish_hex();
    }
};

/// Compares two byte strings without printing megabytes on failure.
boost::test_tools::assertion_result same_bytes(std::string_view got, std::string_view want)
{
    boost::test_tools::assertion_result r(got == want);
    if (!r) {
        std::size_t at = 0;
        while (at < got.size() && at < want.size() && got[at] == want[at])
            ++at;
        r.message() << "got " << got.size() << " bytes, want " << want.size() << " bytes; first difference at byte "
                    << at;
    }
    return r;
}

// ---- Reply checks ----------------------------------------------------------------------------

/// A numeric reply field, or -1 when it is missing or not a number.
std::int64_t num(const reply& r, std::string_view key)
{
    const auto* v = r.header.if_contains(key);
    if (!v || !v->is_number())
        return -1;
    return v->to_number<std::int64_t>();
}

/// A boolean reply field: 1 true, 0 false, -1 missing or not a boolean.
int flag(const reply& r, std::string_view key)
{
    const auto* v = r.header.if_contains(key);
    if (!v || !v->is_bool())
        return -1;
    return v->get_bool() ? 1 : 0;
}

std::string json_str(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

void check_ok(const reply& r, std::string_view op)
{
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "ok");
    BOOST_TEST(str(r, "op") == op);
}

void check_error(const reply& r, std::string_view op, std::string_view code)
{
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "error");
    BOOST_TEST(r.code() == code);
    BOOST_TEST(str(r, "op") == op);
    BOOST_TEST(!str(r, "message").empty());
    BOOST_TEST(num(r, "size") == 0);
    BOOST_TEST(r.body.empty());
}

/// The upload ok reply: name, total (the whole file), sha256, size 0 (no body).
void check_upload_ok(const reply& r, std::string_view name, std::uint64_t total, std::string_view sha)
{
    BOOST_TEST_INFO("upload reply: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "ok");
    BOOST_TEST(str(r, "op") == "upload");
    BOOST_TEST(str(r, "name") == name);
    BOOST_TEST(num(r, "total") == static_cast<std::int64_t>(total));
    BOOST_TEST(str(r, "sha256") == sha);
    BOOST_TEST(num(r, "size") == 0);
    BOOST_TEST(r.body.empty());
}

/// The connection still answers, in order.
void check_usable(connection& conn)
{
    static std::int64_t next = 1000;
    const std::int64_t id = ++next;
    const auto r = conn.call({{"op", "ping"}, {"id", id}});
    BOOST_TEST_INFO("ping reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value(id)));
}

// ---- Sessions and requests -------------------------------------------------------------------

std::string password_of(const std::string& user)
{
    return user + "-password";
}

void register_user(std::uint16_t port, const std::string& user)
{
    connection conn(localhost, port, 30s);
    const auto r = conn.call({{"op", "register"}, {"user", user}, {"password", password_of(user)}});
    BOOST_REQUIRE_MESSAGE(r.ok(), "register " << user << ": " << json::serialize(r.header));
}

/// A connection logged in as an existing user.
connection login_session(std::uint16_t port, const std::string& user, std::chrono::milliseconds timeout = 30s)
{
    connection conn(localhost, port, timeout);
    const auto r = conn.call({{"op", "login"}, {"user", user}, {"password", password_of(user)}});
    BOOST_REQUIRE_MESSAGE(r.ok(), "login " << user << ": " << json::serialize(r.header));
    return conn;
}

/// Registers the user, then logs a new connection in.
connection user_session(std::uint16_t port, const std::string& user, std::chrono::milliseconds timeout = 30s)
{
    register_user(port, user);
    return login_session(port, user, timeout);
}

/// Frame prefix and header of an upload whose body the caller sends.
std::string upload_prefix(std::string_view name, std::uint64_t total, std::optional<std::uint64_t> offset,
                          const std::optional<std::string>& sha)
{
    json::object h{{"op", "upload"}, {"name", name}, {"size", total}};
    if (offset)
        h["offset"] = *offset;
    if (sha)
        h["sha256"] = *sha;
    const std::string text = json::serialize(h);
    return fxd::test::be32(static_cast<std::uint32_t>(text.size())) + text;
}

reply upload(connection& conn, std::string_view name, std::string_view data, const std::optional<std::string>& sha = {})
{
    conn.send_raw(upload_prefix(name, data.size(), std::nullopt, sha));
    conn.send_raw(data);
    return conn.receive();
}

/// Resumes an upload of `whole` at offset: size is the whole file's, the body the rest.
reply upload_resume(connection& conn, std::string_view name, std::string_view whole, std::uint64_t offset,
                    const std::optional<std::string>& sha = {})
{
    conn.send_raw(upload_prefix(name, whole.size(), offset, sha));
    conn.send_raw(whole.substr(static_cast<std::size_t>(offset)));
    return conn.receive();
}

/// Sends bytes [from, to) of a pattern in 1 MiB pieces.
void send_pattern(connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to)
{
    std::string chunk;
    for (std::uint64_t at = from; at < to; at += MiB) {
        chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(MiB, to - at)));
        p.fill(at, chunk.data(), chunk.size());
        conn.send_raw(chunk);
    }
}

/// Like send_pattern, in small pieces, stopping when the server answers or
/// closes first; returns the bytes sent.
std::uint64_t send_pattern_until_answer(connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to)
{
    constexpr std::uint64_t piece = 64 * 1024;
    std::string chunk;
    std::uint64_t at = from;
    while (at < to) {
        pollfd pf{conn.native_handle(), POLLIN, 0};
        if (::poll(&pf, 1, 0) > 0)
            break;
        chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(piece, to - at)));
        p.fill(at, chunk.data(), chunk.size());
        if (!fxd::test::send_tolerant(conn, chunk))
            break;
        at += chunk.size();
    }
    return at - from;
}

reply download(connection& conn, std::string_view name, std::optional<std::uint64_t> offset = {})
{
    json::object h{{"op", "download"}, {"name", name}};
    if (offset)
        h["offset"] = *offset;
    return conn.call(h);
}

reply stat_file(connection& conn, std::string_view name)
{
    return conn.call({{"op", "stat"}, {"name", name}});
}

reply delete_file(connection& conn, std::string_view name)
{
    return conn.call({{"op", "delete"}, {"name", name}});
}

/// Reads a reply's header only (the body is left to the caller).
json::object read_reply_header(connection& conn)
{
    const std::string prefix = conn.receive_exact(4);
    const std::uint32_t len = (static_cast<std::uint32_t>(static_cast<unsigned char>(prefix[0])) << 24) |
                              (static_cast<std::uint32_t>(static_cast<unsigned char>(prefix[1])) << 16) |
                              (static_cast<std::uint32_t>(static_cast<unsigned char>(prefix[2])) << 8) |
                              static_cast<std::uint32_t>(static_cast<unsigned char>(prefix[3]));
    if (len == 0 || len > (1u << 20))
        throw std::runtime_error("insane reply header length " + std::to_string(len));
    return json::parse(conn.receive_exact(len)).as_object();
}

struct streamed_download {
    bool ok = false;
    json::object header;
    std::uint64_t bytes = 0;
    std::string sha;
};

/// Downloads without holding the body: hashes it piece by piece.
streamed_download download_streamed(connection& conn, std::string_view name)
{
    conn.send({{"op", "download"}, {"name", name}});
    streamed_download d;
    d.header = read_reply_header(conn);
    d.ok = json_str(d.header, "status") == "ok";
    const std::uint64_t size = d.header.at("size").to_number<std::uint64_t>();
    sha256_hasher h;
    while (d.bytes < size) {
        const auto piece = conn.receive_exact(static_cast<std::size_t>(std::min<std::uint64_t>(MiB, size - d.bytes)));
        h.update(piece);
        d.bytes += piece.size();
    }
    d.sha = h.finish_hex();
    return d;
}

json::array list_of(connection& conn)
{
    const auto r = conn.call({{"op", "list"}});
    BOOST_TEST_INFO("list reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(num(r, "size") == static_cast<std::int64_t>(r.body.size()));
    if (!r.ok())
        return {};
    return json::parse(r.body).as_array();
}

std::vector<std::string> list_names(connection& conn)
{
    std::vector<std::string> names;
    for (const auto& e : list_of(conn))
        names.emplace_back(e.as_object().at("name").as_string());
    return names;
}

std::map<std::string, std::uint64_t> list_sizes(connection& conn)
{
    std::map<std::string, std::uint64_t> sizes;
    for (const auto& e : list_of(conn))
        sizes[std::string(e.as_object().at("name").as_string())] = e.as_object().at("size").to_number<std::uint64_t>();
    return sizes;
}

// ---- The storage folder ----------------------------------------------------------------------

fs::path user_folder(const daemon_process& fxd, const std::string& user)
{
    return fxd.storage() / "users" / user;
}

std::string read_file(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

unsigned mode_of(const fs::path& path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return 0;
    return st.st_mode & 07777;
}

std::uint64_t file_size_of(const fs::path& path)
{
    std::error_code ec;
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : n;
}

std::vector<std::string> folder_entries(const fs::path& folder)
{
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

/// The upload blobs (".blob-...") in a user's folder.
std::vector<fs::path> blobs_in(const fs::path& folder)
{
    std::vector<fs::path> blobs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
        if (e.path().filename().string().starts_with(".blob-"))
            blobs.push_back(e.path());
    }
    return blobs;
}

std::uint64_t largest_blob(const fs::path& folder)
{
    std::uint64_t most = 0;
    for (const auto& b : blobs_in(folder))
        most = std::max(most, file_size_of(b));
    return most;
}

/// Every path under root (relative), except the database's own files.
std::vector<std::string> tree_of(const fs::path& root)
{
    std::vector<std::string> paths;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        if (e.path().filename().string().starts_with("fxd.db"))
            continue;
        paths.push_back(fs::relative(e.path(), root).string());
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

/// A field of /proc/PID/status in KiB (VmRSS:, VmHWM:).
std::uint64_t proc_kib(int pid, const std::string& key)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(key)) {
            std::istringstream fields(line.substr(key.size()));
            std::uint64_t kib = 0;
            fields >> kib;
            return kib;
        }
    }
    throw std::runtime_error("no " + key + " in /proc/" + std::to_string(pid) + "/status");
}

/// Starts an upload of `data` as user, sends its first `cut` bytes, waits
/// until the daemon has them on disk, then drops the connection.
void interrupt_upload(const daemon_process& fxd, const std::string& user, std::string_view name, std::string_view data,
                      std::uint64_t cut, const std::optional<std::string>& sha)
{
    auto conn = login_session(fxd.tcp_port(), user);
    conn.send_raw(upload_prefix(name, data.size(), std::nullopt, sha));
    conn.send_raw(data.substr(0, static_cast<std::size_t>(cut)));
    const auto folder = user_folder(fxd, user);
    BOOST_TEST(eventually([&] {
        for (const auto& b : blobs_in(folder)) {
            if (file_size_of(b) == cut)
                return true;
        }
        return false;
    }), "the daemon never held " << cut << " bytes of " << name);
}

/// A tmpfs mounted for the life of the object (root only).
class tmpfs_mount {
public:
    tmpfs_mount(fs::path at, const std::string& size) : at_(std::move(at))
    {
        fs::create_directories(at_);
        const std::string options = "size=" + size + ",mode=0700";
        if (::mount("tmpfs", at_.c_str(), "tmpfs", 0, options.c_str()) == 0)
            mounted_ = true;
        else
            error_ = std::strerror(errno);
    }
    ~tmpfs_mount()
    {
        if (mounted_)
            ::umount2(at_.c_str(), MNT_DETACH);
    }
    tmpfs_mount(const tmpfs_mount&) = delete;
    tmpfs_mount& operator=(const tmpfs_mount&) = delete;
    bool mounted() const noexcept { return mounted_; }
    const std::string& error() const noexcept { return error_; }

private:
    fs::path at_;
    bool mounted_ = false;
    std::string error_;
};

} // namespace

// ---- Round trips -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_round_trip)

BOOST_AUTO_TEST_CASE(upload_then_download_returns_the_same_bytes_for_0_1_and_3MiB_plus_17, *utf::timeout(180))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::vector<std::pair<std::string, std::string>> cases{
        {"empty.bin", std::string()},
        {"one.bin", std::string(1, '\xA5')},
        {"three.bin", pattern{3}.bytes(0, 3 * MiB + 17)},
    };
    for (const auto& [name, data] : cases) {
        BOOST_TEST_CONTEXT("file " << name << " of " << data.size() << " bytes")
        {
            const auto t0 = unix_now();
            const std::string sha = sha256_of(data);
            const auto up = upload(conn, name, data, sha);
            check_upload_ok(up, name, data.size(), sha);

            const auto down = download(conn, name);
            BOOST_TEST_INFO("download reply: " << json::serialize(down.header));
            BOOST_TEST(str(down, "status") == "ok");
            BOOST_TEST(str(down, "op") == "download");
            BOOST_TEST(str(down, "name") == name);
            BOOST_TEST(num(down, "total") == static_cast<std::int64_t>(data.size()));
            BOOST_TEST(num(down, "size") == static_cast<std::int64_t>(data.size()));
            BOOST_TEST(str(down, "sha256") == sha);
            BOOST_TEST(same_bytes(down.body, data));

            const auto st = stat_file(conn, name);
            BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
            BOOST_TEST(str(st, "status") == "ok");
            BOOST_TEST(str(st, "name") == name);
            BOOST_TEST(flag(st, "exists") == 1);
            BOOST_TEST(num(st, "total") == static_cast<std::int64_t>(data.size()));
            BOOST_TEST(str(st, "sha256") == sha);
            BOOST_TEST(num(st, "mtime") >= t0 - 5);
            BOOST_TEST(num(st, "mtime") <= unix_now() + 5);
            BOOST_TEST(num(st, "partial") == 0);
            BOOST_TEST(num(st, "size") == 0);
            BOOST_TEST(st.body.empty());

            // On disk: the user's own folder, the bytes as sent, mode 0600.
            const auto path = user_folder(fxd, "alice") / name;
            BOOST_TEST(same_bytes(read_file(path), data));
            BOOST_TEST(mode_of(path) == 0600);
        }
    }
    BOOST_TEST(mode_of(user_folder(fxd, "alice")) == 0700);
    BOOST_TEST(mode_of(fxd.storage() / "users") == 0700);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(a_large_streamed_upload_and_download_keep_the_daemons_memory_flat, *utf::timeout(900))
{
    const bool big = std::getenv("FXD_BIG_TESTS") && std::string(std::getenv("FXD_BIG_TESTS")) == "1";
    const std::uint64_t total = big ? 512 * MiB : 64 * MiB;
    const std::uint64_t bound_kib = (big ? 64 * MiB : 32 * MiB) / 1024;
    const pattern data{0xF11E5};
    const std::string sha = data.sha(total);

    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice", 60s);
    auto other = user_session(fxd.tcp_port(), "bob");
    const auto rss_start = proc_kib(fxd.pid(), "VmRSS:");
    const auto hwm_start = proc_kib(fxd.pid(), "VmHWM:");

    const auto up_started = std::chrono::steady_clock::now();
    conn.send_raw(upload_prefix("large.bin", total, std::nullopt, sha));
    send_pattern(conn, data, 0, total / 2);
    // Another client is served while the body streams in.
    check_usable(other);
    const auto rss_mid = proc_kib(fxd.pid(), "VmRSS:");
    send_pattern(conn, data, total / 2, total);
    const auto up = conn.receive();
    const double up_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - up_started).count();
    check_upload_ok(up, "large.bin", total, sha);
    const auto hwm_after_upload = proc_kib(fxd.pid(), "VmHWM:");

    const auto down_started = std::chrono::steady_clock::now();
    const auto down = download_streamed(conn, "large.bin");
    const double down_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - down_started).count();
    BOOST_TEST_INFO("download reply: " << json::serialize(down.header));
    BOOST_TEST(down.ok);
    BOOST_TEST(down.bytes == total);
    BOOST_TEST(down.sha == sha);
    BOOST_TEST(json_str(down.header, "sha256") == sha);
    const auto hwm_after_download = proc_kib(fxd.pid(), "VmHWM:");

    BOOST_TEST_MESSAGE("large file " << total / MiB << " MiB: daemon VmRSS start " << rss_start << " KiB, mid-upload "
                                     << rss_mid << " KiB; VmHWM start " << hwm_start << " KiB, after upload "
                                     << hwm_after_upload << " KiB, after download " << hwm_after_download << " KiB");
    BOOST_TEST_MESSAGE("loopback throughput (debug log level, for information only): upload "
                       << static_cast<double>(total) / 1e6 / up_seconds << " MB/s, download "
                       << static_cast<double>(total) / 1e6 / down_seconds << " MB/s");
    // A memory bound, not a timing one: the body must never be held whole.
    BOOST_TEST(hwm_after_upload - hwm_start < bound_kib);
    BOOST_TEST(hwm_after_download - hwm_start < bound_kib);
    BOOST_TEST(file_size_of(user_folder(fxd, "alice") / "large.bin") == total);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- SHA-256 -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_sha256)

BOOST_AUTO_TEST_CASE(an_upload_without_sha256_reports_the_sha256_of_its_bytes, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{11}.bytes(0, 100000);
    check_upload_ok(upload(conn, "plain.bin", data), "plain.bin", data.size(), sha256_of(data));
    // Known vector: SHA-256 of the empty string.
    check_upload_ok(upload(conn, "empty", ""), "empty", 0,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const auto d = download(conn, "empty");
    BOOST_TEST(str(d, "sha256") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_CASE(a_sha256_mismatch_is_checksum_mismatch_stores_nothing_and_keeps_the_old_version,
                     *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v1 = pattern{1}.bytes(0, 200000);
    const std::string v2 = pattern{2}.bytes(0, 300000);
    check_upload_ok(upload(conn, "doc.bin", v1, sha256_of(v1)), "doc.bin", v1.size(), sha256_of(v1));

    // A replacement whose body does not match the sha256 it announced.
    check_error(upload(conn, "doc.bin", v2, sha256_of(v1)), "upload", "checksum_mismatch");
    check_usable(conn);
    const auto d = download(conn, "doc.bin");
    BOOST_TEST(same_bytes(d.body, v1));
    BOOST_TEST(str(d, "sha256") == sha256_of(v1));
    BOOST_TEST(str(stat_file(conn, "doc.bin"), "sha256") == sha256_of(v1));
    BOOST_TEST(num(stat_file(conn, "doc.bin"), "partial") == 0);

    // A new name: nothing at all appears.
    std::string flipped = v2;
    flipped[12345] ^= 1;
    check_error(upload(conn, "new.bin", flipped, sha256_of(v2)), "upload", "checksum_mismatch");
    check_error(stat_file(conn, "new.bin"), "stat", "not_found");
    check_error(download(conn, "new.bin"), "download", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"doc.bin"});
    BOOST_TEST(eventually([&] { return blobs_in(user_folder(fxd, "alice")).empty(); }));
    BOOST_TEST(!fs::exists(user_folder(fxd, "alice") / "new.bin"));
    BOOST_TEST(same_bytes(read_file(user_folder(fxd, "alice") / "doc.bin"), v1));

    // The same body with its right sha256 then goes through.
    check_upload_ok(upload(conn, "new.bin", flipped, sha256_of(flipped)), "new.bin", flipped.size(), sha256_of(flipped));
}

BOOST_AUTO_TEST_CASE(a_malformed_sha256_is_bad_request_and_the_body_is_skipped, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = "some bytes to store";
    const std::string good = sha256_of(data);
    std::string upper = good;
    for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::vector<json::value> bad{json::value(upper), json::value(good.substr(1)), json::value(good + "0"),
                                       json::value(std::string(64, 'g')), json::value(42), json::value(nullptr),
                                       json::value(json::array{})};
    for (const auto& sha : bad) {
        BOOST_TEST_CONTEXT("sha256 " << json::serialize(sha))
        {
            json::object h{{"op", "upload"}, {"name", "x.bin"}, {"sha256", sha}};
            check_error(conn.call(h, data), "upload", "bad_request");
            check_usable(conn);
        }
    }
    check_error(stat_file(conn, "x.bin"), "stat", "not_found");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Download offsets, stat, list, delete ------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_ops)

BOOST_AUTO_TEST_CASE(download_with_an_offset_returns_the_rest_and_past_the_end_is_bad_offset, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{5}.bytes(0, 1000);
    const std::string sha = sha256_of(data);
    check_upload_ok(upload(conn, "f.bin", data), "f.bin", data.size(), sha);

    for (const std::uint64_t offset : {0ULL, 1ULL, 500ULL, 999ULL, 1000ULL}) {
        BOOST_TEST_CONTEXT("offset " << offset)
        {
            const auto d = download(conn, "f.bin", offset);
            BOOST_TEST_INFO("reply: " << json::serialize(d.header));
            BOOST_TEST(d.ok());
            BOOST_TEST(num(d, "total") == 1000);
            BOOST_TEST(num(d, "size") == static_cast<std::int64_t>(1000 - offset));
            BOOST_TEST(str(d, "sha256") == sha); // always the whole file's
            BOOST_TEST(same_bytes(d.body, data.substr(offset)));
        }
    }
    check_error(download(conn, "f.bin", 1001), "download", "bad_offset");
    check_usable(conn);
    check_error(download(conn, "f.bin", 1ULL << 62), "download", "bad_offset");
    check_error(conn.call({{"op", "download"}, {"name", "f.bin"}, {"offset", -1}}), "download", "bad_request");
    check_error(conn.call({{"op", "download"}, {"name", "f.bin"}, {"offset", "5"}}), "download", "bad_request");
    check_error(download(conn, "missing.bin"), "download", "not_found");
    check_error(download(conn, "missing.bin", 0), "download", "not_found");
    check_usable(conn);
}

BOOST_AUTO_TEST_CASE(list_is_a_json_array_sorted_by_name_in_byte_order, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");

    // An empty list first.
    const auto empty = conn.call({{"op", "list"}});
    BOOST_TEST_INFO("list reply: " << json::serialize(empty.header));
    BOOST_TEST(empty.ok());
    BOOST_TEST(json::parse(empty.body).as_array().empty());

    const std::vector<std::string> upload_order{"é.txt", "a", "B", "Z z", "a b", "_x", "9", "10", "zz", "Zz"};
    std::map<std::string, std::size_t> sizes;
    const auto t0 = unix_now();
    for (std::size_t i = 0; i < upload_order.size(); ++i) {
        const std::string data(i * 7 + 1, static_cast<char>('a' + i));
        sizes[upload_order[i]] = data.size();
        check_upload_ok(upload(conn, upload_order[i], data), upload_order[i], data.size(), sha256_of(data));
    }
    const std::vector<std::string> byte_order{"10", "9", "B", "Z z", "Zz", "_x", "a", "a b", "zz", "é.txt"};

    const auto r = conn.call({{"op", "list"}, {"id", "l1"}});
    BOOST_TEST_INFO("list reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(num(r, "size") == static_cast<std::int64_t>(r.body.size()));
    BOOST_TEST(str(r, "op") == "list");
    BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value("l1")));
    const auto entries = json::parse(r.body).as_array();
    std::vector<std::string> names;
    for (const auto& e : entries) {
        const auto& o = e.as_object();
        const std::string name(o.at("name").as_string());
        names.push_back(name);
        BOOST_TEST_CONTEXT("entry " << json::serialize(o))
        {
            BOOST_TEST(o.at("size").to_number<std::uint64_t>() == sizes[name]);
            BOOST_TEST(o.at("mtime").to_number<std::int64_t>() >= t0 - 5);
            BOOST_TEST(o.at("mtime").to_number<std::int64_t>() <= unix_now() + 5);
        }
    }
    BOOST_TEST(names == byte_order, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(stat_of_an_unknown_name_is_not_found_and_a_name_is_required, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    check_error(stat_file(conn, "nothing"), "stat", "not_found");
    for (const char* op : {"upload", "download", "stat", "delete"}) {
        BOOST_TEST_CONTEXT("op " << op)
        {
            check_error(conn.call({{"op", op}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"name", 7}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"name", nullptr}}), op, "bad_request");
            check_error(conn.call({{"op", op}, {"name", json::array{"a"}}}), op, "bad_request");
            check_usable(conn);
        }
    }
}

BOOST_AUTO_TEST_CASE(delete_removes_the_file_and_deleting_again_is_not_found, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string data = pattern{8}.bytes(0, 5000);
    check_upload_ok(upload(conn, "gone.bin", data), "gone.bin", data.size(), sha256_of(data));
    check_upload_ok(upload(conn, "kept.bin", data), "kept.bin", data.size(), sha256_of(data));

    const auto r = conn.call({{"op", "delete"}, {"id", 9}, {"name", "gone.bin"}});
    BOOST_TEST_INFO("delete reply: " << json::serialize(r.header));
    BOOST_TEST(r.ok());
    BOOST_TEST(str(r, "op") == "delete");
    BOOST_TEST(num(r, "size") == 0);
    BOOST_TEST(r.body.empty());

    check_error(stat_file(conn, "gone.bin"), "stat", "not_found");
    check_error(download(conn, "gone.bin"), "download", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"kept.bin"});
    BOOST_TEST(!fs::exists(user_folder(fxd, "alice") / "gone.bin"));
    check_error(delete_file(conn, "gone.bin"), "delete", "not_found");
    check_error(delete_file(conn, "never.bin"), "delete", "not_found");
    check_usable(conn);
    // The other file is untouched, and the name can be used again.
    BOOST_TEST(same_bytes(download(conn, "kept.bin").body, data));
    check_upload_ok(upload(conn, "gone.bin", "again"), "gone.bin", 5, sha256_of("again"));
    BOOST_TEST(download(conn, "gone.bin").body == "again");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Users, login ------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_users)

BOOST_AUTO_TEST_CASE(a_second_user_sees_downloads_and_deletes_nothing_of_the_first, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto alice = user_session(fxd.tcp_port(), "alice");
    auto bob = user_session(fxd.tcp_port(), "bob");
    const std::string secret = pattern{42}.bytes(0, 70000);
    check_upload_ok(upload(alice, "secret.txt", secret), "secret.txt", secret.size(), sha256_of(secret));

    const auto l = bob.call({{"op", "list"}});
    BOOST_TEST(l.ok());
    BOOST_TEST(json::parse(l.body).as_array().empty());
    check_error(stat_file(bob, "secret.txt"), "stat", "not_found");
    check_error(download(bob, "secret.txt"), "download", "not_found");
    check_error(download(bob, "secret.txt", 10), "download", "not_found");
    check_error(delete_file(bob, "secret.txt"), "delete", "not_found");
    check_error(upload_resume(bob, "secret.txt", secret, 100), "upload", "bad_offset");

    // Bob's file of the same name is his own; Alice's stays hers.
    check_upload_ok(upload(bob, "secret.txt", "bob's"), "secret.txt", 5, sha256_of("bob's"));
    BOOST_TEST(download(bob, "secret.txt").body == "bob's");
    BOOST_TEST(same_bytes(download(alice, "secret.txt").body, secret));
    BOOST_TEST(list_names(alice) == std::vector<std::string>{"secret.txt"});
    check_ok(delete_file(bob, "secret.txt"), "delete");
    BOOST_TEST(same_bytes(download(alice, "secret.txt").body, secret));
    BOOST_TEST(same_bytes(read_file(user_folder(fxd, "alice") / "secret.txt"), secret));
    BOOST_TEST(!fs::exists(user_folder(fxd, "bob") / "secret.txt"));

    // A new login on the same connection switches whose files it sees.
    check_ok(bob.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    BOOST_TEST(list_names(bob) == std::vector<std::string>{"secret.txt"});
}

BOOST_AUTO_TEST_CASE(file_ops_without_login_are_unauthorized_and_store_nothing, *utf::timeout(60))
{
    daemon_process fxd(fast());
    connection conn(localhost, fxd.tcp_port(), 30s);
    auto check_all_unauthorized = [&] {
        check_error(upload(conn, "a.txt", "hello"), "upload", "unauthorized");
        check_usable(conn); // the upload's body was read and dropped
        check_error(download(conn, "a.txt"), "download", "unauthorized");
        check_error(stat_file(conn, "a.txt"), "stat", "unauthorized");
        check_error(conn.call({{"op", "list"}}), "list", "unauthorized");
        check_error(delete_file(conn, "a.txt"), "delete", "unauthorized");
        check_usable(conn);
    };
    check_all_unauthorized();
    // Registering does not log in.
    check_ok(conn.call({{"op", "register"}, {"user", "alice"}, {"password", "alice-password"}}), "register");
    check_all_unauthorized();
    BOOST_TEST(folder_entries(fxd.storage() / "users").empty());
    // Logged in, then out again.
    check_ok(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    check_upload_ok(upload(conn, "a.txt", "hello"), "a.txt", 5, sha256_of("hello"));
    check_ok(conn.call({{"op", "logout"}}), "logout");
    check_all_unauthorized();
    // A refused upload left Alice's file as it was.
    check_ok(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    BOOST_TEST(download(conn, "a.txt").body == "hello");
    // A large unauthorized upload gets its reply, then the connection is closed.
    connection big(localhost, fxd.tcp_port(), 30s);
    big.send_raw(upload_prefix("big.bin", 8 * MiB, std::nullopt, std::nullopt));
    check_error(big.receive(), "upload", "unauthorized");
    BOOST_TEST(big.closed_by_peer());
}

BOOST_AUTO_TEST_CASE(fxd_user_del_removes_the_users_folder_and_files, *utf::timeout(120))
{
    daemon_process fxd(fast());
    {
        auto alice = user_session(fxd.tcp_port(), "alice");
        auto bob = user_session(fxd.tcp_port(), "bob");
        check_upload_ok(upload(alice, "one.txt", "first"), "one.txt", 5, sha256_of("first"));
        check_upload_ok(upload(alice, "two.txt", "second"), "two.txt", 6, sha256_of("second"));
        check_upload_ok(upload(bob, "bob.txt", "bobs"), "bob.txt", 4, sha256_of("bobs"));
        // A partial too.
        alice.send_raw(upload_prefix("half.bin", 100, std::nullopt, std::nullopt) + std::string(40, 'h'));
    }
    {
        auto alice = login_session(fxd.tcp_port(), "alice");
        BOOST_TEST(eventually([&] { return num(stat_file(alice, "half.bin"), "partial") == 40; }));
    }
    BOOST_TEST(fs::exists(user_folder(fxd, "alice") / "one.txt"));

    auto args = fast({"--set", "storage.dir=" + fxd.storage().string(), "user", "del", "alice"});
    const auto r = fxd::test::run_fxd(args, 60s);
    BOOST_TEST(r.status == 0, "fxd user del: " << r.err);
    BOOST_TEST(r.out.find("alice") != std::string::npos);

    BOOST_TEST(!fs::exists(user_folder(fxd, "alice")));
    BOOST_TEST(fs::exists(user_folder(fxd, "bob") / "bob.txt"));

    // Alice can no longer log in; a new Alice starts with nothing.
    connection conn(localhost, fxd.tcp_port(), 30s);
    check_error(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login",
                "bad_credentials");
    check_ok(conn.call({{"op", "register"}, {"user", "alice"}, {"password", "alice-password"}}), "register");
    check_ok(conn.call({{"op", "login"}, {"user", "alice"}, {"password", "alice-password"}}), "login");
    BOOST_TEST(list_names(conn).empty());
    check_error(stat_file(conn, "one.txt"), "stat", "not_found");
    check_error(stat_file(conn, "half.bin"), "stat", "not_found");
    check_error(download(conn, "two.txt"), "download", "not_found");
    // Bob is untouched.
    auto bob = login_session(fxd.tcp_port(), "bob");
    BOOST_TEST(download(bob, "bob.txt").body == "bobs");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Replacing, concurrency ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_replace)

BOOST_AUTO_TEST_CASE(the_old_version_stays_readable_whole_during_a_replacing_upload, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto writer = user_session(fxd.tcp_port(), "alice");
    auto reader = login_session(fxd.tcp_port(), "alice");
    const std::string v1 = pattern{101}.bytes(0, MiB + 1);
    const pattern p2{102};
    const std::uint64_t v2_size = 2 * MiB + 3;
    const std::string v1_sha = sha256_of(v1);
    const std::string v2_sha = p2.sha(v2_size);
    check_upload_ok(upload(writer, "doc.bin", v1, v1_sha), "doc.bin", v1.size(), v1_sha);

    // Half of the replacement's body, and the daemon has it on disk.
    writer.send_raw(upload_prefix("doc.bin", v2_size, std::nullopt, v2_sha));
    send_pattern(writer, p2, 0, v2_size / 2);
    const auto folder = user_folder(fxd, "alice");
    BOOST_TEST(eventually([&] { return largest_blob(folder) >= v2_size / 2; }));

    for (int round = 0; round < 2; ++round) {
        const auto d = download(reader, "doc.bin");
        BOOST_TEST_INFO("download reply: " << json::serialize(d.header));
        BOOST_TEST(d.ok());
        BOOST_TEST(num(d, "total") == static_cast<std::int64_t>(v1.size()));
        BOOST_TEST(str(d, "sha256") == v1_sha);
        BOOST_TEST(same_bytes(d.body, v1));
        const auto st = stat_file(reader, "doc.bin");
        BOOST_TEST(str(st, "sha256") == v1_sha);
        BOOST_TEST(num(st, "total") == static_cast<std::int64_t>(v1.size()));
        BOOST_TEST(list_sizes(reader)["doc.bin"] == v1.size());
    }
    BOOST_TEST(same_bytes(read_file(folder / "doc.bin"), v1));

    // The rest: the new version replaces the old at once.
    send_pattern(writer, p2, v2_size / 2, v2_size);
    check_upload_ok(writer.receive(), "doc.bin", v2_size, v2_sha);
    const auto d = download(reader, "doc.bin");
    BOOST_TEST(str(d, "sha256") == v2_sha);
    BOOST_TEST(same_bytes(d.body, p2.bytes(0, v2_size)));
    BOOST_TEST(str(stat_file(reader, "doc.bin"), "sha256") == v2_sha);
    BOOST_TEST(blobs_in(folder).empty());
}

BOOST_AUTO_TEST_CASE(a_download_started_before_a_replace_gets_the_old_version_whole, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto writer = user_session(fxd.tcp_port(), "alice");
    const pattern p1{201};
    const std::uint64_t v1_size = 48 * MiB; // more than the socket buffers hold
    const std::string v1_sha = p1.sha(v1_size);
    writer.send_raw(upload_prefix("big.bin", v1_size, std::nullopt, v1_sha));
    send_pattern(writer, p1, 0, v1_size);
    check_upload_ok(writer.receive(), "big.bin", v1_size, v1_sha);

    // Start a download and read only its header and a little of the body.
    connection reader = login_session(fxd.tcp_port(), "alice");
    reader.send({{"op", "download"}, {"name", "big.bin"}});
    const auto header = read_reply_header(reader);
    BOOST_TEST(json_str(header, "sha256") == v1_sha);
    sha256_hasher h;
    const std::string first = reader.receive_exact(1024);
    h.update(first);

    // Replace and then delete the file meanwhile.
    check_upload_ok(upload(writer, "big.bin", "tiny"), "big.bin", 4, sha256_of("tiny"));
    check_ok(delete_file(writer, "big.bin"), "delete");

    // The download goes on with the old bytes, whole.
    std::uint64_t got = first.size();
    while (got < v1_size) {
        const auto piece = reader.receive_exact(static_cast<std::size_t>(std::min<std::uint64_t>(MiB, v1_size - got)));
        h.update(piece);
        got += piece.size();
    }
    BOOST_TEST(h.finish_hex() == v1_sha);
    check_usable(reader);
}

BOOST_AUTO_TEST_CASE(two_concurrent_uploads_of_one_name_both_succeed_and_one_wins_whole, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto a = user_session(fxd.tcp_port(), "alice");
    auto b = login_session(fxd.tcp_port(), "alice");
    const pattern pa{301};
    const pattern pb{302};
    const std::uint64_t size_a = 2 * MiB;
    const std::uint64_t size_b = 3 * MiB + 1;
    const std::string sha_a = pa.sha(size_a);
    const std::string sha_b = pb.sha(size_b);

    a.send_raw(upload_prefix("same.bin", size_a, std::nullopt, sha_a));
    b.send_raw(upload_prefix("same.bin", size_b, std::nullopt, sha_b));
    send_pattern(a, pa, 0, MiB);
    send_pattern(b, pb, 0, MiB);
    const auto folder = user_folder(fxd, "alice");
    BOOST_TEST(eventually([&] {
        const auto blobs = blobs_in(folder);
        return blobs.size() == 2 && file_size_of(blobs[0]) >= MiB && file_size_of(blobs[1]) >= MiB;
    }));
    send_pattern(b, pb, MiB, size_b);
    send_pattern(a, pa, MiB, size_a);
    check_upload_ok(b.receive(), "same.bin", size_b, sha_b);
    check_upload_ok(a.receive(), "same.bin", size_a, sha_a);

    const auto d = download(a, "same.bin");
    const std::string sha = sha256_of(d.body);
    BOOST_TEST((sha == sha_a || sha == sha_b), "the stored file is neither upload whole: " << d.body.size() << " bytes");
    BOOST_TEST(str(d, "sha256") == sha);
    BOOST_TEST(str(stat_file(b, "same.bin"), "sha256") == sha);
    BOOST_TEST((list_sizes(a) == std::map<std::string, std::uint64_t>{{"same.bin", d.body.size()}}));
    BOOST_TEST(same_bytes(read_file(folder / "same.bin"), d.body));
    BOOST_TEST(eventually([&] { return blobs_in(folder).empty(); }));
    BOOST_TEST(num(stat_file(a, "same.bin"), "partial") == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Interrupted uploads, offsets ----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_resume)

BOOST_AUTO_TEST_CASE(an_interrupted_upload_is_kept_as_a_partial_and_resumes_to_the_whole_file, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::uint64_t total = 3 * MiB + 5;
    const std::uint64_t cut = MiB + 3;
    const pattern p{401};
    const std::string whole = p.bytes(0, total);
    const std::string sha = sha256_of(whole);

    interrupt_upload(fxd, "alice", "res.bin", whole, cut, sha);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "res.bin"), "partial") == static_cast<std::int64_t>(cut); }));
    const auto st = stat_file(conn, "res.bin");
    BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
    BOOST_TEST(st.ok());
    BOOST_TEST(flag(st, "exists") == 0);
    BOOST_TEST(!st.header.contains("sha256"));
    BOOST_TEST(!st.header.contains("total"));
    check_error(download(conn, "res.bin"), "download", "not_found");
    BOOST_TEST(list_names(conn).empty());
    // stats' totals follow the catalog a moment later.
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 1; }));

    const auto r = upload_resume(conn, "res.bin", whole, cut, sha);
    check_upload_ok(r, "res.bin", total, sha);
    const auto d = download(conn, "res.bin");
    BOOST_TEST(same_bytes(d.body, whole));
    BOOST_TEST(str(d, "sha256") == sha);
    const auto after = stat_file(conn, "res.bin");
    BOOST_TEST(flag(after, "exists") == 1);
    BOOST_TEST(num(after, "partial") == 0);
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 0);
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
}

BOOST_AUTO_TEST_CASE(an_upload_interrupted_twice_resumes_in_steps_and_hashes_the_whole_file, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string whole = pattern{402}.bytes(0, 2 * MiB + 77);
    const std::uint64_t first = 300001;
    const std::uint64_t second = MiB + 12345;

    interrupt_upload(fxd, "alice", "steps.bin", whole, first, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "steps.bin"), "partial") == static_cast<std::int64_t>(first); }));
    {
        // The second attempt resumes, then is cut again.
        auto c2 = login_session(fxd.tcp_port(), "alice");
        c2.send_raw(upload_prefix("steps.bin", whole.size(), first, std::nullopt) +
                    whole.substr(first, second - first));
        BOOST_TEST(eventually([&] { return largest_blob(user_folder(fxd, "alice")) == second; }));
    }
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "steps.bin"), "partial") == static_cast<std::int64_t>(second); }));
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).size() == 1u);
    // No sha256 sent: the reply's still covers every byte, not just the last piece.
    const auto r = upload_resume(conn, "steps.bin", whole, second, std::nullopt);
    check_upload_ok(r, "steps.bin", whole.size(), sha256_of(whole));
    BOOST_TEST(same_bytes(download(conn, "steps.bin").body, whole));
}

BOOST_AUTO_TEST_CASE(an_interrupted_replacement_keeps_the_old_version_and_reports_the_partial, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v1 = pattern{403}.bytes(0, 123456);
    const std::string v2 = pattern{404}.bytes(0, 2 * MiB);
    check_upload_ok(upload(conn, "doc.bin", v1), "doc.bin", v1.size(), sha256_of(v1));

    interrupt_upload(fxd, "alice", "doc.bin", v2, 777777, sha256_of(v2));
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "doc.bin"), "partial") == 777777; }));
    const auto st = stat_file(conn, "doc.bin");
    BOOST_TEST_INFO("stat reply: " << json::serialize(st.header));
    BOOST_TEST(flag(st, "exists") == 1);
    BOOST_TEST(num(st, "total") == static_cast<std::int64_t>(v1.size()));
    BOOST_TEST(str(st, "sha256") == sha256_of(v1));
    BOOST_TEST(same_bytes(download(conn, "doc.bin").body, v1));
    BOOST_TEST(list_sizes(conn)["doc.bin"] == v1.size());

    check_upload_ok(upload_resume(conn, "doc.bin", v2, 777777, sha256_of(v2)), "doc.bin", v2.size(), sha256_of(v2));
    BOOST_TEST(same_bytes(download(conn, "doc.bin").body, v2));
    BOOST_TEST(num(stat_file(conn, "doc.bin"), "partial") == 0);
}

BOOST_AUTO_TEST_CASE(a_fresh_upload_over_a_partial_replaces_it, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v = pattern{405}.bytes(0, 500000);
    interrupt_upload(fxd, "alice", "p.bin", v, 200000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p.bin"), "partial") == 200000; }));
    const std::string other = pattern{406}.bytes(0, 1000);
    check_upload_ok(upload(conn, "p.bin", other), "p.bin", other.size(), sha256_of(other));
    BOOST_TEST(same_bytes(download(conn, "p.bin").body, other));
    BOOST_TEST(num(stat_file(conn, "p.bin"), "partial") == 0);
    BOOST_TEST(eventually([&] { return blobs_in(user_folder(fxd, "alice")).empty(); }));
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 0);
}

BOOST_AUTO_TEST_CASE(delete_of_a_name_with_only_a_partial_removes_the_partial, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string v = pattern{407}.bytes(0, 300000);
    interrupt_upload(fxd, "alice", "p.bin", v, 100000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p.bin"), "partial") == 100000; }));
    check_ok(delete_file(conn, "p.bin"), "delete");
    check_error(stat_file(conn, "p.bin"), "stat", "not_found");
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    const auto r = upload_resume(conn, "p.bin", v, 100000, std::nullopt);
    check_error(r, "upload", "bad_offset");
    BOOST_TEST(num(r, "partial") == 0);
    check_error(delete_file(conn, "p.bin"), "delete", "not_found");
}

BOOST_AUTO_TEST_CASE(partials_older_than_partial_ttl_s_are_removed, *utf::timeout(120))
{
    daemon_process fxd(fast({"--set", "storage.partial_ttl_s=3"}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string whole = pattern{410}.bytes(0, 50000);
    interrupt_upload(fxd, "alice", "old.bin", whole, 20000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "old.bin"), "partial") == 20000; }));
    // Expiry runs periodically: the partial goes, its bytes too.
    BOOST_TEST(eventually([&] { return stat_file(conn, "old.bin").code() == "not_found"; }, 30s));
    BOOST_TEST(blobs_in(user_folder(fxd, "alice")).empty());
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 0; }));
    const auto r = upload_resume(conn, "old.bin", whole, 20000);
    check_error(r, "upload", "bad_offset");
    BOOST_TEST(num(r, "partial") == 0);
}

BOOST_AUTO_TEST_CASE(an_offset_other_than_the_partial_is_bad_offset_with_the_partial_held, *utf::timeout(120))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::string whole = pattern{408}.bytes(0, 300000);
    const std::uint64_t held = 100000;
    interrupt_upload(fxd, "alice", "p.bin", whole, held, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p.bin"), "partial") == static_cast<std::int64_t>(held); }));

    struct attempt {
        std::uint64_t size;
        std::uint64_t offset;
        const char* what;
    };
    const attempt wrong[] = {
        {whole.size(), held - 1, "one byte short"},
        {whole.size(), held + 1, "one byte past"},
        {whole.size(), 1, "offset 1"},
        {whole.size() + 1, held, "the right offset with another size"},
        {whole.size() - 1, held, "the right offset with a smaller size"},
    };
    for (const auto& w : wrong) {
        BOOST_TEST_CONTEXT(w.what)
        {
            const std::string body = pattern{409}.bytes(0, w.size - w.offset);
            conn.send_raw(upload_prefix("p.bin", w.size, w.offset, std::nullopt) + body);
            const auto r = conn.receive();
            check_error(r, "upload", "bad_offset");
            BOOST_TEST(num(r, "partial") == static_cast<std::int64_t>(held));
            check_usable(conn); // the rest-of-body was read and dropped
        }
    }
    // offset past size: bad_offset, nothing to send.
    conn.send_raw(upload_prefix("p.bin", 10, 11, std::nullopt));
    check_error(conn.receive(), "upload", "bad_offset");
    check_usable(conn);
    // Not an unsigned integer: bad_request.
    for (const json::value& bad : {json::value(-1), json::value("5"), json::value(1.5), json::value(nullptr)}) {
        BOOST_TEST_CONTEXT("offset " << json::serialize(bad))
        {
            json::object h{{"op", "upload"}, {"name", "p.bin"}, {"offset", bad}};
            check_error(conn.call(h, "abc"), "upload", "bad_request");
            check_usable(conn);
        }
    }
    // A name with no partial: bad_offset with partial 0.
    const auto none = upload_resume(conn, "other.bin", whole, 5, std::nullopt);
    check_error(none, "upload", "bad_offset");
    BOOST_TEST(num(none, "partial") == 0);
    check_error(stat_file(conn, "other.bin"), "stat", "not_found");

    // All those refusals left the partial as it was: it still resumes.
    BOOST_TEST(num(stat_file(conn, "p.bin"), "partial") == static_cast<std::int64_t>(held));
    check_upload_ok(upload_resume(conn, "p.bin", whole, held, sha256_of(whole)), "p.bin", whole.size(), sha256_of(whole));
    BOOST_TEST(same_bytes(download(conn, "p.bin").body, whole));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Limits -------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_limits)

BOOST_AUTO_TEST_CASE(quota_exceeded_is_decided_before_any_byte_is_stored, *utf::timeout(120))
{
    const std::uint64_t quota = MiB;
    daemon_process fxd(fast({"--set", "storage.quota_bytes=" + std::to_string(quota)}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    const auto folder = user_folder(fxd, "alice");
    const std::string one = pattern{501}.bytes(0, 600000);
    const std::string two = pattern{502}.bytes(0, 500000);
    check_upload_ok(upload(conn, "one.bin", one), "one.bin", one.size(), sha256_of(one));

    check_error(upload(conn, "two.bin", two), "upload", "quota_exceeded");
    check_usable(conn);
    check_error(stat_file(conn, "two.bin"), "stat", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"one.bin"});
    BOOST_TEST(blobs_in(folder).empty());
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == one.size());

    // Exactly up to the quota is allowed; one byte more is not.
    const std::string rest = pattern{503}.bytes(0, quota - one.size());
    check_upload_ok(upload(conn, "rest.bin", rest), "rest.bin", rest.size(), sha256_of(rest));
    check_error(upload(conn, "byte.bin", "x"), "upload", "quota_exceeded");
    check_error(stat_file(conn, "byte.bin"), "stat", "not_found");

    // A declared size beyond the discard limit: the reply, then the connection closes.
    {
        connection big = login_session(fxd.tcp_port(), "alice");
        big.send_raw(upload_prefix("huge.bin", 64 * MiB, std::nullopt, std::nullopt));
        check_error(big.receive(), "upload", "quota_exceeded");
        BOOST_TEST(big.closed_by_peer());
    }
    check_error(stat_file(conn, "huge.bin"), "stat", "not_found");
    BOOST_TEST(blobs_in(folder).empty());

    // Deleting frees room.
    check_ok(delete_file(conn, "one.bin"), "delete");
    check_upload_ok(upload(conn, "two.bin", two), "two.bin", two.size(), sha256_of(two));

    // The quota is per user.
    auto bob = user_session(fxd.tcp_port(), "bob");
    const std::string full = pattern{504}.bytes(0, quota);
    check_upload_ok(upload(bob, "full.bin", full), "full.bin", full.size(), sha256_of(full));
    check_error(upload(bob, "more.bin", "y"), "upload", "quota_exceeded");
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == rest.size() + two.size() + full.size());
}

BOOST_AUTO_TEST_CASE(a_size_above_max_upload_bytes_is_body_too_large, *utf::timeout(60))
{
    daemon_process fxd(fast({"--set", "limits.max_upload_bytes=1000"}));
    auto conn = user_session(fxd.tcp_port(), "alice");
    check_error(upload(conn, "big.bin", std::string(1001, 'b')), "upload", "body_too_large");
    check_usable(conn);
    check_error(stat_file(conn, "big.bin"), "stat", "not_found");
    check_upload_ok(upload(conn, "fits.bin", std::string(1000, 'f')), "fits.bin", 1000, sha256_of(std::string(1000, 'f')));
    // A body bigger than limits.max_discard_bytes: the reply, then the connection closes.
    connection big = login_session(fxd.tcp_port(), "alice");
    big.send_raw(upload_prefix("big.bin", 32 * MiB, std::nullopt, std::nullopt));
    check_error(big.receive(), "upload", "body_too_large");
    BOOST_TEST(big.closed_by_peer());
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"fits.bin"});
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Hostile names -------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_names)

BOOST_AUTO_TEST_CASE(hostile_names_are_bad_name_for_every_op_and_create_nothing, *utf::timeout(180))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const fs::path outside = fs::temp_directory_path() / ("fxd-hostile-" + std::to_string(::getpid()));
    fs::remove_all(outside);
    const fs::path root = fxd.storage().parent_path();
    const auto before = tree_of(root);

    // JSON text of each name, written by hand so that escapes reach the daemon as sent.
    const std::vector<std::string> hostile{
        R"("../x")",
        "\"../../../../../../../../.." + outside.string() + "\"",
        R"("..\\x")",
        R"("..\/x")", // JSON's escaped slash: ../x
        R"("a/b")",
        R"("a\\b")",
        R"("/x")",
        "\"" + outside.string() + "\"",
        R"("x/../../y")",
        R"(".hidden")",
        R"(".blob-000000000000000000000000")",
        R"("..")",
        R"(".\u002e")", // ".." spelled with an escape
        R"(".")",
        R"("")",
        "\"" + std::string(256, 'a') + "\"",
        "\"" + repeat("é", 128) + "\"", // 128 characters, 256 bytes
        R"("a\u0000b")",
        R"("\u0000")",
        R"("a\nb")",
        R"("x\r\nFAKE log line")",
        R"("\ttab")",
        R"("a\u001bb")",
        R"("a\u007fb")",
        R"("/")",
        R"("\\")",
    };
    std::int64_t id = 0;
    for (const auto& name : hostile) {
        for (const std::string op : {"upload", "download", "stat", "delete"}) {
            BOOST_TEST_CONTEXT("op " << op << ", name " << show(name))
            {
                ++id;
                const std::string body = op == "upload" ? "hello" : "";
                const std::string header = R"({"op":")" + op + R"(","id":)" + std::to_string(id) + R"(,"name":)" + name +
                                           R"(,"size":)" + std::to_string(body.size()) + "}";
                conn.send_raw(raw_frame(header, body));
                const auto r = conn.receive();
                check_error(r, op, "bad_name");
                BOOST_TEST((r.header.contains("id") && r.header.at("id") == json::value(id)));
                check_usable(conn);
            }
        }
    }
    // A hostile resume too.
    conn.send_raw(raw_frame(R"({"op":"upload","name":"../x","size":10,"offset":5})", "12345"));
    check_error(conn.receive(), "upload", "bad_name");
    check_usable(conn);

    BOOST_TEST(tree_of(root) == before, boost::test_tools::per_element());
    BOOST_TEST(!fs::exists(outside));
    BOOST_TEST((!fs::exists(user_folder(fxd, "alice")) || folder_entries(user_folder(fxd, "alice")).empty()));
    BOOST_TEST(list_names(conn).empty());
}

BOOST_AUTO_TEST_CASE(names_with_c1_control_characters_are_bad_name_and_create_nothing, *utf::timeout(60))
{
    // U+0080..U+009F are control characters too (Unicode Cc; U+0085 NEXT LINE
    // is a line break to some tools): the contract forbids "other control characters".
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const fs::path root = fxd.storage().parent_path();
    const auto before = tree_of(root);
    for (const std::string name : {R"("a\u0085b")", R"("\u0080")", R"("x\u009fy")"}) {
        for (const std::string op : {"upload", "download", "stat", "delete"}) {
            BOOST_TEST_CONTEXT("op " << op << ", name " << show(name))
            {
                const std::string body = op == "upload" ? "hello" : "";
                const std::string header = R"({"op":")" + op + R"(","name":)" + name + R"(,"size":)" +
                                           std::to_string(body.size()) + "}";
                conn.send_raw(raw_frame(header, body));
                check_error(conn.receive(), op, "bad_name");
                check_usable(conn);
            }
        }
    }
    BOOST_TEST(tree_of(root) == before, boost::test_tools::per_element());
    BOOST_TEST(list_names(conn).empty());
}

BOOST_AUTO_TEST_CASE(names_in_invalid_utf8_are_bad_header_and_create_nothing, *utf::timeout(120))
{
    // The header must be UTF-8 JSON: a name in invalid UTF-8, or a lone
    // surrogate escape, makes the header itself bad (contract: bad_header,
    // connection closed).
    daemon_process fxd(fast());
    register_user(fxd.tcp_port(), "alice");
    const fs::path root = fxd.storage().parent_path();
    const auto before = tree_of(root);
    const std::vector<std::string> invalid{
        "\"\xff\"", "\"a\xfe\"", "\"\xc0\xaf\"", "\"\xc0\xae\xc0\xae\"", "\"\xed\xa0\x80\"", "\"a\x80\"", "\"\xc3\"",
        R"("\ud800")", R"("a\udfffb")",
    };
    for (const auto& name : invalid) {
        BOOST_TEST_CONTEXT("name " << show(name))
        {
            auto conn = login_session(fxd.tcp_port(), "alice");
            const std::string header = R"({"op":"upload","name":)" + name + R"(,"size":5})";
            conn.send_raw(raw_frame(header, "hello"));
            const auto r = conn.receive();
            BOOST_TEST_INFO("reply: " << json::serialize(r.header));
            BOOST_TEST(str(r, "status") == "error");
            BOOST_TEST(r.code() == "bad_header");
            BOOST_TEST(conn.closed_by_peer());
        }
    }
    BOOST_TEST(tree_of(root) == before, boost::test_tools::per_element());
    auto conn = login_session(fxd.tcp_port(), "alice");
    BOOST_TEST(list_names(conn).empty());
}

BOOST_AUTO_TEST_CASE(unusual_but_valid_names_round_trip, *utf::timeout(60))
{
    daemon_process fxd(fast());
    auto conn = user_session(fxd.tcp_port(), "alice");
    const std::vector<std::string> names{"x..y", "a.", "a..", "-dash", "~tilde", "C:", "%2e%2e", "spaces and (parens)",
                                         "日本語.txt", "emoji 🚀.bin", std::string(255, 'n'), repeat("é", 127) + "a"};
    for (const auto& name : names) {
        BOOST_TEST_CONTEXT("name " << show(name))
        {
            const std::string data = "data of " + name;
            check_upload_ok(upload(conn, name, data), name, data.size(), sha256_of(data));
            BOOST_TEST(download(conn, name).body == data);
            BOOST_TEST(read_file(user_folder(fxd, "alice") / name) == data);
        }
    }
    BOOST_TEST(list_names(conn).size() == names.size());
    for (const auto& name : names)
        check_ok(delete_file(conn, name), "delete");
    BOOST_TEST(folder_entries(user_folder(fxd, "alice")).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Stats --------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(files_stats)

BOOST_AUTO_TEST_CASE(stats_count_uploads_downloads_bytes_stored_and_partials, *utf::timeout(60))
{
    daemon_process fxd(fast());
    const auto s0 = stats_snapshot(fxd.tcp_port());
    for (const char* key : {"uploads_ok", "uploads_failed", "downloads_ok", "downloads_failed", "bytes_stored",
                            "partials_held"})
        BOOST_TEST(counter(s0, std::string("files.") + key) == 0u, key);

    auto conn = user_session(fxd.tcp_port(), "alice");
    check_upload_ok(upload(conn, "a", std::string(1000, 'a')), "a", 1000, sha256_of(std::string(1000, 'a')));
    check_upload_ok(upload(conn, "b", std::string(234, 'b')), "b", 234, sha256_of(std::string(234, 'b')));
    check_error(upload(conn, "c", "ccc", sha256_of("ddd")), "upload", "checksum_mismatch");
    BOOST_TEST(download(conn, "a").ok());
    BOOST_TEST(download(conn, "b", 100).ok());
    check_error(download(conn, "zzz"), "download", "not_found");
    interrupt_upload(fxd, "alice", "p", std::string(5000, 'p'), 2000, std::nullopt);
    BOOST_TEST(eventually([&] { return num(stat_file(conn, "p"), "partial") == 2000; }));
    // stats' totals follow the catalog a moment later.
    BOOST_TEST(eventually([&] { return counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 1; }));

    const auto s = stats_snapshot(fxd.tcp_port());
    BOOST_TEST_INFO("stats: " << json::serialize(s));
    BOOST_TEST(counter(s, "files.uploads_ok") == 2u);
    BOOST_TEST(counter(s, "files.uploads_failed") >= 1u); // the mismatch (an interrupted upload may count too)
    BOOST_TEST(counter(s, "files.downloads_ok") == 2u);
    BOOST_TEST(counter(s, "files.downloads_failed") == 1u);
    BOOST_TEST(counter(s, "files.bytes_stored") == 1234u);
    BOOST_TEST(counter(s, "files.partials_held") == 1u);

    check_ok(delete_file(conn, "a"), "delete");
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.bytes_stored") == 234u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Faults: a full disk, kill -9 -------------------------------------------------------

namespace {

/// First column of every row of a query, as text (opens the database read-only).
std::vector<std::string> sqlite_rows(const fs::path& db_path, const std::string& sql)
{
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        throw std::runtime_error("cannot open " + db_path.string() + ": " + why);
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
        const std::string why = sqlite3_errmsg(db);
        sqlite3_close(db);
        throw std::runtime_error("cannot run " + sql + ": " + why);
    }
    std::vector<std::string> rows;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const auto* text = sqlite3_column_text(stmt, 0);
        rows.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
}

/// The lines of a log that hold every one of the needles.
std::vector<std::string> log_lines_with(const std::string& log, const std::vector<std::string>& needles)
{
    std::vector<std::string> found;
    std::istringstream in(log);
    std::string line;
    while (std::getline(in, line)) {
        if (std::all_of(needles.begin(), needles.end(), [&](const auto& n) { return line.find(n) != std::string::npos; }))
            found.push_back(line);
    }
    return found;
}

} // namespace

BOOST_AUTO_TEST_SUITE(files_faults)

BOOST_AUTO_TEST_CASE(a_full_disk_is_storage_full_leaves_no_blob_and_the_daemon_serves_on, *utf::timeout(180))
{
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: mounting a small tmpfs needs root");
        return;
    }
    temp_dir dir;
    // The storage folder is the mount point itself (the daemon's log sits beside it, off the tmpfs).
    tmpfs_mount tiny(dir.path() / "storage", "2m");
    if (!tiny.mounted()) {
        BOOST_TEST_MESSAGE("skipped: cannot mount a 2 MiB tmpfs: " << tiny.error());
        return;
    }
    daemon_process fxd(fast(), dir.path() / "storage");
    auto conn = user_session(fxd.tcp_port(), "alice");
    const auto folder = user_folder(fxd, "alice");
    const std::string keep = pattern{601}.bytes(0, 512 * 1024);
    check_upload_ok(upload(conn, "keep.bin", keep), "keep.bin", keep.size(), sha256_of(keep));

    // 4 MiB cannot fit in 2 MiB.
    {
        const pattern big{602};
        const std::uint64_t size = 4 * MiB;
        auto writer = login_session(fxd.tcp_port(), "alice");
        writer.send_raw(upload_prefix("big.bin", size, std::nullopt, big.sha(size)));
        const auto sent = send_pattern_until_answer(writer, big, 0, size);
        BOOST_TEST_MESSAGE("sent " << sent << " of " << size << " body bytes before the daemon answered");
        check_error(writer.receive(), "upload", "storage_full");
    }

    // The daemon serves on, on old and new connections alike.
    check_usable(conn);
    {
        connection fresh(localhost, fxd.tcp_port());
        check_usable(fresh);
    }
    BOOST_TEST(eventually([&] { return blobs_in(folder).empty(); }), "an upload blob was left behind");
    check_error(stat_file(conn, "big.bin"), "stat", "not_found");
    BOOST_TEST(list_names(conn) == std::vector<std::string>{"keep.bin"});
    const auto d = download(conn, "keep.bin");
    BOOST_TEST(same_bytes(d.body, keep));
    BOOST_TEST(str(d, "sha256") == sha256_of(keep));
    BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.uploads_failed") >= 1u);

    // A small upload fits; after a delete, a larger one does too.
    const std::string small = pattern{603}.bytes(0, 10000);
    check_upload_ok(upload(conn, "small.bin", small), "small.bin", small.size(), sha256_of(small));
    check_ok(delete_file(conn, "keep.bin"), "delete");
    const std::string after = pattern{604}.bytes(0, MiB);
    check_upload_ok(upload(conn, "after.bin", after), "after.bin", after.size(), sha256_of(after));
    BOOST_TEST(same_bytes(download(conn, "after.bin").body, after));
    BOOST_TEST(same_bytes(download(conn, "small.bin").body, small));
    BOOST_TEST(blobs_in(folder).empty());

    // A resumed upload whose rest no longer fits: storage_full before any byte
    // moves, and the partial stays for a later resume.
    {
        const std::string whole = pattern{605}.bytes(0, 600 * 1024);
        interrupt_upload(fxd, "alice", "resumed.bin", whole, 100000, std::nullopt);
        BOOST_TEST(eventually([&] { return num(stat_file(conn, "resumed.bin"), "partial") == 100000; }));
        const std::string filler = pattern{606}.bytes(0, 400 * 1024);
        check_upload_ok(upload(conn, "filler.bin", filler), "filler.bin", filler.size(), sha256_of(filler));
        auto writer = login_session(fxd.tcp_port(), "alice");
        writer.send_raw(upload_prefix("resumed.bin", whole.size(), 100000, std::nullopt));
        send_pattern_until_answer(writer, pattern{605}, 100000, whole.size());
        check_error(writer.receive(), "upload", "storage_full");
        BOOST_TEST(num(stat_file(conn, "resumed.bin"), "partial") == 100000);
        check_ok(delete_file(conn, "filler.bin"), "delete");
    }

    // Two uploads that each fit but not together: the disk fills mid-body.
    // Whatever is refused is storage_full with nothing stored; whatever is
    // accepted reads back whole.
    {
        const pattern first{607}, second{608};
        const std::uint64_t size = 500 * 1024;
        auto a = login_session(fxd.tcp_port(), "alice");
        auto b = login_session(fxd.tcp_port(), "alice");
        const auto blobs_before = blobs_in(folder).size(); // the partial of resumed.bin
        a.send_raw(upload_prefix("race-a.bin", size, std::nullopt, first.sha(size)));
        b.send_raw(upload_prefix("race-b.bin", size, std::nullopt, second.sha(size)));
        a.send_raw(first.bytes(0, 1024));
        b.send_raw(second.bytes(0, 1024));
        // Both admitted (space forecast for each alone) before either body goes on.
        BOOST_TEST_REQUIRE(eventually([&] { return blobs_in(folder).size() == blobs_before + 2; }));
        std::vector<std::string> codes;
        const std::tuple<connection*, const pattern*, const char*> racers[] = {{&a, &first, "race-a.bin"},
                                                                              {&b, &second, "race-b.bin"}};
        for (const auto& [writer, p, name] : racers) {
            send_pattern_until_answer(*writer, *p, 1024, size);
            const auto r = writer->receive();
            codes.push_back(r.ok() ? "ok" : r.code());
            if (r.ok())
                BOOST_TEST(same_bytes(download(conn, name).body, p->bytes(0, size)));
            else
                check_error(stat_file(conn, name), "stat", "not_found");
        }
        BOOST_TEST_INFO("replies: " << codes[0] << ", " << codes[1]);
        BOOST_TEST((std::count(codes.begin(), codes.end(), "storage_full") >= 1));
        BOOST_TEST((std::count(codes.begin(), codes.end(), "ok") + std::count(codes.begin(), codes.end(), "storage_full") == 2));
    }
    check_usable(conn);
    BOOST_TEST(eventually([&] { return blobs_in(folder).size() == 1; }), "an upload blob was left behind (only the partial of resumed.bin may stay)");
    BOOST_TEST(same_bytes(download(conn, "after.bin").body, after));
}

BOOST_AUTO_TEST_CASE(kill_9_mid_upload_leaves_whole_files_and_a_resumable_partial, *utf::timeout(300))
{
    temp_dir dir;
    const auto storage = dir.path() / "storage";
    const std::string a = pattern{701}.bytes(0, MiB);
    const std::string b = pattern{702}.bytes(0, 2 * MiB + 9);
    const std::string c1 = pattern{703}.bytes(0, MiB / 2);
    const pattern c2{704};
    const std::uint64_t c2_size = 8 * MiB;
    const std::uint64_t c2_cut = 3 * MiB;
    const pattern d{705};
    const std::uint64_t d_size = 4 * MiB + 1;
    const std::uint64_t d_cut = MiB + 7;
    const std::string c2_sha = c2.sha(c2_size);
    const std::string d_sha = d.sha(d_size);
    const std::map<std::string, std::string> whole_before{{"a.bin", a}, {"b.bin", b}, {"c.bin", c1}};

    {
        daemon_process fxd(fast(), storage);
        auto conn = user_session(fxd.tcp_port(), "alice");
        for (const auto& [name, data] : whole_before)
            check_upload_ok(upload(conn, name, data, sha256_of(data)), name, data.size(), sha256_of(data));
        // Two uploads in flight: a replacement of c.bin and a new d.bin.
        auto cw = login_session(fxd.tcp_port(), "alice");
        cw.send_raw(upload_prefix("c.bin", c2_size, std::nullopt, c2_sha));
        send_pattern(cw, c2, 0, c2_cut);
        auto dw = login_session(fxd.tcp_port(), "alice");
        dw.send_raw(upload_prefix("d.bin", d_size, std::nullopt, std::nullopt));
        send_pattern(dw, d, 0, d_cut);
        const auto folder = user_folder(fxd, "alice");
        BOOST_TEST(eventually([&] {
            std::vector<std::uint64_t> sizes;
            for (const auto& blob : blobs_in(folder))
                sizes.push_back(file_size_of(blob));
            std::sort(sizes.begin(), sizes.end());
            return sizes == std::vector<std::uint64_t>{d_cut, c2_cut};
        }), "the daemon never held both uploads' bytes");
        fxd.signal(SIGKILL);
        const auto status = fxd.wait_exit(10s);
        BOOST_TEST((status && *status == 128 + SIGKILL));
    }

    {
        daemon_process fxd(fast(), storage);
        const auto log = fxd.log();
        BOOST_TEST_INFO("daemon log:\n" << log);
        BOOST_TEST(log_lines_with(log, {"storage repaired:", "c.bin", std::to_string(c2_cut)}).size() == 1u);
        BOOST_TEST(log_lines_with(log, {"storage repaired:", "d.bin", std::to_string(d_cut)}).size() == 1u);

        auto conn = login_session(fxd.tcp_port(), "alice");
        // Only whole files are listed, each with its own bytes and hash.
        std::map<std::string, std::uint64_t> want_sizes;
        for (const auto& [name, data] : whole_before)
            want_sizes[name] = data.size();
        BOOST_TEST((list_sizes(conn) == want_sizes));
        for (const auto& [name, data] : whole_before) {
            BOOST_TEST_CONTEXT("file " << name)
            {
                const auto st = stat_file(conn, name);
                BOOST_TEST(flag(st, "exists") == 1);
                BOOST_TEST(str(st, "sha256") == sha256_of(data));
                const auto dl = download(conn, name);
                BOOST_TEST(str(dl, "sha256") == sha256_of(data));
                BOOST_TEST(same_bytes(dl.body, data));
            }
        }
        const auto folder = user_folder(fxd, "alice");
        std::vector<std::string> visible;
        for (const auto& entry : folder_entries(folder)) {
            if (!entry.starts_with("."))
                visible.push_back(entry);
        }
        BOOST_TEST(visible == (std::vector<std::string>{"a.bin", "b.bin", "c.bin"}), boost::test_tools::per_element());
        BOOST_TEST(same_bytes(read_file(folder / "c.bin"), c1));

        // The interrupted bytes are partials.
        const auto sc = stat_file(conn, "c.bin");
        BOOST_TEST_INFO("stat c.bin: " << json::serialize(sc.header));
        BOOST_TEST(flag(sc, "exists") == 1);
        BOOST_TEST(num(sc, "total") == static_cast<std::int64_t>(c1.size()));
        BOOST_TEST(num(sc, "partial") == static_cast<std::int64_t>(c2_cut));
        const auto sd = stat_file(conn, "d.bin");
        BOOST_TEST_INFO("stat d.bin: " << json::serialize(sd.header));
        BOOST_TEST(flag(sd, "exists") == 0);
        BOOST_TEST(num(sd, "partial") == static_cast<std::int64_t>(d_cut));
        check_error(download(conn, "d.bin"), "download", "not_found");
        BOOST_TEST(counter(stats_snapshot(fxd.tcp_port()), "files.partials_held") == 2u);

        // Both resume to the right whole file.
        conn.send_raw(upload_prefix("c.bin", c2_size, c2_cut, c2_sha));
        send_pattern(conn, c2, c2_cut, c2_size);
        check_upload_ok(conn.receive(), "c.bin", c2_size, c2_sha);
        conn.send_raw(upload_prefix("d.bin", d_size, d_cut, std::nullopt));
        send_pattern(conn, d, d_cut, d_size);
        check_upload_ok(conn.receive(), "d.bin", d_size, d_sha);
        const auto dc = download_streamed(conn, "c.bin");
        BOOST_TEST(dc.bytes == c2_size);
        BOOST_TEST(dc.sha == c2_sha);
        const auto dd = download_streamed(conn, "d.bin");
        BOOST_TEST(dd.bytes == d_size);
        BOOST_TEST(dd.sha == d_sha);
        BOOST_TEST(num(stat_file(conn, "c.bin"), "partial") == 0);
        BOOST_TEST(num(stat_file(conn, "d.bin"), "partial") == 0);
        BOOST_TEST(blobs_in(folder).empty());
        BOOST_TEST(list_names(conn) == (std::vector<std::string>{"a.bin", "b.bin", "c.bin", "d.bin"}),
                   boost::test_tools::per_element());

        fxd.signal(SIGTERM);
        const auto status = fxd.wait_exit(30s);
        BOOST_TEST((status && *status == 0));
    }

    // The database itself is sound and agrees with the folder.
    const auto db = storage / "fxd.db";
    BOOST_TEST(sqlite_rows(db, "PRAGMA integrity_check") == std::vector<std::string>{"ok"});
    BOOST_TEST(sqlite_rows(db, "SELECT count(*) FROM uploads") == std::vector<std::string>{"0"});
    BOOST_TEST(sqlite_rows(db, "SELECT count(*) FROM partials") == std::vector<std::string>{"0"});
    BOOST_TEST(sqlite_rows(db, "SELECT CAST(name AS TEXT) || ':' || size FROM files WHERE user = 'alice' ORDER BY name") ==
                   (std::vector<std::string>{"a.bin:" + std::to_string(a.size()), "b.bin:" + std::to_string(b.size()),
                                             "c.bin:" + std::to_string(c2_size), "d.bin:" + std::to_string(d_size)}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
