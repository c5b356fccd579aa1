#include "files.hpp"

#include "wire.hpp"

#include <fxd/util/sha256.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <sqlite3.h>

#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fxd::test {

namespace fs = std::filesystem;
namespace json = boost::json;
using client::connection;
using client::reply;


std::string sha256_of(std::string_view bytes)
{
    return util::sha256_hex(bytes);
}

namespace {

std::uint64_t mix(std::uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

} // namespace

void pattern::fill(std::uint64_t offset, char* out, std::size_t n) const
{
    std::size_t i = 0;
    while (i < n) {
        const std::uint64_t pos = offset + i;
        const std::uint64_t word = mix(seed * 0x2545F4914F6CDD1DULL ^ (pos / 8));
        for (unsigned k = static_cast<unsigned>(pos % 8); k < 8 && i < n; ++k, ++i)
            out[i] = static_cast<char>((word >> (8 * k)) & 0xFF);
    }
}

std::string pattern::bytes(std::uint64_t offset, std::size_t n) const
{
    std::string s(n, '\0');
    fill(offset, s.data(), n);
    return s;
}

std::string pattern::sha(std::uint64_t total) const
{
    util::sha256 h;
    std::string chunk;
    for (std::uint64_t at = 0; at < total; at += MiB) {
        chunk = bytes(at, static_cast<std::size_t>(std::min<std::uint64_t>(MiB, total - at)));
        h.update(chunk);
    }
    return h.finish_hex();
}

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

int flag(const reply& r, std::string_view key)
{
    const auto* v = r.header.if_contains(key);
    if (!v || !v->is_bool())
        return -1;
    return v->get_bool() ? 1 : 0;
}

void check_ok(const reply& r, std::string_view op)
{
    BOOST_TEST_INFO("reply header: " << json::serialize(r.header));
    BOOST_TEST(str(r, "status") == "ok");
    BOOST_TEST(str(r, "op") == op);
}

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

connection login_session(std::uint16_t port, const std::string& user, std::chrono::milliseconds timeout)
{
    connection conn(localhost, port, timeout);
    const auto r = conn.call({{"op", "login"}, {"user", user}, {"password", password_of(user)}});
    BOOST_REQUIRE_MESSAGE(r.ok(), "login " << user << ": " << json::serialize(r.header));
    return conn;
}

connection user_session(std::uint16_t port, const std::string& user, std::chrono::milliseconds timeout)
{
    register_user(port, user);
    return login_session(port, user, timeout);
}

std::string upload_prefix(std::string_view name, std::uint64_t total, std::optional<std::uint64_t> offset,
                          const std::optional<std::string>& sha)
{
    json::object h{{"op", "upload"}, {"name", name}, {"size", total}};
    if (offset)
        h["offset"] = *offset;
    if (sha)
        h["sha256"] = *sha;
    const std::string text = json::serialize(h);
    return be32(static_cast<std::uint32_t>(text.size())) + text;
}

reply upload(connection& conn, std::string_view name, std::string_view data, const std::optional<std::string>& sha)
{
    conn.send_raw(upload_prefix(name, data.size(), std::nullopt, sha));
    conn.send_raw(data);
    return conn.receive();
}

reply upload_resume(connection& conn, std::string_view name, std::string_view whole, std::uint64_t offset,
                    const std::optional<std::string>& sha)
{
    conn.send_raw(upload_prefix(name, whole.size(), offset, sha));
    conn.send_raw(whole.substr(static_cast<std::size_t>(offset)));
    return conn.receive();
}

void send_pattern(connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to)
{
    std::string chunk;
    for (std::uint64_t at = from; at < to; at += MiB) {
        chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(MiB, to - at)));
        p.fill(at, chunk.data(), chunk.size());
        conn.send_raw(chunk);
    }
}

void send_pattern_in_small_pieces(connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to)
{
    constexpr std::array<std::size_t, 6> sizes{1, 7, 4097, 65521, 12345, 30011};
    std::string chunk;
    std::uint64_t at = from;
    for (std::size_t i = 0; at < to; ++i) {
        chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(sizes[i % sizes.size()], to - at)));
        p.fill(at, chunk.data(), chunk.size());
        conn.send_raw(chunk);
        at += chunk.size();
        if (i % 64 == 63)
            std::this_thread::sleep_for(1ms);
    }
}

std::uint64_t send_pattern_until_answer(connection& conn, const pattern& p, std::uint64_t from, std::uint64_t to)
{
    constexpr std::uint64_t piece = 64 * 1024;
    std::string chunk;
    std::uint64_t at = from;
    while (at < to) {
        if (has_data_now(conn))
            break;
        chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(piece, to - at)));
        p.fill(at, chunk.data(), chunk.size());
        if (!send_tolerant(conn, chunk))
            break;
        at += chunk.size();
    }
    return at - from;
}

reply download(connection& conn, std::string_view name, std::optional<std::uint64_t> offset)
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

streamed_download download_streamed(connection& conn, std::string_view name)
{
    conn.send({{"op", "download"}, {"name", name}});
    streamed_download d;
    d.header = conn.receive_header().header;
    d.ok = str(d.header, "status") == "ok";
    const std::uint64_t size = d.header.at("size").to_number<std::uint64_t>();
    util::sha256 h;
    conn.receive_body(size, [&](std::span<const char> piece) {
        h.update(std::string_view(piece.data(), piece.size()));
        d.bytes += piece.size();
    });
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

fs::path user_folder(const daemon_process& fxd, const std::string& user)
{
    return fxd.storage() / "users" / user;
}

std::string read_file(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& path, std::string_view bytes)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f)
        throw std::runtime_error("cannot write " + path.string());
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

tmpfs_mount::tmpfs_mount(fs::path at, const std::string& size) : at_(std::move(at))
{
    fs::create_directories(at_);
    const std::string options = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", at_.c_str(), "tmpfs", 0, options.c_str()) == 0)
        mounted_ = true;
    else
        error_ = std::strerror(errno);
}

tmpfs_mount::~tmpfs_mount()
{
    if (mounted_)
        ::umount2(at_.c_str(), MNT_DETACH);
}

boost::test_tools::assertion_result can_mount_tmpfs(boost::unit_test::test_unit_id)
{
    if (::geteuid() != 0) {
        boost::test_tools::assertion_result no(false);
        no.message() << "needs root (it mounts a tmpfs)";
        return no;
    }
    const temp_dir dir;
    const tmpfs_mount trial(dir.path() / "trial", "1m");
    boost::test_tools::assertion_result able(trial.mounted());
    if (!able)
        able.message() << "cannot mount a tmpfs: " << trial.error();
    return able;
}

} // namespace fxd::test
