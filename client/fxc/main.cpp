// fxc: the command-line client of fxd. Parses the command line, runs one
// command (or the interactive shell) and maps every failure to an exit status.

#include "fxc.hpp"

#include <fxd/client/client.hpp>

#include <boost/json/serialize.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

namespace {

using namespace fxc;

constexpr const char* help_text = R"(fxc - the command-line client of fxd

Usage: fxc [OPTIONS] COMMAND [ARGS...]

Commands:
  ping                    check that fxd answers (also --udp)
  hello                   show the server's name, protocol, ops and limits
  echo TEXT...            send TEXT, print the server's upper-cased copy (also --udp)
  stats                   print the daemon's counters (JSON)
  register                create the account --user NAME (password: see below)
  whoami                  show who the connection acts as; logs in first when
                          a user is given
  login                   log in once and remember it: later commands need no
                          password (see Password below)
  logout                  the server revokes the remembered login; its local
                          copy is deleted
  upload FILE...          store each FILE under its base name, with its SHA-256
                          and modification time; when the server holds an
                          interrupted upload of a name, continues from where
                          it stopped. Folders are refused (names have none)
  upload FILE --as NAME   store one FILE as NAME
  download NAME...        fetch each NAME into the current folder, or -o FILE,
                          -o FOLDER (the only choice with several names), or
                          -o - (standard output: no .part, SHA-256 still
                          checked). Bytes go to FILE.part, created beside
                          FILE, renamed to FILE once the SHA-256 matches, and
                          FILE gets the server's modification time; an
                          existing FILE.part is continued; on a mismatch the
                          .part is removed and fxc exits 1. Writes regular
                          files only: a link, FIFO or device is refused (exit
                          2). An existing FILE with the same SHA-256 is
                          skipped; with other content it is kept unless -f
  ls                      list your files (size, modified, name)
  stat NAME               show a file's size, SHA-256, mtime and partial bytes
  rm NAME...              delete files
  shell                   an interactive shell on one connection: ls, get NAME
                          [FILE], put FILE [NAME], rm, stat, login [USER],
                          logout, help, quit, and the menu 1 register, 2 login,
                          3 download, 4 upload, 5 list, q quit. On a terminal:
                          line editing, history ($XDG_STATE_HOME/fxc/history),
                          Tab completes commands and the server's names;
                          Ctrl-C stops a transfer (it resumes) and keeps the shell

Options (anywhere on the line; '--' ends them):
  --host H          server address (default 127.0.0.1)
  --port P          TCP port (default 7070; 7443 with --tls)
  --udp-port U      UDP port for --udp (default 7071)
  --timeout S       seconds to wait for the connection or for any progress
                    (default 10)
  --user NAME       the account to use (default: $FXC_USER)
  --udp             ping and echo: use UDP instead of TCP (never encrypted)
  --tls             speak TLS to fxd's TLS port (also FXC_TLS=1); the server's
                    certificate must verify and name --host
  --cacert FILE     with --tls: trust the CA certificates in FILE (PEM)
                    instead of the system's store
  --cert FILE       with --tls: client certificate (PEM) for mutual TLS;
  --key FILE          its private key (PEM, not encrypted); both or neither
  -o, --output FILE download: where to write (a file, a folder, or - for
                    standard output)
  -f, --force       download: replace a local file with other content
  --as NAME         upload: the name to store one file under
  -q, --quiet       no progress bars or notes on stderr (errors still print)
  --json            one JSON object per command on stdout, for scripts:
                    {"command": ..., "ok": true, ...} or
                    {"command": ..., "ok": false, "code": ..., "message": ..., "exit": N}
  -h, --help        this text
  -V, --version     fxc's version

Password: taken from $FXC_PASSWORD, else from a login remembered by
'fxc login', else asked on the terminal without echo (twice for register).
ls, stat, rm, upload and download need a user; with one remembered login on
the server, that user is the default. 'fxc login' keeps the server's token
(never the password) in $XDG_CONFIG_HOME/fxc/credentials (~/.config/fxc/
credentials), mode 0600, per server and user, until it expires
(auth.token_ttl_s on the server, 30 days by default) or 'fxc logout'.

Config: $XDG_CONFIG_HOME/fxc/config (~/.config/fxc/config) holds defaults as
'key = value' lines: host, port, user, tls (true/false), cacert. Options and
FXC_* variables override them.

TLS: over plain TCP, fxd accepts passwords from loopback only by default
(auth.plaintext); from elsewhere use --tls. FXC_TLS=1 in the environment
stands for --tls (FXC_TLS=0 turns it off).

Progress: uploads and downloads draw a bar on stderr (bytes, percent, rate,
time left) when stderr is a terminal, and print one plain line at the end
otherwise. Interrupting one (Ctrl-C) keeps what arrived: run the same command
again to resume it.

Several files: upload, download and rm go on past a file that fails
(reporting it), then print a summary line (files, bytes, failures); with
--json, one object per file, then {"command": ..., "summary": true,
"files": N, "bytes": B, "failed": F, "ok": ...}. The exit status is the
highest one met.

Exit status:
  0  success
  1  the server answered an error (its code and message are printed), or a
     downloaded file did not match its SHA-256
  2  usage error, or a local file that cannot be read or written
  3  could not connect, the connection broke or timed out, TLS failed
     (for instance a certificate that does not verify: the reason is printed),
     or what answered is not an fxd server

Examples:
  fxc --port 7070 ping
  FXC_USER=alice fxc register
  fxc --user alice upload big.iso          # interrupted? run it again to resume
  fxc --user alice upload *.txt                # each under its own name
  fxc --user alice download big.iso -o copy.iso
  fxc --user alice download notes.txt -o - | less
  fxc --json --user alice ls
  fxc --tls --host files.example.org --user alice ls          # CA from the system store
  fxc --tls --cacert ca.pem --cert me.pem --key me.key ping   # mutual TLS
)";

