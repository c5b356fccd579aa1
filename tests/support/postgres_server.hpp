#pragma once
/// A private PostgreSQL 15 server for one test program, started and wiped by
/// the project's scripts/lib/postgres.sh, with a fresh database per test.

#include <filesystem>
#include <string>

namespace fxd::test {

class postgres_server {
public:
    /// Starts the server; throws std::runtime_error when it cannot (the
    /// message says to install postgresql-15 when that is the reason).
    postgres_server();
    ~postgres_server();
    postgres_server(const postgres_server&) = delete;
    postgres_server& operator=(const postgres_server&) = delete;

    /// A new, empty database on the server; its URL.
    std::string fresh_database();
    void stop();  ///< fast shutdown; the data stays
    void start(); ///< again after stop()

private:
    std::string script(const std::string& command) const;

    std::filesystem::path dir_;
    std::string url_; ///< of the database "fxd"
    int databases_ = 0;
};

} // namespace fxd::test
