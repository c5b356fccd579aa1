#include "user_cli.hpp"

#include "database_setup.hpp"

#include <fxd/protocol/names.hpp>
#include <fxd/services/accounts.hpp>
#include <fxd/services/files.hpp>

#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

namespace fxd::daemon {

namespace {

/// Reads one line; from a terminal without echo. nullopt at end of input.
std::optional<std::string> read_secret(const std::string& prompt)
{
    const bool tty = ::isatty(STDIN_FILENO) != 0;
    termios saved{};
    if (tty) {
        std::cerr << prompt << std::flush;
        ::tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    if (tty) {
        ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::cerr << '\n';
    }
    if (!got)
        return std::nullopt;
    if (!line.empty() && line.back() == '\r')
        line.pop_back();
    return line;
}

/// Asks for a new password (twice on a terminal) and checks the contract's rule.
std::optional<std::string> new_password(const std::string& user)
{
    auto first = read_secret("New password for " + user + ": ");
    if (!first) {
        std::cerr << "fxd: no password given\n";
        return std::nullopt;
    }
    if (::isatty(STDIN_FILENO)) {
        auto again = read_secret("Repeat it: ");
        if (!again || *again != *first) {
            std::cerr << "fxd: the passwords differ\n";
            sodium_memzero(first->data(), first->size());
            return std::nullopt;
        }
        sodium_memzero(again->data(), again->size());
    }
    if (!protocol::is_valid_password(*first)) {
        std::cerr << "fxd: a password must be 8 to 1024 bytes\n";
        return std::nullopt;
    }
    return first;
}

/// fxd user list, admin and del: no password involved.
int change_user(const config& cfg, const user_command& command, services::database& store,
                services::accounts& accounts)
{
    using enum user_command::action;
    const std::string& name = command.name;
    if (command.what == list) {
        for (const auto& user : store.entries())
            std::cout << user.name << (user.admin ? " (admin)" : "") << '\n';
        return 0;
    }
    if (command.what == admin) {
        if (!store.set_admin(name, command.admin)) {
            std::cerr << "fxd: no user '" << name << "'\n";
            return 1;
        }
        std::cout << name << (command.admin ? " is now an admin" : " is no longer an admin") << '\n';
        return 0;
    }
    // what remains is del
    if (accounts.remove_user(name) != services::accounts::outcome::ok) {
        std::cerr << "fxd: no user '" << name << "'\n";
        return 1;
    }
    services::local_files files(cfg.storage.dir, store);
    files.remove_user(name);
    std::cout << "deleted user " << name << " and their files\n";
    return 0;
}

/// fxd user add and passwd: a new password, read without echo.
int set_password(const user_command& command, services::database& store, services::accounts& accounts)
{
    using enum user_command::action;
    const std::string& name = command.name;
    const bool adding = command.what == add;
    if (adding == store.password_hash(name).has_value()) {
        std::cerr << "fxd: " << (adding ? "user '" + name + "' already exists" : "no user '" + name + "'") << '\n';
        return 1;
    }
    auto password = new_password(name);
    if (!password)
        return 2;
    const auto result = adding ? accounts.register_user(name, *password) : accounts.change_password(name, *password);
    sodium_memzero(password->data(), password->size());
    if (result != services::accounts::outcome::ok) {
        std::cerr << "fxd: " << (adding ? "user '" + name + "' already exists" : "no user '" + name + "'") << '\n';
        return 1;
    }
    if (adding && command.admin && !store.set_admin(name, true)) {
        std::cerr << "fxd: user '" << name << "' was deleted before it could be made an admin\n";
        return 1;
    }
    std::cout << (adding ? (command.admin ? "added admin user " : "added user ") : "changed the password of ") << name
              << '\n';
    return 0;
}

} // namespace

int run_user_command(const config& cfg, const user_command& command)
{
    using enum user_command::action;
    // Said on every failure: run in the wrong folder, or without the daemon's
    // --config, the relative default storage.dir is somewhere else entirely.
    const bool on_postgresql = !cfg.database.url.empty();
    const auto database = std::filesystem::absolute(database_path(cfg));
    const std::string where = on_postgresql ? services::redact_url(cfg.database.url) : database.string();
    const std::string origin = on_postgresql              ? std::string("database.url")
                               : cfg.auth.db_path.empty() ? "storage.dir is " +
                                                                std::filesystem::absolute(cfg.storage.dir).string()
                                                          : std::string("auth.db_path");
    if (!on_postgresql && command.what != add && !std::filesystem::exists(database)) {
        // Only add may start a database: anything else would create an empty
        // one here and report no users, hiding the real one.
        std::cerr << "fxd: no user database at " << database.string() << " (" << origin
                  << "): run fxd user add first, or pass --config\n";
        return 1;
    }
    int status = 1;
    try {
        std::error_code ec;
        if (!on_postgresql)
            std::filesystem::create_directories(cfg.storage.dir, ec);
        auto db = open_configured_database(cfg, command.what == add);
        auto& store = *db;
        services::accounts accounts(
            store, services::hash_cost{cfg.auth.hash_passes, static_cast<std::size_t>(cfg.auth.hash_memory_bytes)});
        if (command.what == add || command.what == passwd)
            status = set_password(command, store, accounts);
        else
            status = change_user(cfg, command, store, accounts);
    } catch (const std::exception& e) {
        std::cerr << "fxd: " << e.what() << '\n';
    }
    if (status != 0)
        std::cerr << "fxd: the user database used is " << where << " (" << origin << ")\n";
    return status;
}

} // namespace fxd::daemon