struct command_spec {
    std::size_t min_args;
    std::size_t max_args;
    const char* usage;
};

const std::map<std::string, command_spec, std::less<>>& commands()
{
    static const std::map<std::string, command_spec, std::less<>> table{
        {"ping", {0, 0, "ping [--udp]"}},
        {"hello", {0, 0, "hello"}},
        {"echo", {1, SIZE_MAX, "echo [--udp] TEXT..."}},
        {"stats", {0, 0, "stats"}},
        {"register", {0, 0, "register"}},
        {"whoami", {0, 0, "whoami"}},
        {"login", {0, 0, "login"}},
        {"logout", {0, 0, "logout"}},
        {"upload", {1, SIZE_MAX, "upload FILE... (or upload FILE --as NAME)"}},
        {"download", {1, SIZE_MAX, "download NAME... [-o FILE|FOLDER|-] [-f]"}},
        {"ls", {0, 0, "ls"}},
        {"stat", {1, 1, "stat NAME"}},
        {"rm", {1, SIZE_MAX, "rm NAME..."}},
        {"shell", {0, 0, "shell"}},
    };
    return table;
}

// Checks of option values for CLI11: empty when the text is fine, else what is wrong
// (CLI11 puts the option's name in front).

std::string port_number(const std::string& text)
{
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || v < 1 || v > 65535)
        return "must be a port number from 1 to 65535, not '" + text + "'";
    return {};
}

std::string seconds(const std::string& text)
{
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno != 0 || !(v > 0) || v > 86400)
        return "must be a number of seconds above 0, not '" + text + "'";
    return {};
}

std::string not_empty(const std::string& text)
{
    return text.empty() ? "must not be empty" : std::string();
}

/// Checks the command and its arguments once the options are read.
void check_command(options& opts, std::vector<std::string> positional, bool output_given, bool as_given)
{
    if (positional.empty())
        throw usage_error("no command given");
    opts.command = positional.front();
    if (opts.command == "list")
        opts.command = "ls";
    else if (opts.command == "delete")
        opts.command = "rm";
    opts.args.assign(positional.begin() + 1, positional.end());
    const auto it = commands().find(opts.command);
    if (it == commands().end())
        throw usage_error("unknown command '" + opts.command + "'");
    const auto& spec = it->second;
    if (opts.args.size() < spec.min_args || opts.args.size() > spec.max_args)
        throw usage_error(std::string("usage: fxc ") + spec.usage);
    if (opts.udp && opts.command != "ping" && opts.command != "echo")
        throw usage_error("--udp applies to ping and echo only");
    if (output_given && opts.command != "download")
        throw usage_error("-o applies to download only");
    if (output_given && opts.output->empty())
        throw usage_error("-o needs a file name");
    if (as_given && opts.command != "upload")
        throw usage_error("--as applies to upload only");
    if (opts.force && opts.command != "download")
        throw usage_error("--force applies to download only");
    if (output_given && opts.args.size() > 1 && *opts.output == "-")
        throw usage_error("-o - writes one file to standard output; " + std::to_string(opts.args.size()) +
                          " names were given");
    if (output_given && opts.args.size() > 1 && !std::filesystem::is_directory(*opts.output))
        throw usage_error("with several names, -o must be an existing folder; " + *opts.output + " is not one");
    if (output_given && *opts.output == "-" && opts.json)
        throw usage_error("-o - puts the file on standard output, where --json would print too: use one of them");
    if (opts.udp && opts.tls.enabled)
        throw usage_error("--udp is plain UDP: it cannot be used with --tls (or FXC_TLS=1)");
}

