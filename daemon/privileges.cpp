#include "privileges.hpp"

#include "config.hpp"

#include <spdlog/logger.h>

#include <grp.h>
#include <pwd.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace fxd::daemon {

namespace {

namespace fs = std::filesystem;

struct account {
    uid_t uid;
    gid_t gid;
};

account look_up(const std::string& name)
{
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> scratch(16384);
    const int error = ::getpwnam_r(name.c_str(), &entry, scratch.data(), scratch.size(), &found);
    if (error != 0)
        throw std::runtime_error("process.user '" + name + "': cannot look it up: " + std::strerror(error));
    if (!found)
        throw std::runtime_error("process.user '" + name + "': no such user");
    return {entry.pw_uid, entry.pw_gid};
}

void hand_over(const fs::path& path, account to)
{
    if (::lchown(path.c_str(), to.uid, to.gid) != 0)
        throw std::runtime_error("cannot hand " + path.string() + " to process.user: " + std::strerror(errno));
}

/// Storage was made by root (at first start, or by `fxd user` run as root):
/// the new user must own it to write there. lchown and an iterator that does
/// not follow links, so no link inside can turn this into a chown elsewhere.
void hand_over_storage(const config& cfg, account to)
{
    hand_over(cfg.storage.dir, to);
    for (const auto& entry : fs::recursive_directory_iterator(cfg.storage.dir))
        hand_over(entry.path(), to);
    const auto db = database_path(cfg);
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        const fs::path file = db.string() + suffix;
        std::error_code ec;
        if (fs::exists(fs::symlink_status(file, ec)))
            hand_over(file, to);
    }
}

void switch_to(const std::string& name, account to)
{
    // Supplementary groups first, then the group, then the user: after
    // setuid the other two are no longer allowed.
    if (::setgroups(1, &to.gid) != 0 || ::setgid(to.gid) != 0 || ::setuid(to.uid) != 0)
        throw std::runtime_error("cannot switch to process.user '" + name + "': " + std::strerror(errno));
    if (::setuid(0) == 0 || ::getuid() != to.uid || ::geteuid() != to.uid)
        throw std::runtime_error("switched to process.user '" + name + "' but root is still reachable");
}

} // namespace

void settle_privileges(const config& cfg, spdlog::logger& log)
{
    const auto& name = cfg.process.user;
    if (name.empty()) {
        if (::geteuid() == 0)
            log.warn("running as root: a flaw in fxd would give the whole machine away; set process.user "
                     "to switch to an unprivileged user once the sockets are bound");
        return;
    }
    const auto to = look_up(name);
    if (::getuid() == to.uid && ::geteuid() == to.uid)
        return; // already that user (started by systemd with User=, say)
    if (::geteuid() != 0)
        throw std::runtime_error("cannot switch to process.user '" + name + "': fxd was not started as root");
    hand_over_storage(cfg, to);
    switch_to(name, to);
    log.info("switched to user {} (uid {}, gid {})", name, to.uid, to.gid);
}

} // namespace fxd::daemon
