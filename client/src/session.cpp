#include <fxd/client/session.hpp>
#include <fxd/util/sha256.hpp>
#include <fxd/util/unique_fd.hpp>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/crypto.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace fxd::client {

namespace fs = std::filesystem;
namespace json = boost::json;
using util::unique_fd;
using clock_type = std::chrono::steady_clock;

namespace {

std::string string_of(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::uint64_t uint_of(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    if (!v)
        return 0;
    if (v->is_uint64())
        return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0)
        return static_cast<std::uint64_t>(v->get_int64());
    return 0;
}

std::int64_t int_of(const json::object& o, std::string_view key)
{
    const auto* v = o.if_contains(key);
    if (!v)
        return 0;
    if (v->is_int64())
        return v->get_int64();
    if (v->is_uint64())
        return static_cast<std::int64_t>(v->get_uint64());
    return 0;
}

[[noreturn]] void local_fail(const std::string& what, const fs::path& path, int err)
{
    throw local_file_error(what + " " + path.string() + ": " + std::strerror(err));
}

double seconds_since(clock_type::time_point start)
{
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

} // namespace

server_error::server_error(std::string op, json::object header)
    : std::runtime_error(op + ": " + string_of(header, "code") + ": " + string_of(header, "message")),
      op_(std::move(op)),
      code_(string_of(header, "code")),
      message_(string_of(header, "message")),
      header_(std::move(header))
{
}

fs::path part_path(const fs::path& file)
{
    fs::path p = file;
    p += ".part";
    return p;
}

session::session(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : session(std::move(host), port, tls_options{}, timeout)
{
}

session::session(std::string host, std::uint16_t port, tls_options tls, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout), tls_(std::move(tls))
{
    conn_.emplace(host_, port_, tls_, timeout_);
}

session::~session()
{
    if (credentials_)
        OPENSSL_cleanse(credentials_->secret.data(), credentials_->secret.size());
}

void session::remember_credentials(credentials c)
{
    if (credentials_)
        OPENSSL_cleanse(credentials_->secret.data(), credentials_->secret.size());
    credentials_ = std::move(c);
}

session::session(session&&) noexcept = default;
session& session::operator=(session&&) noexcept = default;

void session::reconnect()
{
    conn_.reset();
    broken_ = false;
    conn_.emplace(host_, port_, tls_, timeout_);
    if (credentials_) {
        const auto& c = *credentials_;
        const auto r = conn_->call({{"op", "login"}, {"user", c.user}, {c.is_token ? "token" : "password", c.secret}});
        if (!r.ok()) {
            remember_credentials({});
            credentials_.reset();
            throw server_error("login", r.header);
        }
    }
}

void session::ensure_connected()
{
    if (!conn_ || broken_)
        reconnect();
}

connection& session::conn()
{
    ensure_connected();
    return *conn_;
}

template <class F>
auto session::guarded(F&& f) -> decltype(f())
{
    ensure_connected();
    try {
        return f();
    } catch (const connection_error&) {
        broken_ = true;
        throw;
    }
}

reply session::call(json::object header, std::string_view body)
{
    return guarded([&] { return conn_->call(std::move(header), body); });
}

reply session::request(json::object header, std::string_view body)
{
    std::string op = string_of(header, "op");
    auto r = call(std::move(header), body);
    if (!r.ok())
        throw server_error(std::move(op), std::move(r.header));
    return r;
}

void session::ping()
{
    request({{"op", "ping"}});
}

json::object session::hello()
{
    return request({{"op", "hello"}}).header;
}

bool session::offers(std::string_view op)
{
    const auto h = hello();
    const auto* ops = h.if_contains("ops");
    if (!ops || !ops->is_array())
        return false;
    const auto& a = ops->get_array();
    return std::any_of(a.begin(), a.end(), [&](const json::value& v) { return v.is_string() && v.get_string() == op; });
}

std::string session::echo(std::string_view text)
{
    return request({{"op", "echo"}}, text).body;
}

std::string session::register_user(const std::string& user, const std::string& password)
{
    return string_of(request({{"op", "register"}, {"user", user}, {"password", password}}).header, "user");
}

std::string session::login(const std::string& user, const std::string& password)
{
    const auto r = request({{"op", "login"}, {"user", user}, {"password", password}});
    remember_credentials({user, password, false});
    return string_of(r.header, "user");
}

session::remembered session::login_remembered(const std::string& user, const std::string& password)
{
    const auto r = request({{"op", "login"}, {"user", user}, {"password", password}, {"remember", true}});
    remembered out{string_of(r.header, "user"), string_of(r.header, "token"), int_of(r.header, "expires")};
    if (out.token.empty())
        throw connection_error("the server gave no token: it does not offer remembered logins");
    // Reconnections use the token: the password need not stay in memory.
    remember_credentials({user, out.token, true});
    return out;
}

std::string session::login_token(const std::string& user, const std::string& token)
{
    const auto r = request({{"op", "login"}, {"user", user}, {"token", token}});
    remember_credentials({user, token, true});
    return string_of(r.header, "user");
}

void session::logout()
{
    request({{"op", "logout"}});
    remember_credentials({});
    credentials_.reset();
}

bool session::revoke_token(const std::string& token)
{
    const auto r = request({{"op", "logout"}, {"token", token}});
    remember_credentials({});
    credentials_.reset();
    const auto* revoked = r.header.if_contains("revoked");
    return revoked && revoked->is_bool() && revoked->get_bool();
}

std::optional<std::string> session::whoami()
{
    const auto r = request({{"op", "whoami"}});
    const auto* user = r.header.if_contains("user");
    if (user && user->is_string())
        return std::string(user->get_string());
    return std::nullopt;
}

json::object session::stats()
{
    const auto r = request({{"op", "stats"}});
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (ec || !v.is_object())
        throw connection_error("stats body is not a JSON object");
    return std::move(v.get_object());
}

std::optional<file_stat> session::stat(const std::string& name)
{
    const auto r = call({{"op", "stat"}, {"name", name}});
    if (!r.ok()) {
        if (r.code() == "not_found")
            return std::nullopt;
        throw server_error("stat", r.header);
    }
    file_stat s;
    s.name = string_of(r.header, "name");
    const auto* exists = r.header.if_contains("exists");
    s.exists = exists && exists->is_bool() && exists->get_bool();
    if (s.exists) {
        s.size = uint_of(r.header, "total"); // "size" is the reply's body length, as in every reply
        s.sha256 = string_of(r.header, "sha256");
        s.mtime = int_of(r.header, "mtime");
    }
    s.partial = uint_of(r.header, "partial");
    return s;
}

std::vector<file_entry> session::list()
{
    const auto r = request({{"op", "list"}});
    boost::system::error_code ec;
    const auto v = json::parse(r.body, ec);
    if (ec || !v.is_array())
        throw connection_error("list body is not a JSON array");
    std::vector<file_entry> out;
    for (const auto& item : v.get_array()) {
        if (!item.is_object())
            continue;
        const auto& o = item.get_object();
        out.push_back({string_of(o, "name"), uint_of(o, "size"), int_of(o, "mtime")});
    }
    return out;
}

void session::remove(const std::string& name)
{
    request({{"op", "delete"}, {"name", name}});
}

upload_result session::upload(const fs::path& file, const std::string& name, const upload_options& options)
{
    unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        local_fail("cannot open", file, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        local_fail("cannot stat", file, errno);
    if (!S_ISREG(st.st_mode))
        throw local_file_error(file.string() + " is not a regular file");
    const auto total = static_cast<std::uint64_t>(st.st_size);
    // The contract takes whole seconds from 1970 on: an older file keeps the server's clock.
    std::optional<std::int64_t> mtime;
    if (options.send_mtime && st.st_mtime >= 0)
        mtime = static_cast<std::int64_t>(st.st_mtime);

    std::string sha;
    if (options.sha256) {
        sha = *options.sha256;
    } else {
        util::sha256 h;
        util::hash_file(fd.get(), total, h, options.hash_progress);
        sha = h.finish_hex();
    }

    std::uint64_t offset = 0;
    if (options.resume) {
        if (const auto held = stat(name); held && held->partial > 0 && held->partial <= total)
            offset = held->partial;
    }
    bool restarted = false;
    for (int attempt = 0;; ++attempt) {
        try {
            auto result = upload_once(fd.get(), total, sha, name, offset, mtime, options);
            result.restarted = restarted;
            return result;
        } catch (const server_error& e) {
            if (attempt >= 2)
                throw;
            if (e.code() == "bad_offset" && offset > 0) {
                // The partial changed since stat: take the one the server
                // reports when it fits this file, else send the whole file.
                const auto held = uint_of(e.header(), "partial");
                const auto next = options.resume && held > 0 && held <= total && held != offset ? held : 0;
                restarted = restarted || next == 0;
                offset = next;
            } else if (e.code() == "checksum_mismatch" && offset > 0) {
                // The partial held came from other bytes: send the whole file.
                restarted = true;
                offset = 0;
            } else {
                throw;
            }
        }
    }
}

upload_result session::upload_once(int fd, std::uint64_t total, const std::string& sha, const std::string& name,
                                   std::uint64_t offset, std::optional<std::int64_t> mtime,
                                   const upload_options& options)
{
    return guarded([&] {
        json::object header{{"op", "upload"}, {"name", name}, {"sha256", sha}};
        if (offset > 0)
            header["offset"] = offset;
        if (mtime)
            header["mtime"] = *mtime;
        const auto start = clock_type::now();
        // The contract's resumed upload: "size" stays the whole file's and the
        // body is the rest after "offset".
        conn_->send_header(std::move(header), total);
        std::uint64_t done = offset;
        if (options.progress)
            options.progress(done, total);
        const bool whole = conn_->send_file(fd, offset, total - offset, [&](std::span<const char> piece) {
            done += piece.size();
            if (options.progress)
                options.progress(done, total);
        });
        if (!whole)
            broken_ = true; // the body was cut short: this connection is out of step
        auto r = conn_->receive();
        if (!r.ok()) {
            // A refused body is discarded by the server only up to its
            // limits.max_discard_bytes, past which it closes the connection:
            // either way, the next request goes on a fresh one.
            if (total > offset)
                broken_ = true;
            throw server_error("upload", std::move(r.header));
        }
        if (!whole)
            throw connection_error("the server answered the upload before its body was sent");
        upload_result result;
        result.name = string_of(r.header, "name");
        result.size = total;
        result.sha256 = string_of(r.header, "sha256");
        result.resumed_from = offset;
        result.seconds = seconds_since(start);
        result.mtime = int_of(r.header, "mtime");
        if (result.sha256 != sha)
            throw checksum_error("the bytes the server stored hash to " + result.sha256 + " but the file's SHA-256 is " + sha);
        return result;
    });
}

namespace {

/// What a download may write to: nothing there, or a regular file. Anything
/// else (a symbolic link, FIFO, device, socket or folder) is refused, so a
/// download never writes through a link nor replaces one.
/// Returns whether a regular file is there.
bool check_local_target(const fs::path& path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return false;
        local_fail("cannot inspect", path, errno);
    }
    if (S_ISREG(st.st_mode))
        return true;
    const char* what = S_ISLNK(st.st_mode)    ? "a symbolic link"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISDIR(st.st_mode)  ? "a folder"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw local_file_error(path.string() + " is " + what +
                           ": fxc writes regular files only and never through or over anything else "
                           "(remove it, or name another file with -o)");
}

/// The SHA-256 of a regular local file, opened without following a link.
std::string local_sha256(const fs::path& path)
{
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
        local_fail("cannot open", path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        local_fail("cannot stat", path, errno);
    util::sha256 h;
    util::hash_file(fd.get(), static_cast<std::uint64_t>(st.st_size), h);
    return h.finish_hex();
}

void write_all(int fd, std::span<const char> piece, const fs::path& path)
{
    while (!piece.empty()) {
        const ssize_t n = ::write(fd, piece.data(), piece.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            local_fail("cannot write", path, errno);
        piece = piece.subspan(static_cast<std::size_t>(n));
    }
}

} // namespace

reply session::begin_download(const std::string& name, std::uint64_t offset)
{
    auto r = guarded([&] {
        json::object header{{"op", "download"}, {"name", name}};
        if (offset > 0)
            header["offset"] = offset;
        conn_->send(std::move(header));
        return conn_->receive_header();
    });
    if (!r.ok())
        guarded([&] { return conn_->receive_exact(uint_of(r.header, "size")); });
    return r;
}

download_result session::download_to(const std::string& name, const sink_fn& sink, const download_options& options)
{
    download_result result;
    result.name = name;
    const auto start = clock_type::now();
    auto r = begin_download(name, 0);
    if (!r.ok())
        throw server_error("download", std::move(r.header));
    const std::uint64_t total = uint_of(r.header, "total");
    const std::string expected = string_of(r.header, "sha256");
    util::sha256 hash;
    std::uint64_t done = 0;
    if (options.progress)
        options.progress(done, total);
    guarded([&] {
        conn_->receive_body(uint_of(r.header, "size"), [&](std::span<const char> piece) {
            hash.update(piece);
            try {
                sink(piece);
            } catch (...) {
                broken_ = true; // the rest of the body is still coming
                throw;
            }
            done += piece.size();
            if (options.progress)
                options.progress(done, total);
        });
        return 0;
    });
    result.seconds = seconds_since(start);
    result.size = total;
    result.mtime = int_of(r.header, "mtime");
    result.sha256 = hash.finish_hex();
    if (result.sha256 != expected)
        throw checksum_error("the bytes received hash to " + result.sha256 + " but the server's SHA-256 is " + expected);
    return result;
}

download_result session::download(const std::string& name, const fs::path& file, const download_options& options)
{
    const fs::path part = part_path(file);
    download_result result;
    result.name = name;
    result.path = file;
    if (check_local_target(file)) {
        // Something is there already: the same bytes are kept as they are,
        // other bytes are replaced only when asked to.
        const auto held = stat(name);
        if (!held || !held->exists)
            throw server_error("download", json::object{{"status", "error"}, {"code", "not_found"}, {"message", "no such file"}});
        if (local_sha256(file) == held->sha256) {
            result.skipped = true;
            result.size = held->size;
            result.sha256 = held->sha256;
            result.mtime = held->mtime;
            return result;
        }
        if (!options.force)
            throw local_file_error(file.string() + " exists with other content; --force (-f) replaces it");
    }
    check_local_target(part);
    for (int attempt = 0;; ++attempt) {
        unique_fd fd;
        std::uint64_t offset = 0;
        util::sha256 hash;
        if (options.resume) {
            // O_NOFOLLOW: a .part that became a link since the check is refused, not followed.
            fd.reset(::open(part.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
            if (!fd && errno != ENOENT)
                local_fail("cannot open", part, errno);
            if (fd) {
                struct stat st {};
                if (::fstat(fd.get(), &st) != 0)
                    local_fail("cannot stat", part, errno);
                if (!S_ISREG(st.st_mode))
                    throw local_file_error(part.string() + " is not a regular file: remove it");
                offset = static_cast<std::uint64_t>(st.st_size);
                util::hash_file(fd.get(), offset, hash);
            }
        }
        const auto start = clock_type::now();
        auto r = begin_download(name, offset);
        if (!r.ok()) {
            if (r.code() == "bad_offset" && offset > 0 && attempt == 0) {
                // The .part is longer than the file: it belongs to another version.
                fd.reset();
                ::unlink(part.c_str());
                result.restarted = true;
                continue;
            }
            throw server_error("download", std::move(r.header));
        }
        const std::uint64_t total = uint_of(r.header, "total");
        const std::uint64_t size = uint_of(r.header, "size");
        const std::string expected = string_of(r.header, "sha256");
        if (!fd) {
            // Created here or not at all: never an existing file, never through a link.
            fd.reset(::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
            if (!fd) {
                broken_ = true; // the body is still coming
                local_fail("cannot create", part, errno);
            }
        } else if (::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
            broken_ = true;
            local_fail("cannot seek", part, errno);
        }
        std::uint64_t done = offset;
        if (options.progress)
            options.progress(done, total);
        guarded([&] {
            conn_->receive_body(size, [&](std::span<const char> piece) {
                try {
                    write_all(fd.get(), piece, part);
                } catch (...) {
                    broken_ = true;
                    throw;
                }
                hash.update(piece);
                done += piece.size();
                if (options.progress)
                    options.progress(done, total);
            });
            return 0;
        });
        result.mtime = int_of(r.header, "mtime");
        if (options.set_mtime && r.header.contains("mtime")) {
            // The server's time for the file, not the time it arrived here (rsync -t).
            const timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(result.mtime), 0}};
            ::futimens(fd.get(), times);
        }
        if (::fsync(fd.get()) != 0 || fd.close() != 0)
            local_fail("cannot write", part, errno);
        result.seconds = seconds_since(start);
        result.size = total;
        result.resumed_from = offset;
        result.sha256 = hash.finish_hex();
        if (result.sha256 != expected) {
            ::unlink(part.c_str());
            throw checksum_error("the bytes received hash to " + result.sha256 + " but the server's SHA-256 is " +
                                 expected + (offset > 0 ? " (the .part resumed from did not belong to this file)" : ""));
        }
        // Checked again just before the rename: what appeared meanwhile is not replaced either.
        if (check_local_target(file) && !options.force)
            throw local_file_error(file.string() + " appeared during the download; --force (-f) replaces it (the bytes are in " +
                                   part.string() + ")");
        std::error_code ec;
        fs::rename(part, file, ec);
        if (ec)
            throw local_file_error("cannot rename " + part.string() + " to " + file.string() + ": " + ec.message());
        return result;
    }
}

} // namespace fxd::client