/// Checks the TLS options once read: file options only with TLS, a certificate only with its key.
void check_tls(const options& opts)
{
    const auto& tls = opts.tls;
    if (!tls.enabled && (!tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty()))
        throw usage_error("--cacert, --cert and --key need --tls (or FXC_TLS=1)");
    if (tls.cert_file.empty() != tls.key_file.empty())
        throw usage_error("--cert and --key go together: a client certificate needs its key");
}

/// Fills opts from the command line; false when it asked for --help or
/// --version, which are printed here. Throws usage_error.
/// Options may stand anywhere on the line; '--' ends them (CLI11's own rules).
bool parse(int argc, char** argv, options& opts)
{
    // $XDG_CONFIG_HOME/fxc/config first: what the command line and FXC_* give overrides it.
    const auto defaults = read_config_file();
    if (defaults.host)
        opts.host = *defaults.host;
    if (defaults.port)
        opts.port = *defaults.port;
    if (defaults.user)
        opts.user = *defaults.user;
    if (defaults.tls)
        opts.tls.enabled = *defaults.tls;
    CLI::App app("", "fxc");
    app.option_defaults()->disable_flag_override(); // --quiet=x is an error, not a value for --quiet
    app.set_help_flag("-h,--help");
    app.set_version_flag("-V,--version", std::string("fxc ") + FXC_VERSION);
    app.add_option("--host", opts.host)->check(CLI::Validator(not_empty, "HOST"));
    auto* port = app.add_option("--port", opts.port)->check(CLI::Validator(port_number, "PORT"));
    app.add_option("--udp-port", opts.udp_port)->check(CLI::Validator(port_number, "PORT"));
    app.add_option_function<double>("--timeout", [&](double s) {
           opts.timeout = std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(s * 1000)));
       })->check(CLI::Validator(seconds, "S"));
    // FXC_USER stands in for a missing --user; CLI11 ignores it when empty.
    app.add_option_function<std::string>("--user", [&](const std::string& user) { opts.user = user; })
        ->envname("FXC_USER");
    app.add_flag("-q,--quiet", opts.quiet);
    app.add_flag("--json", opts.json);
    app.add_flag("--udp", opts.udp);
    app.add_flag("--tls", opts.tls.enabled)->envname("FXC_TLS");
    app.add_option("--cacert", opts.tls.ca_file)->check(CLI::ExistingFile);
    app.add_option("--cert", opts.tls.cert_file)->check(CLI::ExistingFile);
    app.add_option("--key", opts.tls.key_file)->check(CLI::ExistingFile);
    auto* output = app.add_option_function<std::string>("-o,--output", [&](const std::string& file) { opts.output = file; });
    auto* as = app.add_option_function<std::string>("--as", [&](const std::string& name) { opts.as_name = name; });
    app.add_flag("-f,--force", opts.force);
    std::vector<std::string> positional;
    app.add_option("command", positional);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << help_text;
        return false;
    } catch (const CLI::CallForVersion& e) {
        std::cout << e.what() << '\n';
        return false;
    } catch (const CLI::ParseError& e) {
        throw usage_error(e.what());
    }
    // The CA file applies when TLS ends up on, however it was turned on.
    if (defaults.cacert && opts.tls.enabled && opts.tls.ca_file.empty())
        opts.tls.ca_file = *defaults.cacert;
    check_command(opts, std::move(positional), output->count() > 0, as->count() > 0);
    check_tls(opts);
    if (opts.tls.enabled && port->count() == 0 && !defaults.port)
        opts.port = default_tls_port;
    // No user named anywhere: the one remembered login on this server, if there is exactly one.
    static constexpr std::string_view logs_in[] = {"upload", "download", "ls", "stat", "rm", "login", "logout"};
    if (!opts.user && std::find(std::begin(logs_in), std::end(logs_in), opts.command) != std::end(logs_in)) {
        const auto users = credentials_file().users(opts.host + ":" + std::to_string(opts.port));
        if (users.size() == 1)
            opts.user = users.front();
    }
    return true;
}

bool is_transfer(const std::string& command)
{
    return command == "upload" || command == "download";
}

extern "C" void on_interrupt(int)
{
    // Ends a progress bar's line and says how to go on; what arrived is kept.
    static constexpr char message[] = "\nfxc: interrupted; run the same command again to resume\n";
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(130);
}

} // namespace


