#include "config.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "proxy_trust.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include <array>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <variant>

namespace fxd::daemon {

namespace {

namespace json = boost::json;

using field_ref = std::variant<std::string*, std::filesystem::path*, bool*, std::uint16_t*, std::uint32_t*,
                               std::uint64_t*, double*, std::vector<std::string>*>;

enum class check { none, address, address_or_empty, log_level, log_format, non_empty, tls_version, plaintext, database_url,
                   network, storage_backend, endpoint, multiple_of_64k };

struct key_spec {
    std::string_view name;
    field_ref (*field)(config&);
    double min = 0;
    double max = 0;
    check extra = check::none;
};

constexpr double u64_max = static_cast<double>(std::numeric_limits<std::uint64_t>::max());

// The one list of keys: name, where it lives, and its bounds. config/fxd.json
// documents each; a test keeps the two in step.
const key_spec keys[] = {
    {"tcp.bind", [](config& c) -> field_ref { return &c.tcp.bind; }, 0, 0, check::address},
    {"tcp.port", [](config& c) -> field_ref { return &c.tcp.port; }, 0, 65535},
    {"udp.bind", [](config& c) -> field_ref { return &c.udp.bind; }, 0, 0, check::address},
    {"udp.port", [](config& c) -> field_ref { return &c.udp.port; }, 0, 65535},
    {"udp.rate_per_source", [](config& c) -> field_ref { return &c.udp.rate_per_source; }, 0, 1e9},
    {"udp.burst", [](config& c) -> field_ref { return &c.udp.burst; }, 1, 1000000000},
    {"tls.cert", [](config& c) -> field_ref { return &c.tls.cert; }},
    {"tls.key", [](config& c) -> field_ref { return &c.tls.key; }},
    {"tls.client_ca", [](config& c) -> field_ref { return &c.tls.client_ca; }},
    {"tls.bind", [](config& c) -> field_ref { return &c.tls.bind; }, 0, 0, check::address_or_empty},
    {"tls.port", [](config& c) -> field_ref { return &c.tls.port; }, 0, 65535},
    {"tls.min_version", [](config& c) -> field_ref { return &c.tls.min_version; }, 0, 0, check::tls_version},
    {"storage.dir", [](config& c) -> field_ref { return &c.storage.dir; }, 0, 0, check::non_empty},
    {"storage.partial_ttl_s", [](config& c) -> field_ref { return &c.storage.partial_ttl_s; }, 1, 1e9},
    {"storage.quota_bytes", [](config& c) -> field_ref { return &c.storage.quota_bytes; }, 0, 9.2e18},
    {"storage.max_files_per_user", [](config& c) -> field_ref { return &c.storage.max_files_per_user; }, 0, 1e9},
    {"log.level", [](config& c) -> field_ref { return &c.log.level; }, 0, 0, check::log_level},
    {"log.format", [](config& c) -> field_ref { return &c.log.format; }, 0, 0, check::log_format},
    {"limits.max_header_bytes", [](config& c) -> field_ref { return &c.limits.max_header_bytes; }, 64, 16777216},
    {"limits.max_echo_bytes", [](config& c) -> field_ref { return &c.limits.max_echo_bytes; }, 0, 1073741824},
    {"limits.max_upload_bytes", [](config& c) -> field_ref { return &c.limits.max_upload_bytes; }, 0, 4611686018427387904.0},
    {"limits.max_discard_bytes", [](config& c) -> field_ref { return &c.limits.max_discard_bytes; }, 0, 4611686018427387904.0},
    {"limits.max_connections", [](config& c) -> field_ref { return &c.limits.max_connections; }, 1, 1000000},
    {"limits.max_connections_per_address", [](config& c) -> field_ref { return &c.limits.max_connections_per_address; }, 1, 1000000},
    {"limits.max_pending_reply_bytes", [](config& c) -> field_ref { return &c.limits.max_pending_reply_bytes; }, 65536, 4294967296.0},
    {"limits.max_buffered_bytes", [](config& c) -> field_ref { return &c.limits.max_buffered_bytes; }, 65536, 1099511627776.0},
    {"timeouts.idle_s", [](config& c) -> field_ref { return &c.timeouts.idle_s; }, 0.01, 1e7},
    {"timeouts.header_s", [](config& c) -> field_ref { return &c.timeouts.header_s; }, 0.01, 1e7},
    {"timeouts.body_s", [](config& c) -> field_ref { return &c.timeouts.body_s; }, 0.01, 1e7},
    {"timeouts.drain_s", [](config& c) -> field_ref { return &c.timeouts.drain_s; }, 0, 1e7},
    {"auth.db_path", [](config& c) -> field_ref { return &c.auth.db_path; }},
    {"auth.allow_register", [](config& c) -> field_ref { return &c.auth.allow_register; }},
    {"auth.plaintext", [](config& c) -> field_ref { return &c.auth.plaintext; }, 0, 0, check::plaintext},
    {"auth.max_failures", [](config& c) -> field_ref { return &c.auth.max_failures; }, 1, 1000000},
    {"auth.max_failures_per_address", [](config& c) -> field_ref { return &c.auth.max_failures_per_address; }, 1, 1000000},
    {"auth.lockout_s", [](config& c) -> field_ref { return &c.auth.lockout_s; }, 0.01, 1e7},
    {"auth.hash_passes", [](config& c) -> field_ref { return &c.auth.hash_passes; }, 1, 64},
    {"auth.hash_memory_bytes", [](config& c) -> field_ref { return &c.auth.hash_memory_bytes; }, 8192, 4294967296.0},
    {"workers.threads", [](config& c) -> field_ref { return &c.workers.threads; }, 1, 64},
    {"workers.queue_limit", [](config& c) -> field_ref { return &c.workers.queue_limit; }, 1, 1000000},
    {"auth.max_registrations_per_address", [](config& c) -> field_ref { return &c.auth.max_registrations_per_address; }, 1, 1000000},
    {"auth.register_window_s", [](config& c) -> field_ref { return &c.auth.register_window_s; }, 0.01, 1e7},
    {"auth.token_ttl_s", [](config& c) -> field_ref { return &c.auth.token_ttl_s; }, 60, 315360000},
    {"workers.hash_threads", [](config& c) -> field_ref { return &c.workers.hash_threads; }, 1, 64},
    {"workers.hash_queue_limit", [](config& c) -> field_ref { return &c.workers.hash_queue_limit; }, 1, 1000000},
    {"process.user", [](config& c) -> field_ref { return &c.process.user; }},
    {"database.url", [](config& c) -> field_ref { return &c.database.url; }, 0, 0, check::database_url},
    {"database.pool_size", [](config& c) -> field_ref { return &c.database.pool_size; }, 1, 1000},
    {"database.connect_timeout_s", [](config& c) -> field_ref { return &c.database.connect_timeout_s; }, 0.1, 3600},
    {"database.statement_timeout_s", [](config& c) -> field_ref { return &c.database.statement_timeout_s; }, 0.1, 3600},
    {"database.sweep_interval_s", [](config& c) -> field_ref { return &c.database.sweep_interval_s; }, 0.1, 86400},
    {"proxy.trusted", [](config& c) -> field_ref { return &c.proxy.trusted; }, 0, 0, check::network},
    {"admin.enabled", [](config& c) -> field_ref { return &c.admin.enabled; }},
    {"admin.bind", [](config& c) -> field_ref { return &c.admin.bind; }, 0, 0, check::address},
    {"admin.port", [](config& c) -> field_ref { return &c.admin.port; }, 0, 65535},
    {"storage.backend", [](config& c) -> field_ref { return &c.storage.backend; }, 0, 0, check::storage_backend},
    {"s3.endpoint", [](config& c) -> field_ref { return &c.s3.endpoint; }, 0, 0, check::endpoint},
    {"s3.bucket", [](config& c) -> field_ref { return &c.s3.bucket; }},
    {"s3.region", [](config& c) -> field_ref { return &c.s3.region; }, 0, 0, check::non_empty},
    {"s3.prefix", [](config& c) -> field_ref { return &c.s3.prefix; }},
    {"s3.path_style", [](config& c) -> field_ref { return &c.s3.path_style; }},
    // S3 allows parts of 5 MiB to 5 GiB; whole 64 KiB units keep the saved
    // SHA-256 state on a block boundary.
    {"s3.part_bytes", [](config& c) -> field_ref { return &c.s3.part_bytes; }, 5242880, 5368709120.0, check::multiple_of_64k},
    {"s3.request_timeout_s", [](config& c) -> field_ref { return &c.s3.request_timeout_s; }, 0.1, 3600},
    {"s3.ca_file", [](config& c) -> field_ref { return &c.s3.ca_file; }},
    {"s3.credentials_file", [](config& c) -> field_ref { return &c.s3.credentials_file; }},
};

const key_spec* find_key(std::string_view name)
{
    for (const auto& k : keys) {
        if (k.name == name)
            return &k;
    }
    return nullptr;
}

[[noreturn]] void refuse(std::string_view key, std::string_view why)
{
    throw config_error("config key '" + std::string(key) + "': " + std::string(why));
}

std::string describe(const json::value& v)
{
    return json::serialize(v);
}

void check_string(const key_spec& spec, const std::string& s)
{
    switch (spec.extra) {
    case check::address_or_empty:
        if (s.empty())
            break;
        [[fallthrough]];
    case check::address: {
        std::array<unsigned char, 16> buf{};
        if (inet_pton(AF_INET, s.c_str(), buf.data()) != 1 && inet_pton(AF_INET6, s.c_str(), buf.data()) != 1)
            refuse(spec.name, "'" + s + "' is not an IPv4 or IPv6 address");
        break;
    }
    case check::log_level:
        if (s != "trace" && s != "debug" && s != "info" && s != "warn" && s != "error")
            refuse(spec.name, "'" + s + "' is not one of trace, debug, info, warn, error");
        break;
    case check::log_format:
        if (s != "text" && s != "json")
            refuse(spec.name, "'" + s + "' is not one of text, json");
        break;
    case check::tls_version:
        if (s != "1.2" && s != "1.3")
            refuse(spec.name, "'" + s + "' is not one of 1.2, 1.3");
        break;
    case check::plaintext:
        if (s != "loopback" && s != "allow" && s != "deny")
            refuse(spec.name, "'" + s + "' is not one of loopback, allow, deny");
        break;
    case check::database_url:
        if (!s.empty() && !s.starts_with("postgresql://") && !s.starts_with("postgres://"))
            refuse(spec.name, "must be empty (SQLite) or a postgresql:// URL");
        break;
    case check::non_empty:
        if (s.empty())
            refuse(spec.name, "must not be empty");
        break;
    case check::storage_backend:
        if (s != "local" && s != "s3")
            refuse(spec.name, "'" + s + "' is not one of local, s3");
        break;
    case check::endpoint:
        if (!s.empty() && !s.starts_with("http://") && !s.starts_with("https://"))
            refuse(spec.name, "must be an http:// or https:// URL");
        break;
    case check::network: {
        std::string why;
        if (!address_range::parse(s, why))
            refuse(spec.name, why);
        break;
    }
    case check::multiple_of_64k: // an integer check, in assign_integer
    case check::none:
        break;
    }
}

template <class Int>
void assign_integer(const key_spec& spec, const json::value& v, Int& out)
{
    std::uint64_t n = 0;
    if (v.is_uint64())
        n = v.get_uint64();
    else if (v.is_int64() && v.get_int64() >= 0)
        n = static_cast<std::uint64_t>(v.get_int64());
    else
        refuse(spec.name, describe(v) + " is not a non-negative integer");
    if (static_cast<double>(n) < spec.min || static_cast<double>(n) > spec.max) {
        std::ostringstream why;
        why << n << " is outside " << static_cast<std::uint64_t>(spec.min) << ".."
            << static_cast<std::uint64_t>(std::min(spec.max, u64_max));
        refuse(spec.name, why.str());
    }
    if (spec.extra == check::multiple_of_64k && n % 65536 != 0)
        refuse(spec.name, std::to_string(n) + " is not a multiple of 65536");
    out = static_cast<Int>(n);
}

void assign(const key_spec& spec, config& cfg, const json::value& v)
{
    std::visit(
        [&](auto* target) {
            using T = std::remove_pointer_t<decltype(target)>;
            if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
                if (!v.is_string())
                    refuse(spec.name, describe(v) + " is not a string");
                std::string s(v.get_string());
                check_string(spec, s);
                *target = s;
            } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                if (!v.is_array())
                    refuse(spec.name, describe(v) + " is not a list of strings");
                std::vector<std::string> items;
                for (const auto& item : v.get_array()) {
                    if (!item.is_string())
                        refuse(spec.name, describe(item) + " in the list is not a string");
                    items.emplace_back(item.get_string());
                    check_string(spec, items.back());
                }
                *target = std::move(items);
            } else if constexpr (std::is_same_v<T, bool>) {
                if (!v.is_bool())
                    refuse(spec.name, "expected true or false, got " + describe(v));
                *target = v.get_bool();
            } else if constexpr (std::is_same_v<T, double>) {
                if (!v.is_number())
                    refuse(spec.name, describe(v) + " is not a number");
                const double d = v.to_number<double>();
                if (!(d >= spec.min && d <= spec.max)) {
                    std::ostringstream why;
                    why << d << " is outside " << spec.min << ".." << spec.max;
                    refuse(spec.name, why.str());
                }
                *target = d;
            } else {
                assign_integer(spec, v, *target);
            }
        },
        spec.field(cfg));
}

