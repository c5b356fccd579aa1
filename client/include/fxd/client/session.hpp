#pragma once
/// fxd::client::session: every op of the contract as a typed, blocking call
/// on one connection, with streamed, resumable and verified file transfers.
/// Errors the server answers become server_error; a broken or silent
/// connection becomes connection_error (the next call reconnects, logging in
/// again when the session had logged in).

#include <fxd/client/client.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::client {

/// The server answered a request with an error reply.
class server_error : public std::runtime_error {
public:
    server_error(std::string op, boost::json::object header);
    /// The contract's stable code, e.g. "not_found".
    const std::string& code() const noexcept { return code_; }
    /// The server's text for people.
    const std::string& message() const noexcept { return message_; }
    const std::string& op() const noexcept { return op_; }
    const boost::json::object& header() const noexcept { return header_; }

private:
    std::string op_;
    std::string code_;
    std::string message_;
    boost::json::object header_;
};

/// Bytes did not hash to the SHA-256 they were supposed to have.
class checksum_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A local file could not be read or written, or may not be written (a
/// download refuses to write through or over anything but a regular file, and
/// to replace a file with other content unless told to).
class local_file_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// progress(done, total): bytes of the whole file done so far, including any
/// resumed part; called after every piece, so throttle when drawing.
using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct file_stat {
    std::string name;
    bool exists = false;      ///< a finished file is stored
    std::uint64_t size = 0;   ///< when exists
    std::string sha256;       ///< when exists
    std::int64_t mtime = 0;   ///< when exists, seconds since the epoch
    std::uint64_t partial = 0; ///< bytes held of an interrupted upload
};

struct file_entry {
    std::string name;
    std::uint64_t size = 0;
    std::int64_t mtime = 0;
};

struct upload_options {
    /// Resume from the partial the server holds under that name, when there is one.
    bool resume = true;
    /// The file's SHA-256 when already known (otherwise it is computed first).
    std::optional<std::string> sha256;
    /// Sends the file's modification time as the upload's mtime, so the
    /// server keeps it (the rsync -t habit); false: the server uses its clock.
    bool send_mtime = true;
    progress_fn hash_progress;
    progress_fn progress;
};

struct upload_result {
    std::string name;
    std::uint64_t size = 0;
    std::string sha256;
    std::uint64_t resumed_from = 0; ///< bytes the server already held (0: a whole upload)
    bool restarted = false;         ///< a resume was refused or mismatched, so it went again from 0
    double seconds = 0;             ///< time spent sending, hashing excluded
    std::int64_t mtime = 0;         ///< as the server stored it (0 from a server that does not say)
};

struct download_options {
    /// Continue an existing FILE.part instead of starting over.
    bool resume = true;
    /// Replace an existing FILE whose content differs from the server's
    /// (without it such a download is refused before a byte is fetched).
    bool force = false;
    /// Give FILE the server's mtime for the file.
    bool set_mtime = true;
    progress_fn progress;
};

struct download_result {
    std::string name;
    std::filesystem::path path;
    std::uint64_t size = 0;
    std::string sha256;
    std::uint64_t resumed_from = 0; ///< bytes taken from an existing .part
    bool restarted = false;         ///< the .part was longer than the file, so it went again from 0
    bool skipped = false;           ///< FILE already had the server's SHA-256: nothing was fetched
    double seconds = 0;
    std::int64_t mtime = 0;         ///< the server's mtime for the file (0 when it does not say)
};

/// Where a streamed download's bytes go (download_to): called with each piece in order.
using sink_fn = std::function<void(std::span<const char>)>;

class session {
public:
    /// Connects at once (throws connection_error when it cannot).
    session(std::string host, std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    /// Connects at once over TLS when tls.enabled; reconnections use TLS too.
    session(std::string host, std::uint16_t port, tls_options tls,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));
    ~session();
    session(session&&) noexcept;
    session& operator=(session&&) noexcept;

    const std::string& host() const noexcept { return host_; }
    std::uint16_t port() const noexcept { return port_; }

    /// One request and its whole reply, whatever its status (reconnects first when broken).
    reply call(boost::json::object header, std::string_view body = {});
    /// Like call(), but an error reply throws server_error.
    reply request(boost::json::object header, std::string_view body = {});

    void ping();
    /// hello's reply header: server, protocol, ops, limits.
    boost::json::object hello();
    /// True when hello lists the op on TCP.
    bool offers(std::string_view op);
    std::string echo(std::string_view text);
    std::string register_user(const std::string& user, const std::string& password);
    /// Logs in; the session remembers the credentials to log in again after a reconnect.
    std::string login(const std::string& user, const std::string& password);
    /// A remembered login: logs in with the password and "remember": true;
    /// the server's token (and until when it lasts) comes back for later runs.
    struct remembered {
        std::string user;
        std::string token;
        std::int64_t expires = 0; ///< unix seconds
    };
    remembered login_remembered(const std::string& user, const std::string& password);
    /// Logs in with a token from login_remembered instead of the password.
    std::string login_token(const std::string& user, const std::string& token);
    void logout();
    /// logout with the token: the server forgets it. False when it did not know it.
    bool revoke_token(const std::string& token);
    std::optional<std::string> whoami();
    boost::json::object stats();

    /// nullopt when the server holds neither a file nor a partial of that name.
    std::optional<file_stat> stat(const std::string& name);
    std::vector<file_entry> list();
    void remove(const std::string& name);

    /// Streams a local file up as `name`, sending its SHA-256; resumes a
    /// partial the server holds of that name. Checks the server's SHA-256.
    upload_result upload(const std::filesystem::path& file, const std::string& name, const upload_options& options = {});
    /// Downloads `name` into file: bytes go to file + ".part" (continuing an
    /// existing one), which is renamed to file once its SHA-256 matches the
    /// server's; on a mismatch the .part is removed and checksum_error thrown.
    /// Writes regular files only: a file or .part that is a symbolic link,
    /// FIFO, device or folder is refused (local_file_error), and a new .part
    /// is created exclusively, never through a link. An existing file with the
    /// server's SHA-256 is kept (result.skipped); one with other content is
    /// refused unless options.force.
    download_result download(const std::string& name, const std::filesystem::path& file,
                             const download_options& options = {});
    /// Streams `name` into sink (standard output, say): no .part, no resume.
    /// The SHA-256 is still checked at the end: checksum_error when it differs
    /// (the sink has had the bytes by then).
    download_result download_to(const std::string& name, const sink_fn& sink, const download_options& options = {});

    /// Drops the connection and opens a new one (logging in again when logged in).
    void reconnect();
    /// The underlying connection, for raw frames.
    connection& conn();

private:
    void ensure_connected();
    template <class F>
    auto guarded(F&& f) -> decltype(f());
    upload_result upload_once(int fd, std::uint64_t total, const std::string& sha, const std::string& name,
                              std::uint64_t offset, std::optional<std::int64_t> mtime, const upload_options& options);
    /// Sends a download request (from offset) and reads the reply's header;
    /// an error reply (its body drained) is returned as it is.
    reply begin_download(const std::string& name, std::uint64_t offset);

    std::string host_;
    std::uint16_t port_ = 0;
    std::chrono::milliseconds timeout_;
    tls_options tls_;
    std::optional<connection> conn_;
    bool broken_ = false;
    /// What logged in, to log in again after a reconnect: user, then password or token.
    struct credentials {
        std::string user;
        std::string secret;
        bool is_token = false;
    };
    std::optional<credentials> credentials_;
    void remember_credentials(credentials c);
};

/// The .part path a download into `file` writes to.
std::filesystem::path part_path(const std::filesystem::path& file);

} // namespace fxd::client
