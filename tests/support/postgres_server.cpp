#include "postgres_server.hpp"

#include "child_process.hpp"

#include <cstdlib>
#include <stdexcept>
#include <sys/stat.h>

namespace fxd::test {

namespace {

const std::string postgres_sh = std::string(FXD_SOURCE_DIR) + "/scripts/lib/postgres.sh";

} // namespace

postgres_server::postgres_server()
{
    // Under /tmp and searchable by all: the server runs as the postgres
    // account when the tests run as root.
    std::string pattern = "/tmp/fxd-pg-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    ::chmod(dir_.c_str(), 0755);
    url_ = script("start");
}

postgres_server::~postgres_server()
{
    try {
        script("wipe");
    } catch (...) {
        // best effort: the folder is under /tmp
    }
}

std::string postgres_server::script(const std::string& command) const
{
    const auto r = run_program({"/bin/bash", postgres_sh, command, dir_.string()});
    if (r.status == 77)
        throw std::runtime_error("PostgreSQL 15 is not installed (apt-get install postgresql-15): " + r.err);
    if (r.status != 0)
        throw std::runtime_error("postgres.sh " + command + " failed: " + r.err);
    auto out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
        out.pop_back();
    return out;
}

std::string postgres_server::fresh_database()
{
    const std::string name = "t" + std::to_string(++databases_);
    const auto r = run_program({"/usr/bin/psql", url_, "-qc", "CREATE DATABASE " + name});
    if (r.status != 0)
        throw std::runtime_error("CREATE DATABASE failed: " + r.err);
    // The URL ends in "/fxd": the same server, another database.
    return url_.substr(0, url_.rfind('/') + 1) + name;
}

void postgres_server::stop()
{
    script("stop");
}

void postgres_server::start()
{
    script("start");
}

} // namespace fxd::test