bool is_text_key(const key_spec& spec)
{
    config probe;
    const auto ref = spec.field(probe);
    return std::holds_alternative<std::string*>(ref) || std::holds_alternative<std::filesystem::path*>(ref);
}

bool is_bool_key(const key_spec& spec)
{
    config probe;
    return std::holds_alternative<bool*>(spec.field(probe));
}

bool is_list_key(const key_spec& spec)
{
    config probe;
    return std::holds_alternative<std::vector<std::string>*>(spec.field(probe));
}

/// A list on the command line: "a,b,c" (spaces around items dropped; empty:
/// the empty list), or the JSON list a config file would hold.
json::value list_from_text(std::string_view raw)
{
    const auto first = raw.find_first_not_of(' ');
    if (first != std::string_view::npos && raw[first] == '[') {
        boost::system::error_code ec;
        json::value v = json::parse(raw, ec);
        if (!ec)
            return v;
    }
    json::array items;
    while (!raw.empty()) {
        const auto comma = raw.find(',');
        auto item = raw.substr(0, comma);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        items.emplace_back(json::string(item));
        if (comma == std::string_view::npos)
            break;
        raw.remove_prefix(comma + 1);
        if (raw.empty())
            items.emplace_back(json::string()); // a trailing comma: an empty item, refused by the check
    }
    return items;
}

