// fxc's files under $XDG_CONFIG_HOME/fxc: `config` (defaults for options) and
// `credentials` (remembered logins), and the shell's history file.

#include "fxc.hpp"

#include <fxd/util/unique_fd.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fxc {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string_view s)
{
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r");
    return std::string(s.substr(first, last - first + 1));
}

/// $NAME when set and absolute (the XDG rule: a relative one is ignored), else $HOME/fallback.
fs::path xdg_dir(const char* name, const char* fallback)
{
    if (const char* dir = std::getenv(name); dir && dir[0] == '/')
        return dir;
    if (const char* home = std::getenv("HOME"); home && home[0] != '\0')
        return fs::path(home) / fallback;
    return {};
}

bool parse_bool(const std::string& value, bool& out)
{
    if (value == "true" || value == "yes" || value == "1" || value == "on")
        out = true;
    else if (value == "false" || value == "no" || value == "0" || value == "off")
        out = false;
    else
        return false;
    return true;
}

} // namespace

fs::path config_dir()
{
    const auto base = xdg_dir("XDG_CONFIG_HOME", ".config");
    return base.empty() ? fs::path() : base / "fxc";
}

fs::path state_dir()
{
    const auto base = xdg_dir("XDG_STATE_HOME", ".local/state");
    return base.empty() ? fs::path() : base / "fxc";
}

config_file read_config_file()
{
    config_file cfg;
    const auto dir = config_dir();
    if (dir.empty())
        return cfg;
    const auto path = dir / "config";
    std::ifstream in(path);
    if (!in)
        return cfg; // no file: no defaults
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        const std::string where = path.string() + ":" + std::to_string(number) + ": ";
        const auto text = trim(line);
        if (text.empty() || text.front() == '#')
            continue;
        const auto eq = text.find('=');
        if (eq == std::string::npos)
            throw usage_error(where + "expected 'key = value', not '" + text + "'");
        const auto key = trim(std::string_view(text).substr(0, eq));
        const auto value = trim(std::string_view(text).substr(eq + 1));
        if (value.empty())
            throw usage_error(where + key + " has no value");
        if (key == "host") {
            cfg.host = value;
        } else if (key == "port") {
            char* end = nullptr;
            errno = 0;
            const long port = std::strtol(value.c_str(), &end, 10);
            if (*end != '\0' || errno != 0 || port < 1 || port > 65535)
                throw usage_error(where + "port must be a number from 1 to 65535, not '" + value + "'");
            cfg.port = static_cast<std::uint16_t>(port);
        } else if (key == "user") {
            cfg.user = value;
        } else if (key == "tls") {
            bool on = false;
            if (!parse_bool(value, on))
                throw usage_error(where + "tls must be true or false, not '" + value + "'");
            cfg.tls = on;
        } else if (key == "cacert") {
            cfg.cacert = value;
        } else {
            throw usage_error(where + "unknown key '" + key + "' (known: host, port, user, tls, cacert)");
        }
    }
    return cfg;
}

credentials_file::credentials_file() : path_(config_dir().empty() ? fs::path() : config_dir() / "credentials")
{
    if (path_.empty())
        return;
    const fxd::util::unique_fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT)
            return;
        throw usage_error("cannot read " + path_.string() + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw usage_error(path_.string() + " is not a regular file");
    // Like ssh with its keys: tokens others can read are not used.
    if ((st.st_mode & 077) != 0)
        throw usage_error(path_.string() + " can be read by others: its logins are not used until 'chmod 600 " +
                          path_.string() + "'");
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;)
        text.append(buf, static_cast<std::size_t>(n));
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line.front() == '#')
            continue;
        std::istringstream fields(line);
        entry e;
        if (fields >> e.server >> e.user >> e.token >> e.expires)
            entries_.push_back(std::move(e));
    }
}

std::optional<std::string> credentials_file::token(const std::string& server, const std::string& user) const
{
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (const auto& e : entries_) {
        if (e.server == server && e.user == user && e.expires > now)
            return e.token;
    }
    return std::nullopt;
}

std::vector<std::string> credentials_file::users(const std::string& server) const
{
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    std::vector<std::string> out;
    for (const auto& e : entries_) {
        if (e.server == server && e.expires > now)
            out.push_back(e.user);
    }
    return out;
}

void credentials_file::put(const std::string& server, const std::string& user, const std::string& token,
                           std::int64_t expires)
{
    std::erase_if(entries_, [&](const entry& e) { return e.server == server && e.user == user; });
    entries_.push_back({server, user, token, expires});
    save();
}

bool credentials_file::remove(const std::string& server, const std::string& user)
{
    const auto removed = std::erase_if(entries_, [&](const entry& e) { return e.server == server && e.user == user; });
    if (removed > 0)
        save();
    return removed > 0;
}

void credentials_file::save() const
{
    if (path_.empty())
        throw usage_error("cannot remember a login: neither XDG_CONFIG_HOME nor HOME is set");
    const auto dir = path_.parent_path();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        throw usage_error("cannot create " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    std::string text = "# fxc's remembered logins (server user token expires); 'fxc logout' forgets one\n";
    for (const auto& e : entries_) {
        if (e.expires > now)
            text += e.server + " " + e.user + " " + e.token + " " + std::to_string(e.expires) + "\n";
    }
    // Written whole beside the file, mode 0600 from the start, then renamed over it.
    const fs::path temp = path_.string() + ".new";
    ::unlink(temp.c_str());
    fxd::util::unique_fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd)
        throw usage_error("cannot write " + temp.string() + ": " + std::strerror(errno));
    for (std::string_view rest = text; !rest.empty();) {
        const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw usage_error("cannot write " + temp.string() + ": " + std::strerror(errno));
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd.get()) != 0 || fd.close() != 0 || ::rename(temp.c_str(), path_.c_str()) != 0)
        throw usage_error("cannot write " + path_.string() + ": " + std::strerror(errno));
}

} // namespace fxc
