#include "app.hpp"

#include "config.hpp"
#include "logging.hpp"
#include "privileges.hpp"
#include "server.hpp"
#include "db_cli.hpp"
#include "user_cli.hpp"
#include "systemd_notify.hpp"
#include "version.hpp"

#include <fxd/protocol/names.hpp>
#include <fxd/util/unique_fd.hpp>

#include <boost/asio/io_context.hpp>

#include <CLI/CLI.hpp>

#include <spdlog/logger.h>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fxd::daemon {

namespace {

/// Each connection is a descriptor, and the usual soft limit (1024) is far
/// below limits.max_connections: take what the hard limit allows, and say
/// when it is still short.
void raise_descriptor_limit(const config& cfg, spdlog::logger& log)
{
    const auto limit = util::raise_nofile_limit(); // UINT64_MAX: unlimited; 0: unknown
    const auto wanted = cfg.limits.max_connections + 64; // listeners, database, files being sent
    if (limit != 0 && limit < wanted)
        log.warn("open-file limit is {}, below limits.max_connections ({}) plus room for files; raise LimitNOFILE/ulimit -n",
                 limit, cfg.limits.max_connections);
}

constexpr std::string_view usage = R"(Usage: fxd [OPTIONS]
       fxd [--config FILE] [--set KEY=VALUE]... user add [--admin] NAME
       fxd [--config FILE] [--set KEY=VALUE]... user passwd|del NAME
       fxd [--config FILE] [--set KEY=VALUE]... user admin NAME on|off
       fxd [--config FILE] [--set KEY=VALUE]... user list
       fxd [--config FILE] [--set KEY=VALUE]... db migrate|status
       fxd [--config FILE] [--set KEY=VALUE]... db import-sqlite FILE

fxd serves framed requests over TCP and UDP: ping, hello, echo and stats;
register, login, logout and whoami; upload, download, stat, list and delete
of each user's files (TCP only; see docs/protocol.md).

Options:
  --config FILE       read settings from a JSON config file (comments allowed)
  --set KEY=VALUE     override one setting, e.g. --set tcp.port=0 (repeatable;
                      applied after the file; a boolean takes true or false)
  --check-config      validate the settings, print "config ok" and exit
  --print-ports       once the sockets are bound, print "tcp=PORT udp=PORT"
                      on stdout, with " tls=PORT" when TLS is on and
                      " admin=PORT" when the admin listener is (useful with
                      port 0)
  --version           print the version and exit
  --help              print this help and exit

User management works on the database of the same config, with or without
the daemon running: add and passwd read the password from the terminal
without echo (asked twice), or one line from stdin when it is not a terminal.
Only add creates the database; the other commands refuse when there is none,
and every failure names the database path used (storage.dir/fxd.db, or
auth.db_path): run them with the daemon's --config.
passwd and del end the logins of that user at their next file request. An
admin may read stats from another host; list marks admins.

The database is SQLite under storage.dir unless database.url (or the
FXD_DATABASE_URL environment variable) names a PostgreSQL server that several
instances share (docs/cluster.md). fxd migrates its schema at start; db
migrate does it by hand, db status shows the version and counts, and db
import-sqlite FILE copies a single-host database (users with their password
hashes, files, partial uploads) into an empty PostgreSQL one.

Without --config the built-in defaults apply: TCP 127.0.0.1:7070, UDP
127.0.0.1:7071, storage in ./var. config/fxd.json lists every key.

storage.backend=s3 keeps file bodies in an S3-compatible bucket (s3.endpoint,
s3.bucket; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or
s3.credentials_file) instead of storage.dir/users (docs/s3.md).

The admin listener (HTTP, 127.0.0.1:9470 by default; admin.enabled=false
turns it off) serves /metrics (Prometheus), /healthz, /readyz and /status.

TLS listens on its own port (7443) once tls.cert and tls.key name PEM files;
auth.plaintext decides where passwords may come over plain TCP (default:
only from this host).

SIGHUP re-reads the config and applies what can change live (log, limits,
timeouts, auth, the UDP rate, the TLS certificate, key and CA files); ports,
addresses, storage and workers need a restart. Under systemd, fxd reports readiness and watchdog keep-alives
(sd_notify) and serves the sockets of fxd.socket when they are passed.

Exit status: 0 after a clean shutdown (SIGTERM or SIGINT), 1 when the daemon
cannot start (port in use, storage not usable; the message names the
listener, address and port, the likely cause and the key to change) or
stopped itself because a loop it cannot serve without failed (logged), 2 for
bad options or config.
)";

