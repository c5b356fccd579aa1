#pragma once
/// The daemon's configuration: built-in defaults, overlaid by a JSON file, then
/// by --set KEY=VALUE. Every key is declared once, in config.cpp, with its type
/// and bounds; unknown keys and bad values are refused with the key named.

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fxd::daemon {

struct config {
    struct tcp_section {
        std::string bind = "127.0.0.1";
        std::uint16_t port = 7070;
        bool operator==(const tcp_section&) const = default;
    } tcp;
    struct udp_section {
        std::string bind = "127.0.0.1";
        std::uint16_t port = 7071;
        double rate_per_source = 2000; ///< datagrams per second from one source; 0 = no limit
        std::uint32_t burst = 500;     ///< datagrams one source may send at once before the rate applies
        bool operator==(const udp_section&) const = default;
    } udp;
    struct tls_section {
        std::filesystem::path cert;      ///< PEM certificate chain; with key, the TLS listener is on
        std::filesystem::path key;       ///< PEM private key
        std::filesystem::path client_ca; ///< PEM bundle: when set, clients must present a certificate it signs
        std::string bind;                ///< empty: tcp.bind
        std::uint16_t port = 7443;
        std::string min_version = "1.2"; ///< "1.2" or "1.3"
        bool enabled() const noexcept { return !cert.empty() && !key.empty(); }
        bool operator==(const tls_section&) const = default;
    } tls;
    struct storage_section {
        std::filesystem::path dir = "var";
        double partial_ttl_s = 86400;
        std::uint64_t quota_bytes = 0; ///< per user; 0 = none
        std::uint64_t max_files_per_user = 100000; ///< finished files plus partials; 0 = none
        /// Where file bodies live: "local" (storage.dir) or "s3" (the s3 section's bucket).
        std::string backend = "local";
        bool operator==(const storage_section&) const = default;
    } storage;
    struct s3_section {
        std::string endpoint;                ///< http(s)://host[:port], no path
        std::string bucket;
        std::string region = "us-east-1";
        std::string prefix;                  ///< prepended to every object key fxd makes
        bool path_style = true;              ///< endpoint/bucket/key rather than bucket.endpoint/key
        std::uint64_t part_bytes = 16777216; ///< multipart part size: an upload holds one part in memory
        double request_timeout_s = 30;
        std::filesystem::path ca_file;       ///< PEM CA bundle for an https endpoint; empty: the system's
        std::filesystem::path credentials_file; ///< shared-credentials file; the AWS_* variables win
        bool operator==(const s3_section&) const = default;
    } s3;
    struct log_section {
        std::string level = "info";
        std::string format = "text";
        bool operator==(const log_section&) const = default;
    } log;
    struct limits_section {
        std::uint32_t max_header_bytes = 16384;
        std::uint64_t max_echo_bytes = 1048576;
        std::uint64_t max_upload_bytes = 17179869184ULL;
        std::uint64_t max_discard_bytes = 1048576;
        std::uint64_t max_connections = 10000;
        /// Per IPv4 address or IPv6 /64: what one client host needs (a parallel
        /// transfer tool, a few users behind one NAT), far below max_connections.
        std::uint64_t max_connections_per_address = 64;
        std::uint64_t max_pending_reply_bytes = 4194304;
        /// Gathered request bodies plus unread replies, over all connections together.
        std::uint64_t max_buffered_bytes = 268435456; // 256 MiB
        bool operator==(const limits_section&) const = default;
    } limits;
    struct timeouts_section {
        double idle_s = 300;
        double header_s = 10;
        double body_s = 60;
        double drain_s = 30;
        bool operator==(const timeouts_section&) const = default;
    } timeouts;
    struct auth_section {
        std::filesystem::path db_path;          ///< empty: storage.dir/fxd.db
        bool allow_register = true;
        /// Register and login over plain TCP: "loopback" (only from loopback peers), "allow", "deny".
        std::string plaintext = "loopback";
        std::uint32_t max_failures = 5;
        std::uint32_t max_failures_per_address = 50;
        double lockout_s = 60;
        std::uint32_t hash_passes = 2;
        std::uint64_t hash_memory_bytes = 19922944; // 19 MiB
        std::uint32_t max_registrations_per_address = 20; ///< per IPv4 address or IPv6 /64
        double register_window_s = 3600;
        /// How long a remembered login (login with "remember": true) lasts: 30 days.
        std::uint64_t token_ttl_s = 2592000;
        bool operator==(const auth_section&) const = default;
    } auth;
    struct workers_section {
        std::uint32_t threads = 2;
        std::uint32_t queue_limit = 64;
        /// Password hashing (register, login) has its own pool, so a flood of
        /// them never delays file ops or stat on the general one.
        std::uint32_t hash_threads = 1;
        std::uint32_t hash_queue_limit = 16;
        bool operator==(const workers_section&) const = default;
    } workers;
    struct database_section {
        /// Empty: SQLite at auth.db_path (one host). postgresql://...: a
        /// PostgreSQL server shared by every instance. FXD_DATABASE_URL overrides it.
        std::string url;
        std::uint32_t pool_size = 4;       ///< PostgreSQL connections per instance at most
        double connect_timeout_s = 5;      ///< a request that needs the database waits at most this long for it
        double statement_timeout_s = 10;   ///< one statement at most
        /// How often an instance looks for uploads a dead instance left behind (PostgreSQL only).
        double sweep_interval_s = 10;
        bool operator==(const database_section&) const = default;
    } database;
    struct proxy_section {
        /// Networks (CIDR) of load balancers whose connections start with a
        /// PROXY protocol header naming the client. Empty: nobody.
        std::vector<std::string> trusted;
        bool operator==(const proxy_section&) const = default;
    } proxy;
    struct process_section {
        /// Started as root: the account to switch to once the sockets are bound
        /// and storage is open. Empty: keep running as started.
        std::string user;
        bool operator==(const process_section&) const = default;
    } process;

    struct admin_section {
        /// The operator's HTTP listener: /metrics, /healthz, /readyz, /status.
        bool enabled = true;
        std::string bind = "127.0.0.1";
        std::uint16_t port = 9470;
        bool operator==(const admin_section&) const = default;
    } admin;

    bool operator==(const config&) const = default;
};

/// A refused configuration: the message names the key. main() exits with status 2.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Builds a config from the defaults, an optional file and KEY=VALUE overrides.
/// Throws config_error.
config load_config(const std::filesystem::path* file, const std::vector<std::string>& overrides);

/// The defaults overlaid by a config file's text (JSON with comments). Throws
/// config_error; origin names the text in messages.
config load_config_text(std::string_view text, std::string_view origin = "config text");

/// Where the SQLite user database lives: auth.db_path, or fxd.db under storage.dir.
std::filesystem::path database_path(const config& cfg);

/// database.url replaced by FXD_DATABASE_URL when that is set and not empty
/// (secrets stay out of config files). Throws config_error for a bad URL.
void apply_database_environment(config& cfg);

/// Every key of cfg as config-file JSON: load_config_text reads it back equal.
std::string config_to_json(const config& cfg);

/// Every key the daemon knows, "section.name".
std::vector<std::string_view> config_key_names();

} // namespace fxd::daemon