void apply_text(config& cfg, std::string_view text, std::string_view origin)
{
    json::parse_options opts;
    opts.allow_comments = true;
    opts.allow_trailing_commas = true;
    opts.max_depth = 8; // sections of keys: anything deeper is refused below anyway
    boost::system::error_code ec;
    const json::value root = json::parse(text, ec, {}, opts);
    if (ec)
        throw config_error(std::string(origin) + " is not valid JSON: " + ec.message());
    const auto* sections = root.if_object();
    if (!sections)
        throw config_error(std::string(origin) + " must hold a JSON object");
    for (const auto& [section, members] : *sections) {
        const auto* inner = members.if_object();
        if (!inner)
            refuse(section, "a section must be an object of keys");
        const std::string prefix = std::string(section) + ".";
        if (inner->empty() &&
            std::none_of(std::begin(keys), std::end(keys), [&](const key_spec& k) { return k.name.starts_with(prefix); }))
            refuse(section, "unknown section"); // a non-empty one is refused below, naming its first key
        for (const auto& [name, value] : *inner) {
            const std::string full = std::string(section) + "." + std::string(name);
            const auto* spec = find_key(full);
            if (!spec)
                refuse(full, "unknown key");
            assign(*spec, cfg, value);
        }
    }
}

void apply_file(config& cfg, const std::filesystem::path& file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw config_error("cannot read config file '" + file.string() + "'");
    std::stringstream text;
    text << in.rdbuf();
    apply_text(cfg, text.str(), "config file '" + file.string() + "'");
}

