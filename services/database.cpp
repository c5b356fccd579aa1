#include <fxd/services/database.hpp>
#include <fxd/services/pg_store.hpp>
#include <fxd/services/sqlite_store.hpp>

#include <system_error>

namespace fxd::services {

bool is_postgresql_url(std::string_view url) noexcept
{
    return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

std::string redact_url(std::string_view url)
{
    // scheme://user:password@host... -> scheme://user:***@host...
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos)
        return std::string(url.substr(0, url.find(' '))); // key=value form: keep the first pair only
    const auto authority = scheme_end + 3;
    const auto at = url.find('@', authority);
    const auto slash = url.find('/', authority);
    if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at))
        return std::string(url);
    const auto colon = url.find(':', authority);
    if (colon == std::string_view::npos || colon > at)
        return std::string(url);
    return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

std::unique_ptr<database> open_database(const database_options& options)
{
    if (options.url.empty()) {
        if (!options.create) {
            std::error_code ec;
            if (!std::filesystem::exists(options.sqlite_path, ec))
                throw store_error("no user database at " + options.sqlite_path.string());
        }
        return std::make_unique<sqlite_store>(options.sqlite_path, options.create);
    }
    if (!is_postgresql_url(options.url))
        throw store_error("database.url must start with postgresql:// (or be empty for SQLite)");
    return std::make_unique<pg_store>(options);
}

} // namespace fxd::services
