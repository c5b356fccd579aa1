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
        OPENSSL_cleanse(credentials_->second.data(), credentials_->second.size());
}

session::session(session&&) noexcept = default;
session& session::operator=(session&&) noexcept = default;

void session::reconnect()
{
    conn_.reset();
    broken_ = false;
    conn_.emplace(host_, port_, tls_, timeout_);
    if (credentials_) {
        const auto [user, password] = *credentials_;
        const auto r = conn_->call({{"op", "login"}, {"user", user}, {"password", password}});
        if (!r.ok()) {
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
    if (credentials_)
        OPENSSL_cleanse(credentials_->second.data(), credentials_->second.size());
    credentials_.emplace(user, password);
    return string_of(r.header, "user");
}

void session::logout()
{
    request({{"op", "logout"}});
    if (credentials_)
        OPENSSL_cleanse(credentials_->second.data(), credentials_->second.size());
    credentials_.reset();
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
            auto result = upload_once(fd.get(), total, sha, name, offset, options);
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
                                   std::uint64_t offset, const upload_options& options)
{
    return guarded([&] {
        json::object header{{"op", "upload"}, {"name", name}, {"sha256", sha}};
        if (offset > 0)
            header["offset"] = offset;
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
        if (result.sha256 != sha)
            throw checksum_error("the server stored SHA-256 " + result.sha256 + " but the file's is " + sha);
        return result;
    });
}

download_result session::download(const std::string& name, const fs::path& file, const download_options& options)
{
    const fs::path part = part_path(file);
    download_result result;
    result.name = name;
    result.path = file;
    for (int attempt = 0;; ++attempt) {
        unique_fd fd;
        std::uint64_t offset = 0;
        util::sha256 hash;
        if (options.resume) {
            fd.reset(::open(part.c_str(), O_RDWR | O_CLOEXEC));
            if (!fd && errno != ENOENT)
                local_fail("cannot open", part, errno);
            if (fd) {
                struct stat st {};
                if (::fstat(fd.get(), &st) != 0)
                    local_fail("cannot stat", part, errno);
                offset = static_cast<std::uint64_t>(st.st_size);
                util::hash_file(fd.get(), offset, hash);
            }
        }
        const auto start = clock_type::now();
        auto r = guarded([&] {
            json::object header{{"op", "download"}, {"name", name}};
            if (offset > 0)
                header["offset"] = offset;
            conn_->send(std::move(header));
            return conn_->receive_header();
        });
        if (!r.ok()) {
            guarded([&] { return conn_->receive_exact(uint_of(r.header, "size")); });
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
            fd.reset(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
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
                while (!piece.empty()) {
                    const ssize_t n = ::write(fd.get(), piece.data(), piece.size());
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n < 0) {
                        broken_ = true;
                        local_fail("cannot write", part, errno);
                    }
                    hash.update(piece.first(static_cast<std::size_t>(n)));
                    piece = piece.subspan(static_cast<std::size_t>(n));
                    done += static_cast<std::uint64_t>(n);
                }
                if (options.progress)
                    options.progress(done, total);
            });
            return 0;
        });
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
        std::error_code ec;
        fs::rename(part, file, ec);
        if (ec)
            throw local_file_error("cannot rename " + part.string() + " to " + file.string() + ": " + ec.message());
        return result;
    }
}

} // namespace fxd::client
