#include "database_setup.hpp"

namespace fxd::daemon {

services::database_options database_options_for(const config& cfg)
{
    services::database_options o;
    o.url = cfg.database.url;
    o.sqlite_path = database_path(cfg);
    o.pool_size = cfg.database.pool_size;
    o.connect_timeout_s = cfg.database.connect_timeout_s;
    o.statement_timeout_s = cfg.database.statement_timeout_s;
    return o;
}

std::unique_ptr<services::database> open_configured_database(const config& cfg, bool create, bool migrate)
{
    auto o = database_options_for(cfg);
    o.create = create;
    o.migrate = migrate;
    return services::open_database(o);
}

} // namespace fxd::daemon
