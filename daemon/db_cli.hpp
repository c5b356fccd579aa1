#pragma once
/// `fxd db migrate|status|import-sqlite FILE`: the operator's view of the
/// database, without the network.

#include "config.hpp"

#include <filesystem>

namespace fxd::daemon {

struct db_command {
    enum class action { migrate, status, import_sqlite };
    action what;
    std::filesystem::path file; ///< import-sqlite: the SQLite database to read
};

/// Returns the exit status: 0 done, 1 failed (unreachable, refused), 2 misuse.
int run_db_command(const config& cfg, const db_command& command);

} // namespace fxd::daemon