namespace fxc {

int report_failure(const options& opts, const output& out, const std::string& command, bool connected)
{
    const std::string where = opts.host + ":" + std::to_string(opts.port);
    try {
        throw;
    } catch (const usage_error& e) {
        std::cerr << "fxc: " << e.what() << "\n";
        return exit_usage;
    } catch (const fxd::client::server_error& e) {
        out.failure(command, e.code(), e.message(), hint_for(e.code()), exit_server_error);
        return exit_server_error;
    } catch (const fxd::client::checksum_error& e) {
        out.failure(command, "checksum_mismatch", e.what(), hint_for("checksum_mismatch"), exit_server_error);
        return exit_server_error;
    } catch (const fxd::client::local_file_error& e) {
        out.failure(command, "local_file", e.what(), "", exit_usage);
        return exit_usage;
    } catch (const std::system_error& e) {
        out.failure(command, "local_file", e.what(), "", exit_usage);
        return exit_usage;
    } catch (const fxd::client::not_fxd_error& e) {
        out.failure(command, "not_fxd", where + ": " + e.what(),
                    "check --host and --port: fxd listens on 7070 (7443 for --tls) unless configured otherwise",
                    exit_connection);
        return exit_connection;
    } catch (const fxd::client::tls_error& e) {
        // Before the connection_error handler: a TLS failure is not a missing
        // server, and the reason (e.g. "certificate verify failed: ...") is the message.
        const std::string text = e.what();
        std::string hint;
        if (text.find("certificate verify failed") != std::string::npos)
            hint = "fxd's certificate is not trusted here: --cacert FILE names the CA that signed it, and "
                   "--host must be a name or address the certificate carries";
        else if (text.find("alert") != std::string::npos || text.find("client certificate") != std::string::npos)
            hint = "fxd refused this connection; if it asks for a client certificate (tls.client_ca), "
                   "give one it trusts with --cert FILE --key FILE";
        else
            hint = "is " + where + " fxd's TLS port (tls.port, default 7443)?";
        out.failure(command, "tls_failed", where + ": " + text, hint, exit_connection);
        return exit_connection;
    } catch (const fxd::client::connection_error& e) {
        const std::string text = e.what();
        if (opts.udp) {
            out.failure(command, "no_reply", text,
                        "is fxd's UDP socket on " + opts.host + ":" + std::to_string(opts.udp_port) + "? (--udp-port)",
                        exit_connection);
        } else if (!connected) {
            out.failure(command, "connect_failed", text,
                        "is fxd running on " + where + "? (start it, or pass --host and --port)", exit_connection);
        } else if (text.find("timed out") != std::string::npos) {
            out.failure(command, "timeout", "no answer from " + where + ": " + text,
                        "the server may be overloaded; a longer --timeout waits more" +
                            std::string(is_transfer(command) ? "; run the same command again to resume" : ""),
                        exit_connection);
        } else {
            out.failure(command, "connection_broken", "the connection to " + where + " broke: " + text,
                        is_transfer(command) ? "run the same command again to resume"
                                             : "is fxd still running on " + where + "?",
                        exit_connection);
        }
        return exit_connection;
    } catch (const std::exception& e) {
        out.failure(command, "client_error", e.what(), "", exit_server_error);
        return exit_server_error;
    }
}

} // namespace fxc

int main(int argc, char** argv)
{
    options opts;
    try {
        if (!parse(argc, argv, opts))
            return exit_ok;
    } catch (const usage_error& e) {
        std::cerr << "fxc: " << e.what() << "\nTry 'fxc --help' for more.\n";
        return exit_usage;
    }

    const output out(opts);
    bool connected = false;
    try {
        if (opts.udp) {
            // UDP needs no TCP session.
            return run_udp_command(opts, out);
        }
        // Command lines that cannot work fail before anything is sent.
        if (opts.command == "upload" || opts.command == "download" || opts.command == "ls" ||
            opts.command == "stat" || opts.command == "rm" || opts.command == "register" ||
            opts.command == "login" || opts.command == "logout")
            required_user(opts, opts.command);
        if (opts.command == "stat" || opts.command == "rm" || opts.command == "download") {
            for (const auto& name : opts.args)
                check_file_name(name);
        }
        if (opts.command == "upload")
            check_upload_files(opts);
        fxd::client::session s(opts.host, opts.port, opts.tls, opts.timeout);
        connected = true;
        if (is_transfer(opts.command)) {
            std::signal(SIGINT, on_interrupt);
            std::signal(SIGTERM, on_interrupt);
        }
        if (opts.command == "shell")
            return run_shell(opts, out, s);
        return run_command(opts, out, s);
    } catch (...) {
        return report_failure(opts, out, opts.command, connected);
    }
}
