#include "db_cli.hpp"

#include "database_setup.hpp"

#include <fxd/services/sqlite_store.hpp>

#include <iostream>

namespace fxd::daemon {

namespace {

void print_status(services::database& db)
{
    const int have = db.schema_version();
    const int want = db.current_schema_version();
    std::cout << "database: " << db.describe() << '\n' << "schema: version " << have << " of " << want;
    if (have < want)
        std::cout << " (run fxd db migrate, or start fxd: it migrates)";
    else if (have > want)
        std::cout << " (newer than this fxd: upgrade fxd)";
    std::cout << '\n';
    if (have != want)
        return;
    std::cout << "users: " << db.names().size() << '\n'
              << "files: " << db.users_with_files().size() << " user(s) with files, " << db.bytes_used_total()
              << " bytes\n"
              << "partial uploads: " << db.partial_count() << '\n'
              << "uploads in progress: " << db.uploads().size() << '\n';
}

/// Copies users (with their password hashes and admin flags), the catalog
/// and the partial uploads from a single-host SQLite file into PostgreSQL, in
/// one transaction. The storage folder's bytes stay where they are.
int import_from_sqlite(const config& cfg, const std::filesystem::path& file)
{
    if (!services::is_postgresql_url(cfg.database.url)) {
        std::cerr << "fxd: import-sqlite copies into PostgreSQL: set database.url (or FXD_DATABASE_URL) first\n";
        return 2;
    }
    services::sqlite_store source(file, false);
    auto target = open_configured_database(cfg);
    if (!target->names().empty() || !target->users_with_files().empty()) {
        std::cerr << "fxd: " << target->describe()
                  << " already has users or files; import-sqlite only fills an empty database\n";
        return 1;
    }
    std::size_t users = 0;
    std::size_t files = 0;
    std::size_t partials = 0;
    target->atomically([&] {
        for (const auto& entry : source.entries()) {
            const auto credentials = source.credentials(entry.name);
            if (!credentials)
                continue;
            target->create(entry.name, credentials->first);
            if (entry.admin)
                target->set_admin(entry.name, true);
            ++users;
        }
        for (const auto& user : source.users_with_files()) {
            for (const auto& f : source.list_files(user)) {
                target->put_file(user, f);
                ++files;
            }
        }
        for (const auto& [user, p] : source.all_partials()) {
            target->put_partial(user, p);
            ++partials;
        }
    });
    std::cout << "imported " << users << " user(s), " << files << " file(s) and " << partials
              << " partial upload(s) from " << file.string() << " into " << target->describe() << '\n';
    if (const auto interrupted = source.uploads().size(); interrupted != 0)
        std::cout << "not imported: " << interrupted
                  << " upload(s) that were in progress; start the single-host fxd once to keep them as partials, then"
                     " import into an emptied database\n";
    std::cout << "logins do not carry over: users log in again\n";
    return 0;
}

} // namespace

int run_db_command(const config& cfg, const db_command& command)
{
    using enum db_command::action;
    try {
        switch (command.what) {
        case migrate: {
            auto db = open_configured_database(cfg, true, true);
            std::cout << db->describe() << " is at schema version " << db->schema_version() << '\n';
            return 0;
        }
        case status: {
            auto db = open_configured_database(cfg, false, false);
            print_status(*db);
            return 0;
        }
        case import_sqlite:
            return import_from_sqlite(cfg, command.file);
        }
    } catch (const std::exception& e) {
        std::cerr << "fxd: " << e.what() << '\n';
    }
    return 1;
}

} // namespace fxd::daemon