void apply_override(config& cfg, std::string_view assignment)
{
    const auto eq = assignment.find('=');
    if (eq == std::string_view::npos || eq == 0)
        throw config_error("--set expects KEY=VALUE, got '" + std::string(assignment) + "'");
    const std::string_view name = assignment.substr(0, eq);
    const std::string_view raw = assignment.substr(eq + 1);
    const auto* spec = find_key(name);
    if (!spec)
        refuse(name, "unknown key");
    if (is_text_key(*spec)) {
        assign(*spec, cfg, json::value(json::string(raw)));
        return;
    }
    if (is_bool_key(*spec)) {
        // Only the words JSON has: yes, on and 1 would be guesses.
        if (raw != "true" && raw != "false")
            refuse(name, "expected true or false, got " + describe(json::value(json::string(raw))));
        assign(*spec, cfg, json::value(raw == "true"));
        return;
    }
    if (is_list_key(*spec)) {
        assign(*spec, cfg, list_from_text(raw));
        return;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(raw, ec);
    if (ec)
        refuse(name, "'" + std::string(raw) + "' is not a number");
    assign(*spec, cfg, v);
}

/// Rules between keys, checked once every source is applied.
void check_consistency(const config& cfg)
{
    // One echo reply (its body plus a header) must fit in the pending-reply
    // bound, or every large echo would cut its own connection.
    const std::uint64_t largest_reply = cfg.limits.max_echo_bytes + 1024;
    if (cfg.limits.max_pending_reply_bytes < largest_reply)
        refuse("limits.max_pending_reply_bytes",
               "must be at least limits.max_echo_bytes + 1024 (" + std::to_string(largest_reply) + ")");
    // The largest echo holds its body and its reply at once (and the read
    // buffer may hold a read's worth more); it must fit the global bound, or
    // it could never be served.
    const std::uint64_t largest_echo_held = 2 * cfg.limits.max_echo_bytes + 65536;
    if (cfg.limits.max_buffered_bytes < largest_echo_held)
        refuse("limits.max_buffered_bytes",
               "must be at least 2 * limits.max_echo_bytes + 65536 (" + std::to_string(largest_echo_held) + ")");
    if (cfg.tls.cert.empty() != cfg.tls.key.empty())
        refuse(cfg.tls.cert.empty() ? "tls.cert" : "tls.key", "tls.cert and tls.key must be set together");
    if (!cfg.tls.client_ca.empty() && !cfg.tls.enabled())
        refuse("tls.client_ca", "needs tls.cert and tls.key");
    if (cfg.storage.backend == "s3") {
        if (cfg.s3.endpoint.empty())
            refuse("s3.endpoint", "storage.backend \"s3\" needs the store's URL");
        if (cfg.s3.bucket.empty())
            refuse("s3.bucket", "storage.backend \"s3\" needs a bucket");
    }
}

} // namespace

