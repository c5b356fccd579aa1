#pragma once
/// Opening the configured database (SQLite or PostgreSQL) the same way for
/// the daemon, `fxd user` and `fxd db`.

#include "config.hpp"

#include <fxd/services/database.hpp>

#include <memory>

namespace fxd::daemon {

services::database_options database_options_for(const config& cfg);

/// Throws services::store_error (store_unavailable when PostgreSQL cannot be reached).
std::unique_ptr<services::database> open_configured_database(const config& cfg, bool create = true, bool migrate = true);

} // namespace fxd::daemon
