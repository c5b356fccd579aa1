#pragma once
// fxc internals: options, exit statuses, output, terminal helpers, commands.

#include <fxd/client/session.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace fxc {

/// Exit statuses, as documented in --help.
enum exit_status : int {
    exit_ok = 0,
    exit_server_error = 1, ///< the server answered an error (or a checksum did not match)
    exit_usage = 2,        ///< bad command line, or a local file that cannot be read or written
    exit_connection = 3,   ///< could not connect, or the connection broke or went silent
};

/// A command line fxc cannot carry out as given.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// fxd's default ports: plain TCP, and TLS (the daemon's tls.port).
constexpr std::uint16_t default_port = 7070;
constexpr std::uint16_t default_tls_port = 7443;

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = default_port; ///< default_tls_port with --tls and no --port
    std::uint16_t udp_port = 7071;
    std::chrono::milliseconds timeout{10000};
    std::optional<std::string> user; ///< --user, else FXC_USER
    bool quiet = false;
    bool json = false;
    bool udp = false;                ///< echo/ping --udp
    /// --tls (or FXC_TLS), --cacert, --cert, --key. Only file names: fxc keeps no secret anywhere.
    fxd::client::tls_options tls;
    std::optional<std::string> output; ///< download -o FILE, FOLDER or - (standard output)
    std::optional<std::string> as_name; ///< upload --as NAME (one file)
    bool force = false;                ///< download -f: replace a local file with other content
    /// The shell's Ctrl-C: transfers check it as they go and stop with
    /// fxd::client::cancelled_error when it says so. Empty: never.
    std::function<bool()> stop_requested;
    std::string command;
    std::vector<std::string> args;
};

/// Where results and messages go: text for people, or one JSON object per command.
class output {
public:
    explicit output(const options& opts) : opts_(opts) {}
    /// Prints a command's result: `text` (may be empty) in text mode, `fields`
    /// plus "command" and "ok": true in JSON mode.
    void result(const std::string& command, const std::string& text, boost::json::object fields) const;
    /// Prints a failure: a message on stderr (with a hint), and in JSON mode an
    /// object with "ok": false, "code", "message" and "exit" on stdout.
    void failure(const std::string& command, const std::string& code, const std::string& message,
                 const std::string& hint, int status) const;
    /// An informational line on stderr, unless --quiet or --json.
    void note(const std::string& text) const;
    /// The line after a command on several files: how many, how many bytes,
    /// how many failed (stdout; in JSON mode an object with "summary": true).
    void summary(const std::string& command, std::size_t files, std::uint64_t bytes, std::size_t failed) const;

private:
    const options& opts_;
};

/// Draws transfer progress on stderr: a bar redrawn in place when stderr is
/// a terminal, one plain line at the end otherwise, nothing under --quiet.
class progress_bar {
public:
    enum class mode { bar, final_line, off };
    progress_bar(std::string label, mode m);
    ~progress_bar();
    progress_bar(const progress_bar&) = delete;
    progress_bar& operator=(const progress_bar&) = delete;

    /// Throttled: draws at most ten times a second, plus the first and the last call.
    void update(std::uint64_t done, std::uint64_t total);
    /// Ends the bar (newline) or prints the plain line; `ok` false when the transfer failed.
    void finish(bool ok = true);
    /// The mode for fxc's stderr and options.
    static mode choose(const options& opts);

    /// The bar as drawn at this width (without the carriage return): at most
    /// columns - 1 characters, the label whole unless nothing else fits.
    std::string line(int columns, bool last) const;

private:
    void draw(bool last);
    std::string label_;
    mode mode_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_{};
    std::uint64_t first_done_ = 0;
    std::uint64_t done_ = 0;
    std::uint64_t total_ = 0;
    bool started_ = false;
    bool finished_ = false;
};

/// "1.5 MiB" style sizes.
std::string human_bytes(double bytes);