struct options {
    std::optional<std::filesystem::path> config_file;
    std::vector<std::string> overrides;
    bool check_config = false;
    bool print_ports = false;
    std::optional<user_command> user; ///< `fxd user ...` instead of serving
    std::optional<db_command> db;     ///< `fxd db ...` instead of serving
};

constexpr std::string_view user_usage =
    "usage: fxd user add [--admin] NAME, fxd user passwd|del NAME, fxd user admin NAME on|off, or fxd user list";

/// Adds `user` and its four commands to the command line; the chosen one lands in opts.user.
CLI::App* add_user_commands(CLI::App& app, options& opts)
{
    // Options of fxd itself (--set, --config) may follow the user command too: fallthrough.
    auto* user = app.add_subcommand("user")->require_subcommand(0, 1)->fallthrough();
    const CLI::Validator valid_name(
        [](const std::string& text) {
            if (protocol::is_valid_user_name(text))
                return std::string();
            return "'" + text + "' is not a valid user name (1 to 32 of a-z 0-9 _ . -, starting with a letter or digit)";
        },
        "NAME");
    using enum user_command::action;
    for (const auto& [word, what] :
         {std::pair{"add", add}, {"passwd", passwd}, {"del", del}, {"admin", admin}, {"list", list}}) {
        const auto action = what; // a named copy: Clang 14 cannot capture a structured binding
        auto* command = user->add_subcommand(word)->fallthrough();
        if (action != list)
            command->add_option("NAME")->required()->check(valid_name);
        if (action == add)
            command->add_flag("--admin")->description("may read stats from another host");
        if (action == admin)
            command->add_option("SWITCH")->required()->check(CLI::IsMember({"on", "off"}));
        command->callback([&opts, command, action] {
            const auto* name = command->get_option_no_throw("NAME");
            user_command chosen{action, name ? name->as<std::string>() : std::string()};
            if (action == add)
                chosen.admin = command->get_option("--admin")->as<bool>();
            if (action == admin)
                chosen.admin = command->get_option("SWITCH")->as<std::string>() == "on";
            opts.user = std::move(chosen);
        });
    }
    return user;
}

/// Adds `db` and its three commands; the chosen one lands in opts.db.
CLI::App* add_db_commands(CLI::App& app, options& opts)
{
    auto* db = app.add_subcommand("db")->require_subcommand(0, 1)->fallthrough();
    using enum db_command::action;
    db->add_subcommand("migrate")->fallthrough()->callback([&opts] { opts.db = db_command{migrate, {}}; });
    db->add_subcommand("status")->fallthrough()->callback([&opts] { opts.db = db_command{status, {}}; });
    auto* import = db->add_subcommand("import-sqlite")->fallthrough();
    import->add_option("FILE")->required();
    import->callback([&opts, import] {
        opts.db = db_command{import_sqlite, import->get_option("FILE")->as<std::string>()};
    });
    return db;
}

/// The parsed command line, or the exit status when there is nothing more to do
/// (help, version, or a usage error already reported on stderr).
std::variant<options, int> parse_command_line(int argc, char** argv)
{
    options opts;
    CLI::App app("", "fxd");
    app.option_defaults()->disable_flag_override(); // a switch takes no value: --print-ports=x is an error
    app.set_help_flag("-h,--help");
    app.set_version_flag("--version", "fxd " + std::string(version));
    app.add_option_function<std::string>("--config", [&](const std::string& file) { opts.config_file = file; });
    app.add_option("--set", opts.overrides)->allow_extra_args(false); // one KEY=VALUE per --set
    app.add_flag("--check-config", opts.check_config);
    app.add_flag("--print-ports", opts.print_ports);
    const auto* user = add_user_commands(app, opts);
    const auto* db = add_db_commands(app, opts);
    try {
        app.parse(argc, argv);
        if (user->parsed() && !opts.user)
            throw CLI::RequiredError("user: one of add, passwd, del, admin or list");
        if (db->parsed() && !opts.db)
            throw CLI::RequiredError("db: one of migrate, status or import-sqlite");
    } catch (const CLI::CallForHelp&) {
        std::cout << usage;
        return 0;
    } catch (const CLI::CallForVersion& e) {
        std::cout << e.what() << '\n';
        return 0;
    } catch (const CLI::ParseError& e) {
        std::cerr << "fxd: " << e.what();
        if (user->parsed())
            std::cerr << '\n' << user_usage << '\n';
        else if (db->parsed())
            std::cerr << "\nusage: fxd db migrate, fxd db status, or fxd db import-sqlite FILE\n";
        else
            std::cerr << " (see fxd --help)\n";
        return 2;
    }
    return opts;
}