config load_config(const std::filesystem::path* file, const std::vector<std::string>& overrides)
{
    config cfg;
    if (file)
        apply_file(cfg, *file);
    for (const auto& o : overrides)
        apply_override(cfg, o);
    apply_database_environment(cfg);
    check_consistency(cfg);
    return cfg;
}

config load_config_text(std::string_view text, std::string_view origin)
{
    config cfg;
    apply_text(cfg, text, origin);
    check_consistency(cfg);
    return cfg;
}

std::filesystem::path database_path(const config& cfg)
{
    return cfg.auth.db_path.empty() ? cfg.storage.dir / "fxd.db" : cfg.auth.db_path;
}

void apply_database_environment(config& cfg)
{
    const char* url = std::getenv("FXD_DATABASE_URL");
    if (url == nullptr || *url == '\0')
        return;
    const std::string_view text(url);
    if (!text.starts_with("postgresql://") && !text.starts_with("postgres://"))
        throw config_error("FXD_DATABASE_URL must be a postgresql:// URL");
    cfg.database.url = text;
}

std::string config_to_json(const config& cfg)
{
    json::object root;
    config copy = cfg; // key_spec::field takes a mutable config
    for (const auto& spec : keys) {
        const auto dot = spec.name.find('.');
        auto& section = root[spec.name.substr(0, dot)];
        if (!section.is_object())
            section = json::object();
        auto& slot = section.get_object()[spec.name.substr(dot + 1)];
        std::visit(
            [&](auto* field) {
                using T = std::remove_pointer_t<decltype(field)>;
                if constexpr (std::is_same_v<T, std::filesystem::path>) {
                    slot = field->string();
                } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                    json::array items;
                    for (const auto& item : *field)
                        items.emplace_back(item);
                    slot = std::move(items);
                } else {
                    slot = *field;
                }
            },
            spec.field(copy));
    }
    return json::serialize(root);
}

std::vector<std::string_view> config_key_names()
{
    std::vector<std::string_view> names;
    for (const auto& k : keys)
        names.push_back(k.name);
    return names;
}

} // namespace fxd::daemon