// terminal.cpp
bool stderr_is_terminal();
/// Reads a line from the controlling terminal without echo; nullopt when there is no terminal.
std::optional<std::string> read_secret_from_tty(const std::string& prompt);
/// Reads a line from stdin, without echo when stdin is a terminal; nullopt on end of input.
std::optional<std::string> read_secret_from_stdin(const std::string& prompt);
/// The password for a command: FXC_PASSWORD, else a prompt on the terminal
/// (asked twice when `confirm`). Throws usage_error when neither is possible.
std::string password_for(const std::string& user, bool confirm);

// commands.cpp
/// What to do about a server error code, for people ("" when nothing useful).
std::string hint_for(const std::string& code);
/// The user for commands that need one; throws usage_error naming --user and FXC_USER.
std::string required_user(const options& opts, const std::string& command);
/// Runs one command (not shell) on a connected session; returns the exit status.
int run_command(const options& opts, const output& out, fxd::client::session& s);
/// ping or echo over UDP.
int run_udp_command(const options& opts, const output& out);
/// Upload and download with progress, shared with the shell; print their
/// result and return the bytes moved. A `file` of "-" downloads to stdout.
std::uint64_t do_upload(const options& opts, const output& out, fxd::client::session& s, const std::string& file,
                        const std::string& name);
std::uint64_t do_download(const options& opts, const output& out, fxd::client::session& s, const std::string& name,
                          const std::string& file);
/// Checks the files of `fxc upload` before anything is sent (throws usage_error).
void check_upload_files(const options& opts);
/// JSON text with every number in plain decimal (never 1.7E-3).
std::string json_text(const boost::json::value& v);
/// Prints the failure the exception being handled stands for; returns its exit
/// status. `connected`: whether the connection had been made.
int report_failure(const options& opts, const output& out, const std::string& command, bool connected);
void do_list(const output& out, fxd::client::session& s);
void do_stat(const output& out, fxd::client::session& s, const std::string& name);
/// Checks a file name against the contract's rules; throws usage_error.
void check_file_name(const std::string& name);

// settings.cpp
/// $XDG_CONFIG_HOME/fxc, else ~/.config/fxc (empty when neither is known).
std::filesystem::path config_dir();
/// $XDG_STATE_HOME/fxc, else ~/.local/state/fxc (the shell's history).
std::filesystem::path state_dir();

/// Defaults from config_dir()/config, plain `key = value` lines ('#' starts a
/// comment): host, port, user, tls, cacert. Options and FXC_* override them.
struct config_file {
    std::optional<std::string> host;
    std::optional<std::uint16_t> port;
    std::optional<std::string> user;
    std::optional<bool> tls;
    std::optional<std::string> cacert;
};
/// Reads it (nothing when there is no file); throws usage_error naming the file and line.
config_file read_config_file();

/// Remembered logins in config_dir()/credentials (mode 0600): per server
/// (host:port) and user, the token fxd issued and when it expires.
class credentials_file {
public:
    /// Reads the file; throws usage_error when others may read it or it cannot be read.
    credentials_file();
    std::optional<std::string> token(const std::string& server, const std::string& user) const;
    /// The users with an unexpired login on a server.
    std::vector<std::string> users(const std::string& server) const;
    /// Adds or replaces a login and writes the file (whole, 0600, renamed into place).
    void put(const std::string& server, const std::string& user, const std::string& token, std::int64_t expires);
    /// Forgets a login and writes the file; false when there was none.
    bool remove(const std::string& server, const std::string& user);
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    struct entry {
        std::string server;
        std::string user;
        std::string token;
        std::int64_t expires = 0;
    };
    void save() const;
    std::filesystem::path path_;
    std::vector<entry> entries_;
};

/// "host:port", the key of remembered logins.
std::string server_key(const options& opts);
/// Logs the session in as the command's user: FXC_PASSWORD when set, else a
/// remembered login, else the password asked on the terminal.
void login(const options& opts, const output& out, fxd::client::session& s, const std::string& command);

// shell.cpp
int run_shell(const options& opts, const output& out, fxd::client::session& s);

} // namespace fxc
