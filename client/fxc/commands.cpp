// fxc's commands: each talks to the server through fxd::client::session and
// prints its result as text or as one JSON object.

#include "fxc.hpp"

#include <fxd/protocol/names.hpp>
#include <fxd/util/sha256.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <utility>

namespace fxc {

namespace json = boost::json;
namespace fs = std::filesystem;
using fxd::client::session;

namespace {

void pretty(std::ostream& os, const json::value& v, int indent)
{
    const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
    if (v.is_object()) {
        const auto& o = v.get_object();
        if (o.empty()) {
            os << "{}";
            return;
        }
        os << "{\n";
        std::size_t i = 0;
        for (const auto& kv : o) {
            os << pad << "  " << json::serialize(json::value(kv.key())) << ": ";
            pretty(os, kv.value(), indent + 1);
            os << (++i < o.size() ? ",\n" : "\n");
        }
        os << pad << "}";
    } else if (v.is_array()) {
        const auto& a = v.get_array();
        if (a.empty()) {
            os << "[]";
            return;
        }
        os << "[\n";
        for (std::size_t i = 0; i < a.size(); ++i) {
            os << pad << "  ";
            pretty(os, a[i], indent + 1);
            os << (i + 1 < a.size() ? ",\n" : "\n");
        }
        os << pad << "]";
    } else {
        os << json::serialize(v);
    }
}

std::string local_time(std::int64_t t)
{
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string join(const std::vector<std::string>& parts, const char* sep)
{
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty())
            out += sep;
        out += p;
    }
    return out;
}

json::value text_value(const std::string& bytes)
{
    // Echo bodies come from the command line, so they are text; keep invalid
    // UTF-8 out of the JSON output all the same.
    if (fxd::protocol::is_valid_utf8(bytes))
        return json::value(bytes);
    std::string safe;
    for (const char c : bytes)
        safe += static_cast<unsigned char>(c) < 0x80 ? c : '?';
    return json::value(safe);
}

void plain_decimal(std::string& out, double d)
{
    if (!std::isfinite(d)) {
        out += "null";
        return;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", d);
    std::string text = buf;
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.')
        text.pop_back();
    out += text == "-0" ? "0" : text;
}

void write_json(std::string& out, const json::value& v)
{
    if (v.is_double()) {
        plain_decimal(out, v.get_double());
    } else if (v.is_object()) {
        out += '{';
        bool first = true;
        for (const auto& kv : v.get_object()) {
            if (!std::exchange(first, false))
                out += ',';
            out += json::serialize(json::value(kv.key()));
            out += ':';
            write_json(out, kv.value());
        }
        out += '}';
    } else if (v.is_array()) {
        out += '[';
        bool first = true;
        for (const auto& item : v.get_array()) {
            if (!std::exchange(first, false))
                out += ',';
            write_json(out, item);
        }
        out += ']';
    } else {
        out += json::serialize(v);
    }
}

} // namespace

std::string json_text(const json::value& v)
{
    // Boost.JSON writes doubles in exponent form (1.715551E-3), which some
    // tools and people read badly; fxc's doubles are times and rates.
    std::string out;
    write_json(out, v);
    return out;
}

std::string hint_for(const std::string& code)
{
    static const std::map<std::string, std::string, std::less<>> hints{
        {"unauthorized", "log in: pass --user NAME (or set FXC_USER) and the password in FXC_PASSWORD or at the prompt"},
        {"bad_credentials", "check the user name and the password"},
        {"user_exists", "pick another name, or log in with that one"},
        {"rate_limited", "too many failed logins: wait a minute, then retry"},
        {"registration_closed", "ask the server's operator for an account"},
        {"not_found", "see 'fxc ls' for your files"},
        {"bad_name", "names are 1 to 255 bytes, without '/', '\\' or control characters, not starting with '.'"},
        {"bad_request", "user names are 1 to 32 of a-z 0-9 _ . - (starting with a letter or digit); passwords 8 to 1024 bytes"},
        {"quota_exceeded", "delete files with 'fxc rm NAME' to make room"},
        {"storage_full", "the server's disk is full; try again later"},
        {"body_too_large", "the server's limits are shown by 'fxc hello'"},
        {"busy", "the server is at its limit; retry shortly"},
        {"shutting_down", "the server is stopping; retry when it is back"},
        {"unknown_op", "this fxd does not offer that yet; 'fxc hello' lists what it does"},
        {"checksum_mismatch", "run the same command again to transfer the file afresh"},
    };
    const auto it = hints.find(code);
    return it == hints.end() ? std::string() : it->second;
}

std::string human_bytes(double bytes)
{
    static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%.0f B", bytes);
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
    return buf;
}

void output::result(const std::string& command, const std::string& text, json::object fields) const
{
    if (opts_.json) {
        json::object o{{"command", command}, {"ok", true}};
        for (auto& kv : fields)
            o[kv.key()] = std::move(kv.value());
        std::cout << json_text(o) << "\n";
    } else if (!text.empty()) {
        std::cout << text;
        if (text.back() != '\n')
            std::cout << "\n";
    }
    std::cout.flush();
}

void output::failure(const std::string& command, const std::string& code, const std::string& message,
                     const std::string& hint, int status) const
{
    if (opts_.json) {
        json::object o{{"command", command}, {"ok", false}, {"code", code}, {"message", message}, {"exit", status}};
        if (!hint.empty())
            o["hint"] = hint;
        std::cout << json_text(o) << "\n";
        std::cout.flush();
    }
    std::cerr << "fxc: " << command << ": " << message;
    if (status == exit_server_error && code != "checksum_mismatch")
        std::cerr << " (" << code << ")";
    std::cerr << "\n";
    if (!hint.empty())
        std::cerr << "fxc: " << hint << "\n";
}

void output::note(const std::string& text) const
{
    if (!opts_.quiet && !opts_.json)
        std::cerr << "fxc: " << text << "\n";
}

void output::summary(const std::string& command, std::size_t files, std::uint64_t bytes, std::size_t failed) const
{
    if (opts_.json) {
        const json::object o{{"command", command}, {"ok", failed == 0}, {"summary", true},
                             {"files", files},     {"bytes", bytes},     {"failed", failed}};
        std::cout << json_text(o) << "\n";
    } else {
        std::cout << command << ": " << files << (files == 1 ? " file, " : " files, ") << human_bytes(static_cast<double>(bytes))
                  << ", " << failed << " failed\n";
    }
    std::cout.flush();
}

std::string server_key(const options& opts)
{
    return opts.host + ":" + std::to_string(opts.port);
}

void login(const options& opts, const output& out, session& s, const std::string& command)
{
    const std::string user = required_user(opts, command);
    if (std::getenv("FXC_PASSWORD") == nullptr) {
        credentials_file remembered;
        if (const auto token = remembered.token(server_key(opts), user)) {
            try {
                s.login_token(user, *token);
                return;
            } catch (const fxd::client::server_error& e) {
                if (e.code() != "bad_credentials")
                    throw;
                // Expired, or revoked by `fxd user passwd` or `del`: of no more use.
                remembered.remove(server_key(opts), user);
                out.note("the remembered login of " + user + " on " + server_key(opts) +
                         " has expired or was revoked ('fxc login' remembers a new one)");
            }
        }
    }
    s.login(user, password_for(user, false));
}

std::string required_user(const options& opts, const std::string& command)
{
    if (!opts.user || opts.user->empty())
        throw usage_error(command + " needs a user: pass --user NAME or set FXC_USER");
    if (!fxd::protocol::is_valid_user_name(*opts.user))
        throw usage_error("'" + *opts.user +
                          "' is not a valid user name (1 to 32 of a-z 0-9 _ . -, starting with a letter or digit)");
    return *opts.user;
}

void check_file_name(const std::string& name)
{
    if (!fxd::protocol::is_valid_file_name(name))
        throw usage_error("'" + name +
                          "' is not a valid file name on the server: 1 to 255 bytes of UTF-8, no '/', '\\' or "
                          "control characters, not starting with '.'");
}

void check_upload_files(const options& opts)
{
    const auto& files = opts.args;
    if (opts.as_name && files.size() != 1)
        throw usage_error("--as NAME renames one file; " + std::to_string(files.size()) + " were given");
    for (const auto& file : files) {
        std::error_code ec;
        const auto st = fs::status(file, ec);
        if (fs::is_directory(st))
            throw usage_error(file + " is a folder: names on the server have no folders yet; upload the files in it "
                                     "(fxc upload " + (fs::path(file) / "*").string() + ")");
        if (!fs::exists(st)) {
            // `fxc upload FILE NAME` used to rename; it now means two files.
            if (files.size() == 2 && &file == &files.back() && fs::exists(files.front(), ec))
                throw usage_error(file + " does not exist; to store " + files.front() +
                                  " under another name: fxc upload " + files.front() + " --as " + file);
            throw usage_error(file + " does not exist");
        }
        if (!fs::is_regular_file(st))
            throw usage_error(file + " is not a regular file");
        check_file_name(opts.as_name ? *opts.as_name : fs::path(file).filename().string());
    }
}

namespace {

void stop_if_asked(const options& opts)
{
    if (opts.stop_requested && opts.stop_requested())
        throw fxd::client::cancelled_error("interrupted");
}

} // namespace

std::uint64_t do_upload(const options& opts, const output& out, session& s, const std::string& file,
                        const std::string& name)
{
    check_file_name(name);
    std::error_code ec;
    if (!fs::is_regular_file(file, ec))
        throw fxd::client::local_file_error(file + (fs::exists(file, ec) ? " is not a regular file" : " does not exist"));
    const auto mode = progress_bar::choose(opts);
    fxd::client::upload_options o;
    {
        // Hashing a large file takes a while: show it on a terminal only.
        progress_bar hashing("sha256 " + name, mode == progress_bar::mode::bar ? mode : progress_bar::mode::off);
        o.sha256 = fxd::util::sha256_file(file, [&](std::uint64_t d, std::uint64_t t) {
            stop_if_asked(opts);
            hashing.update(d, t);
        });
        hashing.finish();
    }
    progress_bar bar("upload " + name, mode);
    o.progress = [&](std::uint64_t d, std::uint64_t t) {
        stop_if_asked(opts);
        bar.update(d, t);
    };
    fxd::client::upload_result r;
    try {
        r = s.upload(file, name, o);
    } catch (...) {
        bar.finish(false);
        throw;
    }
    bar.finish(true);
    std::ostringstream text;
    text << "uploaded " << file << " as " << r.name << ": " << r.size << " bytes, sha256 " << r.sha256;
    // One account of how it went: resumed, sent again whole, or neither.
    if (r.restarted)
        text << "; the server held part of another version, so the whole file was sent";
    else if (r.resumed_from > 0)
        text << "; resumed: the server held " << human_bytes(static_cast<double>(r.resumed_from)) << ", "
             << human_bytes(static_cast<double>(r.size - r.resumed_from)) << " sent";
    out.result("upload", text.str(),
               {{"file", file},
                {"name", r.name},
                {"size", r.size},
                {"sha256", r.sha256},
                {"mtime", r.mtime},
                {"resumed_from", r.resumed_from},
                {"restarted", r.restarted},
                {"seconds", r.seconds}});
    return r.size - r.resumed_from;
}

namespace {

/// Writes a streamed download to standard output.
void write_stdout(std::span<const char> piece)
{
    while (!piece.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, piece.data(), piece.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw fxd::client::local_file_error(std::string("cannot write to standard output: ") + std::strerror(errno));
        piece = piece.subspan(static_cast<std::size_t>(n));
    }
}

} // namespace

std::uint64_t do_download(const options& opts, const output& out, session& s, const std::string& name,
                          const std::string& file)
{
    check_file_name(name);
    progress_bar bar("download " + name, progress_bar::choose(opts));
    fxd::client::download_options o;
    o.force = opts.force;
    o.progress = [&](std::uint64_t d, std::uint64_t t) {
        stop_if_asked(opts);
        bar.update(d, t);
    };
    if (file == "-") {
        fxd::client::download_result r;
        try {
            r = s.download_to(name, write_stdout, o);
        } catch (...) {
            bar.finish(false);
            throw;
        }
        bar.finish(true);
        // stdout holds the file: the result goes to stderr.
        out.note("downloaded " + name + " to standard output: " + std::to_string(r.size) + " bytes, sha256 " +
                 r.sha256 + " verified");
        return r.size;
    }
    fs::path target = file.empty() ? fs::path(name) : fs::path(file);
    std::error_code ec;
    // A folder (a link to one too, like ~/Downloads often is) takes the file under its name.
    if (fs::is_directory(target, ec))
        target /= name;
    fxd::client::download_result r;
    try {
        r = s.download(name, target, o);
    } catch (...) {
        bar.finish(false);
        throw;
    }
    json::object fields{{"name", name},
                        {"file", target.string()},
                        {"size", r.size},
                        {"sha256", r.sha256},
                        {"mtime", r.mtime},
                        {"skipped", r.skipped},
                        {"resumed_from", r.resumed_from},
                        {"restarted", r.restarted},
                        {"seconds", r.seconds}};
    if (r.skipped) {
        out.result("download", target.string() + " already holds " + name + " (sha256 " + r.sha256 + "): skipped",
                   std::move(fields));
        return 0;
    }
    bar.finish(true);
    std::ostringstream text;
    text << "downloaded " << name << " to " << target.string() << ": " << r.size << " bytes, sha256 " << r.sha256
         << " verified";
    if (r.restarted)
        text << "; the .part held was of another version, so the whole file was fetched";
    else if (r.resumed_from > 0)
        text << "; resumed: " << human_bytes(static_cast<double>(r.resumed_from)) << " were already here, "
             << human_bytes(static_cast<double>(r.size - r.resumed_from)) << " fetched";
    out.result("download", text.str(), std::move(fields));
    return r.size - r.resumed_from;
}

void do_stat(const output& out, session& s, const std::string& name)
{
    const auto st = s.stat(name);
    if (!st)
        throw fxd::client::server_error(
            "stat", json::object{{"status", "error"}, {"code", "not_found"}, {"message", "no such file"}});
    std::ostringstream text;
    text << "name:    " << st->name << "\n";
    text << "exists:  " << (st->exists ? "yes" : "no (only an interrupted upload)") << "\n";
    json::object fields{{"name", st->name}, {"exists", st->exists}, {"partial", st->partial}};
    if (st->exists) {
        text << "size:    " << st->size << " (" << human_bytes(static_cast<double>(st->size)) << ")\n";
        text << "sha256:  " << st->sha256 << "\n";
        text << "mtime:   " << local_time(st->mtime) << " (" << st->mtime << ")\n";
        fields["size"] = st->size;
        fields["sha256"] = st->sha256;
        fields["mtime"] = st->mtime;
    }
    text << "partial: " << st->partial;
    if (st->partial > 0)
        text << " bytes held of an interrupted upload ('fxc upload' resumes it)";
    out.result("stat", text.str(), std::move(fields));
}

void do_list(const output& out, session& s)
{
    const auto files = s.list();
    json::array entries;
    std::ostringstream text;
    if (files.empty()) {
        text << "(no files)";
    } else {
        char line[64];
        std::snprintf(line, sizeof line, "%14s  %-19s  %s\n", "SIZE", "MODIFIED", "NAME");
        text << line;
        for (const auto& f : files) {
            std::snprintf(line, sizeof line, "%14llu  %-19s  ", static_cast<unsigned long long>(f.size),
                          local_time(f.mtime).c_str());
            text << line << f.name << "\n";
        }
    }
    for (const auto& f : files)
        entries.push_back(json::object{{"name", f.name}, {"size", f.size}, {"mtime", f.mtime}});
    out.result("ls", text.str(), {{"files", std::move(entries)}});
}

int run_udp_command(const options& opts, const output& out)
{
    const auto start = std::chrono::steady_clock::now();
    const bool is_echo = opts.command == "echo";
    const std::string text = is_echo ? join(opts.args, " ") : std::string();
    auto r = fxd::client::udp_call(opts.host, opts.udp_port, {{"op", is_echo ? "echo" : "ping"}}, text, opts.timeout);
    if (!r.ok())
        throw fxd::client::server_error(opts.command, std::move(r.header));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (is_echo) {
        out.result("echo", r.body, {{"transport", "udp"}, {"text", text_value(r.body)}});
    } else {
        char line[128];
        std::snprintf(line, sizeof line, "pong from %s:%u over UDP in %.2f ms", opts.host.c_str(), opts.udp_port, ms);
        out.result("ping", line, {{"transport", "udp"}, {"host", opts.host}, {"port", opts.udp_port}, {"ms", ms}});
    }
    return exit_ok;
}

namespace {

/// Runs `each` on every file or name of a command, reporting each failure as
/// it happens and going on with the next; after several, a summary line.
/// Returns the highest exit status met (0 when all went well).
template <class Each>
int for_each_item(const options& opts, const output& out, const std::string& command,
                  const std::vector<std::string>& items, Each&& each)
{
    std::uint64_t bytes = 0;
    std::size_t failed = 0;
    int status = exit_ok;
    for (const auto& item : items) {
        try {
            bytes += each(item);
        } catch (...) {
            ++failed;
            status = std::max(status, report_failure(opts, out, command, true));
        }
    }
    if (items.size() > 1)
        out.summary(command, items.size(), bytes, failed);
    return status;
}

} // namespace

int run_command(const options& opts, const output& out, session& s)
{
    const auto& cmd = opts.command;
    const auto& args = opts.args;
    if (cmd == "ping") {
        const auto start = std::chrono::steady_clock::now();
        s.ping();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        char line[128];
        std::snprintf(line, sizeof line, "pong from %s:%u in %.2f ms", opts.host.c_str(), opts.port, ms);
        out.result("ping", line, {{"transport", "tcp"}, {"host", opts.host}, {"port", opts.port}, {"ms", ms}});
    } else if (cmd == "hello") {
        json::object h;
        for (auto& kv : s.hello()) {
            if (kv.key() != "op" && kv.key() != "status" && kv.key() != "size" && kv.key() != "id")
                h[kv.key()] = kv.value();
        }
        std::ostringstream text;
        for (const auto& kv : h) {
            text << kv.key() << ": ";
            if (kv.value().is_string()) {
                text << kv.value().get_string().c_str();
            } else if (kv.value().is_array()) {
                std::vector<std::string> items;
                for (const auto& item : kv.value().get_array())
                    items.push_back(item.is_string() ? std::string(item.get_string()) : json::serialize(item));
                text << join(items, " ");
            } else if (kv.value().is_object()) {
                std::vector<std::string> items;
                for (const auto& sub : kv.value().get_object())
                    items.push_back(std::string(sub.key()) + "=" + json::serialize(sub.value()));
                text << join(items, " ");
            } else {
                text << json::serialize(kv.value());
            }
            text << "\n";
        }
        out.result("hello", text.str(), std::move(h));
    } else if (cmd == "echo") {
        const auto reply = s.echo(join(args, " "));
        out.result("echo", reply, {{"transport", "tcp"}, {"text", text_value(reply)}});
    } else if (cmd == "stats") {
        auto stats = s.stats();
        std::ostringstream text;
        pretty(text, stats, 0);
        out.result("stats", text.str(), {{"stats", std::move(stats)}});
    } else if (cmd == "register") {
        const std::string user = required_user(opts, cmd);
        const auto name = s.register_user(user, password_for(user, true));
        out.result("register", "registered " + name, {{"user", name}});
    } else if (cmd == "login") {
        const std::string user = required_user(opts, cmd);
        const auto r = s.login_remembered(user, password_for(user, false));
        credentials_file remembered;
        remembered.put(server_key(opts), user, r.token, r.expires);
        out.result("login",
                   "logged in as " + r.user + " on " + server_key(opts) + "; remembered in " +
                       remembered.path().string() + " until " + local_time(r.expires) + " ('fxc logout' forgets it)",
                   {{"user", r.user}, {"server", server_key(opts)}, {"expires", r.expires}});
    } else if (cmd == "logout") {
        const std::string user = required_user(opts, cmd);
        credentials_file remembered;
        const auto token = remembered.token(server_key(opts), user);
        if (!token) {
            out.result("logout", "no remembered login of " + user + " on " + server_key(opts),
                       {{"user", user}, {"server", server_key(opts)}, {"revoked", false}});
            return exit_ok;
        }
        // The server forgets it first: a copy left anywhere is of no use after this.
        const bool revoked = s.revoke_token(*token);
        remembered.remove(server_key(opts), user);
        out.result("logout",
                   "logged out " + user + " on " + server_key(opts) +
                       (revoked ? ": the server revoked the login" : ": the server no longer knew the login") +
                       " and it was removed from " + remembered.path().string(),
                   {{"user", user}, {"server", server_key(opts)}, {"revoked", revoked}});
    } else if (cmd == "whoami") {
        if (opts.user)
            login(opts, out, s, cmd);
        const auto who = s.whoami();
        out.result("whoami", who ? *who : "(not logged in)", {{"user", who ? json::value(*who) : json::value(nullptr)}});
    } else if (cmd == "upload") {
        login(opts, out, s, cmd);
        return for_each_item(opts, out, cmd, args, [&](const std::string& file) {
            return do_upload(opts, out, s, file, opts.as_name.value_or(fs::path(file).filename().string()));
        });
    } else if (cmd == "download") {
        login(opts, out, s, cmd);
        return for_each_item(opts, out, cmd, args, [&](const std::string& name) {
            return do_download(opts, out, s, name, opts.output.value_or(""));
        });
    } else if (cmd == "ls") {
        login(opts, out, s, cmd);
        do_list(out, s);
    } else if (cmd == "stat") {
        login(opts, out, s, cmd);
        do_stat(out, s, args[0]);
    } else if (cmd == "rm") {
        login(opts, out, s, cmd);
        return for_each_item(opts, out, cmd, args, [&](const std::string& name) {
            const auto size = s.stat(name);
            s.remove(name);
            out.result("rm", "deleted " + name, {{"name", name}});
            return size ? size->size : std::uint64_t{0};
        });
    } else {
        throw usage_error("unknown command '" + cmd + "'");
    }
    return exit_ok;
}

} // namespace fxc