/// Makes storage.dir exist with owner-only permissions; refuses a folder others may write to.
void prepare_storage(const std::filesystem::path& dir)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        throw std::runtime_error("cannot create storage.dir '" + dir.string() + "': " + ec.message());
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw std::runtime_error("storage.dir '" + dir.string() + "' is not a folder");
    if ((st.st_mode & S_IWOTH) != 0)
        throw std::runtime_error("storage.dir '" + dir.string() + "' is writable by everyone; chmod o-w it");
    if (st.st_uid == ::geteuid() && (st.st_mode & 0077) != 0)
        ::chmod(dir.c_str(), 0700);
}

/// What systemctl status shows once the daemon serves.
/// "tcp=P udp=U", with " tls=T" when TLS is on and " admin=A" when the admin
/// listener is: what --print-ports prints.
std::string ports_line(const server& srv)
{
    std::string line = "tcp=" + std::to_string(srv.tcp_port()) + " udp=" + std::to_string(srv.udp_port());
    if (const auto tls = srv.tls_port())
        line += " tls=" + std::to_string(*tls);
    if (const auto admin = srv.admin_port())
        line += " admin=" + std::to_string(*admin);
    return line;
}

std::string status_line(const server& srv)
{
    return "serving " + ports_line(srv);
}

/// SIGHUP: re-reads the same file and --set list. An invalid file changes nothing.
void reload_config(server& srv, spdlog::logger& log, const options& opts)
{
    systemd::notify_reloading();
    log.info("SIGHUP: reloading the config");
    try {
        srv.reload(load_config(opts.config_file ? &*opts.config_file : nullptr, opts.overrides));
    } catch (const config_error& e) {
        log.error("reload refused, keeping the running config: {}", e.what());
    }
    systemd::notify_ready(status_line(srv));
}

} // namespace

int run(int argc, char** argv)
{
    ::umask(077); // everything fxd creates (database, files, folders) is its own alone
    auto parsed = parse_command_line(argc, argv);
    if (const int* status = std::get_if<int>(&parsed))
        return *status;
    const auto& opts = std::get<options>(parsed);

    config cfg;
    try {
        cfg = load_config(opts.config_file ? &*opts.config_file : nullptr, opts.overrides);
    } catch (const config_error& e) {
        std::cerr << "fxd: " << e.what() << '\n';
        return 2;
    }
    if (opts.check_config) {
        std::cout << "config ok\n";
        return 0;
    }
    if (opts.user)
        return run_user_command(cfg, *opts.user);
    if (opts.db)
        return run_db_command(cfg, *opts.db);

    auto log = make_logger(cfg.log.level, cfg.log.format);
    std::signal(SIGPIPE, SIG_IGN); // a peer gone mid-write is an error code, not a death
    raise_descriptor_limit(cfg, *log);
    try {
        prepare_storage(cfg.storage.dir);
        boost::asio::io_context io(1);
        server srv(io, cfg, *log);
        srv.start();
        settle_privileges(cfg, *log);
        log->info("fxd {} listening: tcp={}:{} udp={}:{}{} storage={}", version, cfg.tcp.bind, srv.tcp_port(),
                  cfg.udp.bind, srv.udp_port(),
                  srv.tls_port() ? " tls=" + (cfg.tls.bind.empty() ? cfg.tcp.bind : cfg.tls.bind) + ":" +
                                       std::to_string(*srv.tls_port())
                                 : std::string(),
                  cfg.storage.backend == "s3" ? cfg.s3.endpoint + "/" + cfg.s3.bucket + "/" + cfg.s3.prefix
                                              : std::filesystem::absolute(cfg.storage.dir).string());
        if (opts.print_ports) {
            std::printf("%s\n", ports_line(srv).c_str());
            std::fflush(stdout);
        }
        srv.on_reload([&] { reload_config(srv, *log, opts); });
        systemd::notify_ready(status_line(srv));
        io.run();
        if (const int status = srv.exit_status(); status != 0)
            return status; // the reason is logged already
    } catch (const config_error& e) {
        log->critical("cannot run: {}", e.what()); // found only at start, e.g. missing S3 credentials
        return 2;
    } catch (const std::exception& e) {
        log->critical("cannot run: {}", e.what());
        return 1;
    }
    log->info("exiting cleanly");
    return 0;
}

} // namespace fxd::daemon
