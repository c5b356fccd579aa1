#include "config.hpp"
#include "temp_dir.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using fxd::daemon::config;
using fxd::daemon::config_error;
using fxd::daemon::config_key_names;
using fxd::daemon::load_config;
using fxd::daemon::load_config_text;
namespace fs = std::filesystem;

namespace {

const fs::path shipped_config = fs::path(FXD_SOURCE_DIR) / "config" / "fxd.json";

/// A config file with this text, in a temporary folder of its own.
class temp_file {
public:
    explicit temp_file(std::string_view text) : path_(dir_ / "fxd.json")
    {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out << text;
        BOOST_REQUIRE(out.good());
    }
    const fs::path& path() const noexcept { return path_; }

private:
    fxd::test::temp_dir dir_;
    fs::path path_;
};

config load_text(std::string_view text, const std::vector<std::string>& overrides = {})
{
    temp_file f(text);
    return load_config(&f.path(), overrides);
}

/// Runs `load` and returns the config_error's message; fails the test when nothing is thrown.
template <class Load>
std::string refusal(Load load)
{
    try {
        load();
    } catch (const config_error& e) {
        return e.what();
    }
    BOOST_ERROR("expected config_error, nothing was thrown");
    return {};
}

std::string file_refusal(std::string_view text)
{
    return refusal([&] { load_text(text); });
}

std::string set_refusal(std::vector<std::string> overrides)
{
    return refusal([&] { load_config(nullptr, overrides); });
}

bool mentions(const std::string& message, std::string_view what)
{
    return message.find(what) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(daemon_config)

// ---- Defaults and the shipped file -------------------------------------------------------

BOOST_AUTO_TEST_CASE(defaults_apply_without_file_or_overrides, *boost::unit_test::timeout(10))
{
    const config c = load_config(nullptr, {});
    BOOST_TEST((c == config{}));
    // The contract's defaults.
    BOOST_TEST(c.tcp.bind == "127.0.0.1");
    BOOST_TEST(c.tcp.port == 7070);
    BOOST_TEST(c.udp.bind == "127.0.0.1");
    BOOST_TEST(c.udp.port == 7071);
    BOOST_TEST(c.log.level == "info");
    BOOST_TEST(c.log.format == "text");
    BOOST_TEST(c.limits.max_header_bytes == 16384u);
    BOOST_TEST(c.limits.max_echo_bytes == 1048576u);
    BOOST_TEST(c.limits.max_upload_bytes == 17179869184ull);
    BOOST_TEST(c.limits.max_discard_bytes == 1048576u);
    BOOST_TEST(c.limits.max_connections == 10000u);
    BOOST_TEST(c.limits.max_connections_per_address == 64u);
    BOOST_TEST(c.limits.max_pending_reply_bytes == 4194304u);
    BOOST_TEST(c.limits.max_buffered_bytes == 268435456u);
    BOOST_TEST(c.udp.rate_per_source == 2000.0);
    BOOST_TEST(c.udp.burst == 500u);
    BOOST_TEST(c.timeouts.idle_s == 300.0);
    BOOST_TEST(c.timeouts.header_s == 10.0);
    BOOST_TEST(c.timeouts.body_s == 60.0);
    BOOST_TEST(c.timeouts.drain_s == 30.0);
    BOOST_TEST(c.auth.max_failures == 5u);
    BOOST_TEST(c.auth.max_failures_per_address == 50u);
    BOOST_TEST(c.auth.lockout_s == 60.0);
    BOOST_TEST(c.auth.allow_register == true);
    BOOST_TEST(c.auth.max_registrations_per_address == 20u);
    BOOST_TEST(c.auth.register_window_s == 3600.0);
    BOOST_TEST(c.workers.hash_threads == 1u);
    BOOST_TEST(c.workers.hash_queue_limit == 16u);
    BOOST_TEST(c.storage.partial_ttl_s == 86400.0);
    BOOST_TEST(c.storage.quota_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(knows_every_contract_key, *boost::unit_test::timeout(10))
{
    const std::string_view contract_keys[] = {
        "tcp.bind", "tcp.port", "udp.bind", "udp.port", "storage.dir", "storage.partial_ttl_s",
        "storage.quota_bytes", "log.level", "log.format",
        "limits.max_header_bytes", "limits.max_echo_bytes", "limits.max_upload_bytes", "limits.max_discard_bytes",
        "limits.max_connections", "timeouts.idle_s", "timeouts.header_s", "timeouts.body_s", "timeouts.drain_s",
        "auth.max_failures", "auth.max_failures_per_address", "auth.lockout_s", "auth.allow_register",
    };
    const auto names = config_key_names();
    for (const auto key : contract_keys)
        BOOST_TEST((std::find(names.begin(), names.end(), key) != names.end()), "missing key " << key);
}

BOOST_AUTO_TEST_CASE(shipped_config_file_equals_the_defaults, *boost::unit_test::timeout(10))
{
    BOOST_REQUIRE(fs::exists(shipped_config));
    const config c = load_config(&shipped_config, {});
    BOOST_TEST((c == config{}));
}

BOOST_AUTO_TEST_CASE(shipped_config_file_documents_every_key, *boost::unit_test::timeout(10))
{
    std::ifstream in(shipped_config, std::ios::binary);
    BOOST_REQUIRE(in.good());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::json::parse_options opts;
    opts.allow_comments = true;
    opts.allow_trailing_commas = true;
    const boost::json::value root = boost::json::parse(text, {}, opts);
    BOOST_REQUIRE(root.is_object());

    const auto names = config_key_names();
    BOOST_TEST(!names.empty());
    for (const auto name : names) {
        const auto dot = name.find('.');
        BOOST_REQUIRE_MESSAGE(dot != std::string_view::npos, "key without a section: " << name);
        const auto* section = root.as_object().if_contains(name.substr(0, dot));
        const bool present = section && section->is_object() && section->as_object().contains(name.substr(dot + 1));
        BOOST_TEST(present, "config/fxd.json lacks " << name);
    }
    // And the other way round: the file holds no key the daemon does not know.
    std::size_t keys_in_file = 0;
    for (const auto& [section, members] : root.as_object()) {
        for (const auto& [key, value] : members.as_object()) {
            const std::string full = std::string(section) + "." + std::string(key);
            BOOST_TEST((std::find(names.begin(), names.end(), full) != names.end()), "unknown key in file: " << full);
            ++keys_in_file;
        }
    }
    BOOST_TEST(keys_in_file == names.size());
}

BOOST_AUTO_TEST_CASE(written_out_config_reads_back_equal, *boost::unit_test::timeout(10))
{
    // A value other than the default in sections of every kind of key: text,
    // path, list, boolean, integers, doubles.
    const config cfg = load_config(nullptr, {"admin.port=1", "admin.enabled=false", "database.pool_size=7",
                                             "database.sweep_interval_s=2.5", "proxy.trusted=10.0.0.0/8,::1/128",
                                             "tls.min_version=1.3", "auth.db_path=/tmp/x.db", "udp.rate_per_source=0.3"});
    BOOST_TEST(!(cfg == config{}));
    const config back = load_config_text(config_to_json(cfg));
    BOOST_TEST((back == cfg));
    BOOST_TEST(config_to_json(back) == config_to_json(cfg));
}

// ---- Files -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(file_with_comments_and_trailing_commas_loads, *boost::unit_test::timeout(10))
{
    const config c = load_text(R"(// leading comment
{
  /* block comment */
  "tcp": { "port": 0, // after a value
           "bind": "::1", },
  "timeouts": { "header_s": 0.5 },
  "log": { "level": "debug", "format": "json" },
}
)");
    config want;
    want.tcp.port = 0;
    want.tcp.bind = "::1";
    want.timeouts.header_s = 0.5;
    want.log.level = "debug";
    want.log.format = "json";
    BOOST_TEST((c == want));
}

BOOST_AUTO_TEST_CASE(empty_object_file_gives_the_defaults, *boost::unit_test::timeout(10))
{
    BOOST_TEST((load_text("{}") == config{}));
    BOOST_TEST((load_text(R"({"tcp":{}})") == config{}));
}

BOOST_AUTO_TEST_CASE(every_key_sets_its_own_field, *boost::unit_test::timeout(10))
{
    const std::string_view file = R"({
  "tcp": {"bind": "0.0.0.0", "port": 1001},
  "udp": {"bind": "::", "port": 1002, "rate_per_source": 1015.5, "burst": 1016},
  "tls": {"cert": "/etc/fxd/cert.pem", "key": "/etc/fxd/key.pem", "client_ca": "/etc/fxd/ca.pem",
          "bind": "::1", "port": 1019, "min_version": "1.3"},
  "storage": {"dir": "/srv/fxd", "partial_ttl_s": 3600.5, "quota_bytes": 1014, "max_files_per_user": 1020,
              "backend": "s3"},
  "s3": {"endpoint": "https://s3.example:9000", "bucket": "fxd-files", "region": "eu-west-3", "prefix": "prod/",
         "path_style": false, "part_bytes": 8388608, "request_timeout_s": 7.5, "ca_file": "/etc/fxd/s3-ca.pem",
         "credentials_file": "/etc/fxd/s3-credentials"},
  "log": {"level": "warn", "format": "json"},
  "limits": {"max_header_bytes": 1003, "max_echo_bytes": 1004, "max_upload_bytes": 1005,
             "max_discard_bytes": 1006, "max_connections": 1007, "max_connections_per_address": 1017,
             "max_pending_reply_bytes": 1018000, "max_buffered_bytes": 1022000},
  "timeouts": {"idle_s": 1.5, "header_s": 2.5, "body_s": 3.5, "drain_s": 4.5},
  "auth": {"db_path": "/srv/users.db", "allow_register": false, "plaintext": "deny", "max_failures": 1010,
           "max_failures_per_address": 1011, "lockout_s": 5.5, "hash_passes": 12, "hash_memory_bytes": 1013000,
           "max_registrations_per_address": 1020, "register_window_s": 6.5, "token_ttl_s": 1023},
  "workers": {"threads": 3, "queue_limit": 1009, "hash_threads": 4, "hash_queue_limit": 1021},
  "process": {"user": "fxd"},
  "database": {"url": "postgresql://fxd@db.example/fxd", "pool_size": 7, "connect_timeout_s": 2.5,
               "statement_timeout_s": 3.5, "sweep_interval_s": 4.5},
  "proxy": {"trusted": ["127.0.0.0/8", "2001:db8::/32", "192.0.2.10"]},
  "admin": {"enabled": false, "bind": "::1", "port": 1023}
})";
    config want;
    want.tcp.bind = "0.0.0.0";
    want.tcp.port = 1001;
    want.udp.bind = "::";
    want.udp.port = 1002;
    want.udp.rate_per_source = 1015.5;
    want.udp.burst = 1016;
    want.tls.cert = "/etc/fxd/cert.pem";
    want.tls.key = "/etc/fxd/key.pem";
    want.tls.client_ca = "/etc/fxd/ca.pem";
    want.tls.bind = "::1";
    want.tls.port = 1019;
    want.tls.min_version = "1.3";
    want.storage.dir = "/srv/fxd";
    want.storage.partial_ttl_s = 3600.5;
    want.storage.quota_bytes = 1014;
    want.storage.max_files_per_user = 1020;
    want.storage.backend = "s3";
    want.s3.endpoint = "https://s3.example:9000";
    want.s3.bucket = "fxd-files";
    want.s3.region = "eu-west-3";
    want.s3.prefix = "prod/";
    want.s3.path_style = false;
    want.s3.part_bytes = 8388608;
    want.s3.request_timeout_s = 7.5;
    want.s3.ca_file = "/etc/fxd/s3-ca.pem";
    want.s3.credentials_file = "/etc/fxd/s3-credentials";
    want.log.level = "warn";
    want.log.format = "json";
    want.limits.max_header_bytes = 1003;
    want.limits.max_echo_bytes = 1004;
    want.limits.max_upload_bytes = 1005;
    want.limits.max_discard_bytes = 1006;
    want.limits.max_connections = 1007;
    want.limits.max_connections_per_address = 1017;
    want.limits.max_pending_reply_bytes = 1018000;
    want.limits.max_buffered_bytes = 1022000;
    want.timeouts.idle_s = 1.5;
    want.timeouts.header_s = 2.5;
    want.timeouts.body_s = 3.5;
    want.timeouts.drain_s = 4.5;
    want.auth.db_path = "/srv/users.db";
    want.auth.allow_register = false;
    want.auth.plaintext = "deny";
    want.auth.max_failures = 1010;
    want.auth.max_failures_per_address = 1011;
    want.auth.lockout_s = 5.5;
    want.auth.hash_passes = 12;
    want.auth.hash_memory_bytes = 1013000;
    want.workers.threads = 3;
    want.workers.queue_limit = 1009;
    want.auth.max_registrations_per_address = 1020;
    want.auth.register_window_s = 6.5;
    want.database.url = "postgresql://fxd@db.example/fxd";
    want.database.pool_size = 7;
    want.database.connect_timeout_s = 2.5;
    want.database.statement_timeout_s = 3.5;
    want.database.sweep_interval_s = 4.5;
    want.auth.token_ttl_s = 1023;
    want.workers.hash_threads = 4;
    want.workers.hash_queue_limit = 1021;
    want.process.user = "fxd";
    want.proxy.trusted = {"127.0.0.0/8", "2001:db8::/32", "192.0.2.10"};
    want.admin.enabled = false;
    want.admin.bind = "::1";
    want.admin.port = 1023;

    BOOST_TEST((load_text(file) == want));

    const std::vector<std::string> overrides = {
        "tcp.bind=0.0.0.0", "tcp.port=1001", "udp.bind=::", "udp.port=1002", "udp.rate_per_source=1015.5", "udp.burst=1016",
        "tls.cert=/etc/fxd/cert.pem", "tls.key=/etc/fxd/key.pem", "tls.client_ca=/etc/fxd/ca.pem", "tls.bind=::1",
        "tls.port=1019", "tls.min_version=1.3", "storage.dir=/srv/fxd",
        "storage.partial_ttl_s=3600.5", "storage.quota_bytes=1014", "storage.max_files_per_user=1020",
        "log.level=warn", "log.format=json", "limits.max_header_bytes=1003", "limits.max_echo_bytes=1004",
        "limits.max_upload_bytes=1005", "limits.max_discard_bytes=1006", "limits.max_connections=1007",
        "limits.max_connections_per_address=1017", "limits.max_pending_reply_bytes=1018000",
        "limits.max_buffered_bytes=1022000",
        "timeouts.idle_s=1.5", "timeouts.header_s=2.5", "timeouts.body_s=3.5", "timeouts.drain_s=4.5",
        "auth.db_path=/srv/users.db", "auth.allow_register=false", "auth.plaintext=deny", "auth.max_failures=1010",
        "auth.max_failures_per_address=1011", "auth.lockout_s=5.5", "auth.hash_passes=12",
        "auth.hash_memory_bytes=1013000", "workers.threads=3", "workers.queue_limit=1009",
        "auth.max_registrations_per_address=1020", "auth.register_window_s=6.5", "workers.hash_threads=4",
        "workers.hash_queue_limit=1021",
        "process.user=fxd", "auth.token_ttl_s=1023",
        "database.url=postgresql://fxd@db.example/fxd", "database.pool_size=7", "database.connect_timeout_s=2.5",
        "database.statement_timeout_s=3.5", "database.sweep_interval_s=4.5",
        "proxy.trusted=127.0.0.0/8,2001:db8::/32,192.0.2.10",
        "admin.enabled=false", "admin.bind=::1", "admin.port=1023",
        "storage.backend=s3", "s3.endpoint=https://s3.example:9000", "s3.bucket=fxd-files", "s3.region=eu-west-3",
        "s3.prefix=prod/", "s3.path_style=false", "s3.part_bytes=8388608", "s3.request_timeout_s=7.5",
        "s3.ca_file=/etc/fxd/s3-ca.pem", "s3.credentials_file=/etc/fxd/s3-credentials",
    };
    BOOST_TEST((load_config(nullptr, overrides) == want));

    // Every key the daemon knows is exercised here; a new key needs a line above.
    for (const auto name : config_key_names()) {
        const bool covered = std::any_of(overrides.begin(), overrides.end(), [&](const std::string& o) {
            return o.substr(0, o.find('=')) == name;
        });
        BOOST_TEST(covered, "key not covered by this test: " << name);
    }
}

BOOST_AUTO_TEST_CASE(tls_keys_are_checked_alone_and_together, *boost::unit_test::timeout(10))
{
    for (const std::string bad : {"tls.min_version=1.1", "tls.bind=localhost", "auth.plaintext=sometimes"}) {
        const auto msg = set_refusal({bad});
        BOOST_TEST(mentions(msg, bad.substr(0, bad.find('='))), bad << ": " << msg);
    }
    BOOST_TEST(mentions(set_refusal({"tls.cert=/c.pem"}), "tls.key"));
    BOOST_TEST(mentions(set_refusal({"tls.key=/k.pem"}), "tls.cert"));
    BOOST_TEST(mentions(set_refusal({"tls.client_ca=/ca.pem"}), "tls.client_ca"));
    const auto on = load_config(nullptr, {"tls.cert=/c.pem", "tls.key=/k.pem"});
    BOOST_TEST(on.tls.enabled());
    BOOST_TEST(on.tls.bind.empty()); // the TLS listener follows tcp.bind
    BOOST_TEST(!load_config(nullptr, {}).tls.enabled());
    BOOST_TEST(load_config(nullptr, {}).auth.plaintext == "loopback");
}

BOOST_AUTO_TEST_CASE(s3_keys_are_checked_alone_and_together, *boost::unit_test::timeout(10))
{
    const std::vector<std::string> store = {"s3.endpoint=http://127.0.0.1:9000", "s3.bucket=b"};
    for (const std::string bad : {"storage.backend=S3", "storage.backend=", "s3.endpoint=ftp://x",
                                  "s3.endpoint=127.0.0.1:9000", "s3.part_bytes=5242879", "s3.part_bytes=5300000",
                                  "s3.part_bytes=5368774656", "s3.request_timeout_s=0", "s3.region="}) {
        const auto msg = set_refusal({bad});
        BOOST_TEST(mentions(msg, bad.substr(0, bad.find('='))), bad << ": " << msg);
    }
    BOOST_TEST(mentions(set_refusal({"s3.part_bytes=5300000"}), "multiple of 65536"));
    // The s3 backend needs its store and bucket; the keys alone change nothing.
    BOOST_TEST(mentions(set_refusal({"storage.backend=s3"}), "s3.endpoint"));
    BOOST_TEST(mentions(set_refusal({"storage.backend=s3", "s3.endpoint=http://127.0.0.1:9000"}), "s3.bucket"));
    auto with_store = store;
    with_store.push_back("storage.backend=s3");
    BOOST_TEST(load_config(nullptr, with_store).storage.backend == "s3");
    BOOST_TEST(load_config(nullptr, store).storage.backend == "local");
    BOOST_TEST(load_config(nullptr, {"s3.part_bytes=5242880"}).s3.part_bytes == 5242880u);
}

BOOST_AUTO_TEST_CASE(boolean_keys_take_true_or_false_only, *boost::unit_test::timeout(10))
{
    BOOST_TEST(load_config(nullptr, {"auth.allow_register=false"}).auth.allow_register == false);
    BOOST_TEST(load_config(nullptr, {"auth.allow_register=false", "auth.allow_register=true"}).auth.allow_register == true);
    for (const std::string bad : {"auth.allow_register=yes", "auth.allow_register=1", "auth.allow_register="}) {
        const auto msg = set_refusal({bad});
        BOOST_TEST(mentions(msg, "auth.allow_register"), bad << ": " << msg);
    }
    const auto msg = file_refusal(R"({"auth": {"allow_register": "true"}})");
    BOOST_TEST(mentions(msg, "auth.allow_register"), msg);
    BOOST_TEST(mentions(msg, R"(expected true or false, got "true")"), msg);
}

BOOST_AUTO_TEST_CASE(every_boolean_key_says_what_it_expects_when_set_wrong, *boost::unit_test::timeout(10))
{
    // A key is boolean when --set takes true and false but not a word; text
    // keys take any word, numbers and the keys with a list of values neither.
    auto loads = [](const std::string& assignment) {
        try {
            load_config(nullptr, {assignment});
            return true;
        } catch (const config_error&) {
            return false;
        }
    };
    std::vector<std::string> booleans;
    for (const auto name : config_key_names()) {
        const std::string key(name);
        if (loads(key + "=true") && loads(key + "=false") && !loads(key + "=yes"))
            booleans.push_back(key);
    }
    BOOST_TEST((std::find(booleans.begin(), booleans.end(), "auth.allow_register") != booleans.end()));
    for (const auto& key : booleans) {
        for (const std::string bad : {"yes", "no", "1", "0", "on", "TRUE", "False", "", "\"true\""}) {
            const auto msg = set_refusal({key + "=" + bad});
            BOOST_TEST(mentions(msg, key), key << "=" << bad << ": " << msg);
            const std::string quoted = bad == "\"true\"" ? R"("\"true\"")" : "\"" + bad + "\"";
            BOOST_TEST(mentions(msg, "expected true or false, got " + quoted), key << "=" << bad << ": " << msg);
        }
    }
}

BOOST_AUTO_TEST_CASE(refuses_unknown_key_in_file_naming_it, *boost::unit_test::timeout(10))
{
    const auto msg = file_refusal(R"({"tcp": {"prot": 1}})");
    BOOST_TEST(mentions(msg, "tcp.prot"), msg);
    const auto section_msg = file_refusal(R"({"nosuch": {"key": 1}})");
    BOOST_TEST(mentions(section_msg, "nosuch"), section_msg);
    const auto empty_section_msg = file_refusal(R"({"nosuch": {}})");
    BOOST_TEST(mentions(empty_section_msg, "nosuch"), empty_section_msg);
}

BOOST_AUTO_TEST_CASE(refuses_section_that_is_not_an_object, *boost::unit_test::timeout(10))
{
    for (const std::string_view text : {R"({"tcp": 5})", R"({"tcp": [1]})", R"({"tcp": "x"})", R"({"tcp": null})"}) {
        const auto msg = file_refusal(text);
        BOOST_TEST(mentions(msg, "tcp"), text << ": " << msg);
    }
}

BOOST_AUTO_TEST_CASE(refuses_file_that_is_not_json, *boost::unit_test::timeout(10))
{
    temp_file f("tcp.port = 7070\n");
    const auto msg = refusal([&] { load_config(&f.path(), {}); });
    BOOST_TEST(mentions(msg, f.path().string()), msg);

    for (const std::string_view text : {"", "{", R"({"tcp": {"port": 1})"})
        BOOST_TEST(!file_refusal(text).empty(), "text: '" << text << "'");
}

BOOST_AUTO_TEST_CASE(refuses_file_that_is_not_an_object, *boost::unit_test::timeout(10))
{
    for (const std::string_view text : {"[]", "42", R"("tcp")", "null"})
        BOOST_TEST(!file_refusal(text).empty(), "text: " << text);
}

BOOST_AUTO_TEST_CASE(refuses_missing_file, *boost::unit_test::timeout(10))
{
    const fxd::test::temp_dir dir;
    const fs::path missing = dir / "no-such-config.json";
    BOOST_REQUIRE(!fs::exists(missing));
    const auto msg = refusal([&] { load_config(&missing, {}); });
    BOOST_TEST(mentions(msg, missing.string()), msg);
}

// ---- Bad values --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(refuses_bad_values_in_file_naming_the_key, *boost::unit_test::timeout(10))
{
    const std::pair<std::string_view, std::string_view> cases[] = {
        {R"({"tcp": {"port": 70000}})", "tcp.port"},
        {R"({"tcp": {"port": 65536}})", "tcp.port"},
        {R"({"tcp": {"port": -1}})", "tcp.port"},
        {R"({"tcp": {"port": "x"}})", "tcp.port"},
        {R"({"tcp": {"port": "7070"}})", "tcp.port"},
        {R"({"tcp": {"port": 80.5}})", "tcp.port"},
        {R"({"tcp": {"port": true}})", "tcp.port"},
        {R"({"tcp": {"port": null}})", "tcp.port"},
        {R"({"udp": {"port": 70000}})", "udp.port"},
        {R"({"log": {"level": "loud"}})", "log.level"},
        {R"({"log": {"level": 3}})", "log.level"},
        {R"({"log": {"format": "xml"}})", "log.format"},
        {R"({"tcp": {"bind": "not-an-ip"}})", "tcp.bind"},
        {R"({"tcp": {"bind": "localhost"}})", "tcp.bind"},
        {R"({"tcp": {"bind": "256.0.0.1"}})", "tcp.bind"},
        {R"({"tcp": {"bind": ""}})", "tcp.bind"},
        {R"({"udp": {"bind": "not-an-ip"}})", "udp.bind"},
        {R"({"timeouts": {"idle_s": 0}})", "timeouts.idle_s"},
        {R"({"timeouts": {"idle_s": -1}})", "timeouts.idle_s"},
        {R"({"timeouts": {"idle_s": "10"}})", "timeouts.idle_s"},
        {R"({"timeouts": {"header_s": 0}})", "timeouts.header_s"},
        {R"({"timeouts": {"body_s": 0}})", "timeouts.body_s"},
        {R"({"limits": {"max_connections": 0}})", "limits.max_connections"},
        {R"({"limits": {"max_header_bytes": 63}})", "limits.max_header_bytes"},
        {R"({"limits": {"max_echo_bytes": -5}})", "limits.max_echo_bytes"},
        {R"({"storage": {"dir": ""}})", "storage.dir"},
        {R"({"storage": {"dir": 5}})", "storage.dir"},
        {R"({"workers": {"threads": 0}})", "workers.threads"},
        {R"({"workers": {"queue_limit": 0}})", "workers.queue_limit"},
        {R"({"workers": {"hash_threads": 0}})", "workers.hash_threads"},
        {R"({"auth": {"max_registrations_per_address": 0}})", "auth.max_registrations_per_address"},
        {R"({"udp": {"rate_per_source": -1}})", "udp.rate_per_source"},
        {R"({"udp": {"burst": 0}})", "udp.burst"},
        {R"({"limits": {"max_connections_per_address": 0}})", "limits.max_connections_per_address"},
        {R"({"limits": {"max_pending_reply_bytes": 1000}})", "limits.max_pending_reply_bytes"},
        // A pending-reply bound smaller than one echo reply would cut every large echo.
        {R"({"limits": {"max_echo_bytes": 1048576, "max_pending_reply_bytes": 1048576}})", "limits.max_pending_reply_bytes"},
        {R"({"limits": {"max_buffered_bytes": 1000}})", "limits.max_buffered_bytes"},
        // A global bound smaller than one echo's body and reply would refuse every large echo.
        {R"({"limits": {"max_buffered_bytes": 2097152}})", "limits.max_buffered_bytes"},
    };
    for (const auto& [text, key] : cases) {
        BOOST_TEST_CONTEXT(text) {
            const auto msg = file_refusal(text);
            BOOST_TEST(mentions(msg, key), msg);
        }
    }
}

BOOST_AUTO_TEST_CASE(refuses_bad_values_in_overrides_naming_the_key, *boost::unit_test::timeout(10))
{
    const std::pair<std::string, std::string_view> cases[] = {
        {"tcp.port=70000", "tcp.port"},
        {"tcp.port=-1", "tcp.port"},
        {"tcp.port=x", "tcp.port"},
        {"tcp.port=", "tcp.port"},
        {"tcp.port=80.5", "tcp.port"},
        {"tcp.port=12abc", "tcp.port"},
        {"log.level=loud", "log.level"},
        {"log.format=xml", "log.format"},
        {"tcp.bind=not-an-ip", "tcp.bind"},
        {"timeouts.idle_s=0", "timeouts.idle_s"},
        {"timeouts.idle_s=soon", "timeouts.idle_s"},
        {"limits.max_connections=0", "limits.max_connections"},
        {"storage.dir=", "storage.dir"},
        {"limits.max_pending_reply_bytes=65536", "limits.max_pending_reply_bytes"}, // under max_echo_bytes
    };
    for (const auto& [assignment, key] : cases) {
        BOOST_TEST_CONTEXT(assignment) {
            const auto msg = set_refusal({assignment});
            BOOST_TEST(mentions(msg, key), msg);
        }
    }
}

BOOST_AUTO_TEST_CASE(refuses_unknown_key_in_overrides_naming_it, *boost::unit_test::timeout(10))
{
    for (const std::string assignment : {"tcp.prot=1", "nosuch.key=1", "port=1", "tcp.port.extra=1"}) {
        const auto msg = set_refusal({assignment});
        const std::string key = assignment.substr(0, assignment.find('='));
        BOOST_TEST(mentions(msg, key), msg);
    }
}

BOOST_AUTO_TEST_CASE(refuses_override_without_equals, *boost::unit_test::timeout(10))
{
    const auto msg = set_refusal({"tcp.port"});
    BOOST_TEST(mentions(msg, "tcp.port"), msg);
    BOOST_TEST(!set_refusal({"=5"}).empty());
    BOOST_TEST(!set_refusal({""}).empty());
}

BOOST_AUTO_TEST_CASE(accepts_values_at_the_bounds, *boost::unit_test::timeout(10))
{
    const config c = load_config(nullptr, {"tcp.port=65535", "udp.port=0", "limits.max_header_bytes=64",
                                           "limits.max_connections=1", "timeouts.drain_s=0", "workers.threads=64"});
    BOOST_TEST(c.tcp.port == 65535);
    BOOST_TEST(c.udp.port == 0);
    BOOST_TEST(c.limits.max_header_bytes == 64u);
    BOOST_TEST(c.limits.max_connections == 1u);
    BOOST_TEST(c.timeouts.drain_s == 0.0);
    BOOST_TEST(c.workers.threads == 64u);
    BOOST_TEST(!set_refusal({"workers.threads=65"}).empty());
}

// ---- Overrides ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(overrides_accept_the_contract_examples, *boost::unit_test::timeout(10))
{
    const config c = load_config(nullptr, {"tcp.port=0", "storage.dir=./x", "timeouts.header_s=0.5", "tcp.bind=::1"});
    config want;
    want.tcp.port = 0;
    want.storage.dir = "./x";
    want.timeouts.header_s = 0.5;
    want.tcp.bind = "::1";
    BOOST_TEST((c == want));
}

BOOST_AUTO_TEST_CASE(text_overrides_keep_the_value_verbatim, *boost::unit_test::timeout(10))
{
    // Everything after the first '=' is the value, even if it holds '=' or looks like a number.
    const config c = load_config(nullptr, {"storage.dir=a=b", "udp.bind=::ffff:127.0.0.1"});
    BOOST_TEST(c.storage.dir == fs::path("a=b"));
    BOOST_TEST(c.udp.bind == "::ffff:127.0.0.1");
    const config numeric_dir = load_config(nullptr, {"storage.dir=123"});
    BOOST_TEST(numeric_dir.storage.dir == fs::path("123"));
}

BOOST_AUTO_TEST_CASE(later_override_wins_over_file_and_earlier_override, *boost::unit_test::timeout(10))
{
    temp_file f(R"({"tcp": {"port": 1234}, "log": {"level": "debug"}})");
    const config c = load_config(&f.path(), {"tcp.port=5", "log.level=error", "tcp.port=6"});
    BOOST_TEST(c.tcp.port == 6);
    BOOST_TEST(c.log.level == "error");

    const config file_only = load_config(&f.path(), {});
    BOOST_TEST(file_only.tcp.port == 1234);
    BOOST_TEST(file_only.log.level == "debug");
}

BOOST_AUTO_TEST_CASE(bad_override_is_refused_even_after_a_good_file, *boost::unit_test::timeout(10))
{
    temp_file f(R"({"tcp": {"port": 1234}})");
    const auto msg = refusal([&] { load_config(&f.path(), {"tcp.port=99999"}); });
    BOOST_TEST(mentions(msg, "tcp.port"), msg);
}

BOOST_AUTO_TEST_CASE(proxy_trusted_is_a_list_of_networks, *boost::unit_test::timeout(10))
{
    const std::vector<std::string> want = {"127.0.0.0/8", "10.0.0.0/8"};
    BOOST_TEST((load_config(nullptr, {"proxy.trusted=127.0.0.0/8,10.0.0.0/8"}).proxy.trusted == want));
    BOOST_TEST((load_config(nullptr, {"proxy.trusted=127.0.0.0/8, 10.0.0.0/8"}).proxy.trusted == want));
    BOOST_TEST((load_config(nullptr, {R"(proxy.trusted=["127.0.0.0/8","10.0.0.0/8"])"}).proxy.trusted == want));
    BOOST_TEST((load_text(R"({"proxy": {"trusted": ["127.0.0.0/8", "10.0.0.0/8"]}})").proxy.trusted == want));
    BOOST_TEST(load_config(nullptr, {"proxy.trusted=10.0.0.0/8", "proxy.trusted="}).proxy.trusted.empty());
    BOOST_TEST(config{}.proxy.trusted.empty()); // nobody by default

    // Each refusal names the key and the entry.
    for (const std::string bad : {"10.0.0.0/33", "10.0.0.1/8", "::1/129", "example.org/8", "10.0.0.0/", "10.0.0.0/8,",
                                  "10.0.0.0/x"}) {
        const auto msg = set_refusal({"proxy.trusted=" + bad});
        BOOST_TEST(mentions(msg, "proxy.trusted"), msg);
        BOOST_TEST(msg.find("'") != std::string::npos, msg);
    }
    const auto msg = refusal([] { load_config_text(R"({"proxy": {"trusted": ["10.0.0.0/8", "300.0.0.0/8"]}})"); });
    BOOST_TEST(mentions(msg, "300.0.0.0"), msg);
    BOOST_TEST(mentions(refusal([] { load_config_text(R"({"proxy": {"trusted": "10.0.0.0/8"}})"); }), "list"));
    BOOST_TEST(mentions(refusal([] { load_config_text(R"({"proxy": {"trusted": [8]}})"); }), "not a string"));
}

BOOST_AUTO_TEST_CASE(config_text_is_read_like_a_file, *boost::unit_test::timeout(10))
{
    const config c = load_config_text(R"({ // comments and trailing commas, as in a file
        "udp": {"rate_per_source": 10, "burst": 3,},
        "limits": {"max_echo_bytes": 1000, "max_pending_reply_bytes": 65536},
    })");
    BOOST_TEST(c.udp.rate_per_source == 10.0);
    BOOST_TEST(c.udp.burst == 3u);
    BOOST_TEST(c.limits.max_pending_reply_bytes == 65536u);
    BOOST_CHECK_THROW(load_config_text("[1, 2]"), config_error);
    BOOST_CHECK_THROW(load_config_text(R"({"tcp": {"port": {"deep": [[[[[[[[1]]]]]]]]}}})"), config_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(database_url_comes_from_the_environment_when_set, *boost::unit_test::timeout(10))
{
    // Secrets stay out of config files: FXD_DATABASE_URL wins over the key.
    ::setenv("FXD_DATABASE_URL", "postgresql://fxd:secret@10.0.0.5/fxd", 1);
    const auto cfg = load_config(nullptr, {"database.url=postgresql://other/fxd"});
    ::setenv("FXD_DATABASE_URL", "mysql://nope", 1);
    const auto bad = set_refusal({});
    ::unsetenv("FXD_DATABASE_URL");
    BOOST_TEST(cfg.database.url == "postgresql://fxd:secret@10.0.0.5/fxd");
    BOOST_TEST(bad.find("FXD_DATABASE_URL") != std::string::npos, bad);
    BOOST_TEST(load_config(nullptr, {}).database.url.empty());
    const auto refused = set_refusal({"database.url=sqlite:///tmp/x.db"});
    BOOST_TEST(refused.find("database.url") != std::string::npos, refused);
}
