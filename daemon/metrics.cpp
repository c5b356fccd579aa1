#include "metrics.hpp"

#include <fxd/protocol/errc.hpp>

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <tuple>

namespace fxd::daemon {

namespace {

/// Appends the text of the Prometheus exposition format, one family at a time.
class exposition {
public:
    explicit exposition(std::string& out) : out_(out) {}

    /// The # HELP and # TYPE lines that open a family.
    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    /// One sample; labels is already `key="value",...` or empty.
    template <class Number>
    void sample(std::string_view name, std::string_view labels, Number value)
    {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        append_number(value);
        out_ += '\n';
    }

    /// A family of one unlabelled sample.
    template <class Number>
    void single(std::string_view name, std::string_view type, std::string_view help, Number value)
    {
        family(name, type, help);
        sample(name, {}, value);
    }

    template <std::size_t N>
    void histogram_samples(std::string_view name, std::string_view labels, const histogram<N>& h)
    {
        const std::string base(name);
        const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < N; ++i) {
            cumulative += h.counts()[i];
            sample(base + "_bucket", prefix + "le=\"" + bound_text(h.bounds()[i]) + "\"", cumulative);
        }
        cumulative += h.counts()[N];
        sample(base + "_bucket", prefix + "le=\"+Inf\"", cumulative);
        sample(base + "_sum", labels, h.sum());
        sample(base + "_count", labels, cumulative);
    }

    /// A bucket bound as people write it: 0.0001, not 1e-04.
    static std::string bound_text(double v)
    {
        char buf[48];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
        return ec == std::errc() ? std::string(buf, end) : number_text(v);
    }

    static std::string number_text(double v)
    {
        char buf[32];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
        return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
    }

private:
    void append_number(double v) { out_ += number_text(v); }
    void append_number(std::uint64_t v) { out_ += std::to_string(v); }
    void append_number(int v) { out_ += std::to_string(v); }

    std::string& out_;
};

std::string label(std::string_view key, std::string_view value)
{
    // Every label value here is one of the daemon's own names: no escaping needed.
    return std::string(key) + "=\"" + std::string(value) + "\"";
}

void render_counters(exposition& x, const services::counters& c)
{
    x.single("fxd_connections_total", "counter", "TCP connections accepted (plain and TLS).", c.connections_total);
    x.single("fxd_connections_refused_total", "counter",
             "Connections turned away with busy (limits.max_connections or per address).", c.connections_refused);
    x.single("fxd_connections_refused_per_address_total", "counter",
             "Of the refused connections, those past limits.max_connections_per_address.",
             c.connections_refused_per_address);
    x.family("fxd_connections_cut_total", "counter",
             "Connections cut for unread replies (limits.max_pending_reply_bytes) or memory (limits.max_buffered_bytes).");
    x.sample("fxd_connections_cut_total", label("reason", "unread"), c.connections_cut_unread);
    x.sample("fxd_connections_cut_total", label("reason", "memory"), c.connections_cut_memory);
    x.single("fxd_timeouts_total", "counter", "Connections that passed a deadline (timeouts.*).", c.timeouts);

    x.family("fxd_requests_total", "counter", "Requests decoded, by op (TCP and UDP).");
    for (std::size_t i = 0; i < protocol::op_count; ++i)
        x.sample("fxd_requests_total", label("op", protocol::to_string(static_cast<protocol::op>(i))),
                 c.requests_by_op[i]);
    x.sample("fxd_requests_total", label("op", "unknown"), c.requests_unknown_op);
    x.family("fxd_request_errors_total", "counter", "Error replies, by the request's op (none: no op was read).");
    for (std::size_t i = 0; i < protocol::op_count; ++i)
        x.sample("fxd_request_errors_total", label("op", protocol::to_string(static_cast<protocol::op>(i))),
                 c.errors_by_op[i]);
    x.sample("fxd_request_errors_total", label("op", "none"), c.errors_without_op);
    x.family("fxd_error_replies_total", "counter", "Error replies, by error code.");
    for (std::size_t i = 0; i < protocol::errc_count; ++i)
        x.sample("fxd_error_replies_total", label("code", protocol::to_string(static_cast<protocol::errc>(i))),
                 c.errors_by_code[i]);

    x.single("fxd_received_bytes_total", "counter", "Bytes received from clients (TCP and UDP).", c.bytes_in);
    x.single("fxd_sent_bytes_total", "counter", "Bytes sent to clients (TCP and UDP).", c.bytes_out);

    x.family("fxd_logins_total", "counter", "Login attempts, by result.");
    x.sample("fxd_logins_total", label("result", "ok"), c.logins_ok);
    x.sample("fxd_logins_total", label("result", "failed"), c.logins_failed);
    x.sample("fxd_logins_total", label("result", "rate_limited"), c.logins_rate_limited);
    x.family("fxd_registrations_total", "counter", "Registrations, by result (a taken name counts as neither).");
    x.sample("fxd_registrations_total", label("result", "ok"), c.registrations_ok);
    x.sample("fxd_registrations_total", label("result", "rate_limited"), c.registrations_rate_limited);
    x.family("fxd_uploads_total", "counter", "Uploads ended, by result.");
    x.sample("fxd_uploads_total", label("result", "ok"), c.uploads_ok);
    x.sample("fxd_uploads_total", label("result", "failed"), c.uploads_failed);
    x.family("fxd_downloads_total", "counter", "Downloads ended, by result.");
    x.sample("fxd_downloads_total", label("result", "ok"), c.downloads_ok);
    x.sample("fxd_downloads_total", label("result", "failed"), c.downloads_failed);

    x.single("fxd_udp_received_datagrams_total", "counter", "Datagrams received.", c.udp_in);
    x.single("fxd_udp_sent_datagrams_total", "counter", "Datagrams sent.", c.udp_out);
    constexpr std::string_view drop_causes[] = {"empty", "reply_shaped", "malformed", "oversize_reply", "send_failed",
                                                "internal"};
    static_assert(std::size(drop_causes) == std::tuple_size_v<decltype(c.udp_dropped_by_cause)>);
    x.family("fxd_udp_dropped_datagrams_total", "counter",
             "Datagrams left unanswered, by cause (rate_limited: udp.rate_per_source).");
    for (std::size_t i = 0; i < std::size(drop_causes); ++i)
        x.sample("fxd_udp_dropped_datagrams_total", label("cause", drop_causes[i]), c.udp_dropped_by_cause[i]);
    x.sample("fxd_udp_dropped_datagrams_total", label("cause", "rate_limited"), c.udp_rate_limited);

    x.family("fxd_tls_handshakes_total", "counter", "TLS handshakes, by result (failed: refused, broken off, timed out).");
    x.sample("fxd_tls_handshakes_total", label("result", "ok"), c.tls_handshakes);
    x.sample("fxd_tls_handshakes_total", label("result", "failed"), c.tls_handshake_failures);
}

void render_gauges(exposition& x, const services::counters& c, const gauges& g)
{
    x.family("fxd_connections_open", "gauge", "Connections being served, by transport.");
    x.sample("fxd_connections_open", label("transport", "tcp"), g.connections_tcp);
    x.sample("fxd_connections_open", label("transport", "tls"), g.connections_tls);
    x.single("fxd_connections_rejecting", "gauge", "Connections being told busy before they close.",
             g.connections_rejecting);
    x.single("fxd_requests_in_flight", "gauge", "Requests admitted and not yet answered.", g.requests_in_flight);
    x.family("fxd_worker_queue_depth", "gauge", "Jobs queued or running on a worker pool (hash: register and login).");
    x.sample("fxd_worker_queue_depth", label("pool", "general"), c.worker_queue_depth);
    x.sample("fxd_worker_queue_depth", label("pool", "hash"), c.hash_queue_depth);
    x.family("fxd_worker_queue_limit", "gauge", "workers.queue_limit and workers.hash_queue_limit.");
    x.sample("fxd_worker_queue_limit", label("pool", "general"), g.worker_queue_limit);
    x.sample("fxd_worker_queue_limit", label("pool", "hash"), g.hash_queue_limit);
    x.single("fxd_buffered_bytes", "gauge",
             "Request bodies being gathered and unread replies, all connections (limits.max_buffered_bytes).",
             g.buffered_bytes);
    x.single("fxd_stored_bytes", "gauge", "Sum of the sizes of finished files.", c.bytes_stored);
    x.single("fxd_partial_uploads", "gauge", "Interrupted uploads kept for a resume.", c.partials_held);
    if (g.partial_bytes)
        x.single("fxd_partial_upload_bytes", "gauge", "Bytes held by interrupted uploads kept for a resume.",
                 *g.partial_bytes);
    if (g.users)
        x.single("fxd_users", "gauge", "Accounts in the user database.", *g.users);
    x.single("fxd_ready", "gauge", "1 while /readyz would answer 200.", g.ready ? 1 : 0);
    if (g.object_store_up)
        x.single("fxd_object_store_up", "gauge",
                 "1 while the object store (storage.backend s3) answered its last request or probe.",
                 *g.object_store_up ? 1 : 0);
}

void render_histograms(exposition& x, const timings& t)
{
    x.family("fxd_request_duration_seconds", "histogram",
             "From a request's header decoded to its reply queued (a download: its last byte sent), by op.");
    for (std::size_t i = 0; i < protocol::op_count; ++i)
        x.histogram_samples("fxd_request_duration_seconds", label("op", protocol::to_string(static_cast<protocol::op>(i))),
                            t.request_seconds[i]);
    x.family("fxd_upload_size_bytes", "histogram", "Uploads whose body arrived in full, by size.");
    x.histogram_samples("fxd_upload_size_bytes", {}, t.upload_bytes);
    x.family("fxd_upload_duration_seconds", "histogram", "Uploads whose body arrived in full: first body byte to reply.");
    x.histogram_samples("fxd_upload_duration_seconds", {}, t.upload_seconds);
    x.family("fxd_download_size_bytes", "histogram", "Downloads sent in full, by size.");
    x.histogram_samples("fxd_download_size_bytes", {}, t.download_bytes);
    x.family("fxd_download_duration_seconds", "histogram", "Downloads sent in full: reply header to last byte.");
    x.histogram_samples("fxd_download_duration_seconds", {}, t.download_seconds);
    x.family("fxd_tls_handshake_duration_seconds", "histogram", "Completed TLS handshakes.");
    x.histogram_samples("fxd_tls_handshake_duration_seconds", {}, t.tls_handshake_seconds);
}

void render_process(exposition& x, const process_sample& p)
{
    if (p.cpu_seconds)
        x.single("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", *p.cpu_seconds);
    if (p.resident_bytes)
        x.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", *p.resident_bytes);
    if (p.virtual_bytes)
        x.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", *p.virtual_bytes);
    if (p.open_fds)
        x.single("process_open_fds", "gauge", "Open file descriptors.", *p.open_fds);
    if (p.max_fds)
        x.single("process_max_fds", "gauge", "The open-file limit (soft).", *p.max_fds);
    if (p.start_time_seconds)
        x.single("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.",
                 *p.start_time_seconds);
}

std::string read_small_file(const char* path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The kernel's boot time (btime in /proc/stat), in seconds since the epoch.
std::optional<double> boot_time()
{
    std::ifstream in("/proc/stat");
    std::string key;
    while (in >> key) {
        if (key == "btime") {
            double t = 0;
            if (in >> t)
                return t;
            return std::nullopt;
        }
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return std::nullopt;
}

} // namespace

void parse_proc_stat(std::string_view stat, long ticks_per_second, double boot_time_s, process_sample& out)
{
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const auto close = stat.rfind(')');
    if (close == std::string_view::npos || ticks_per_second <= 0)
        return;
    std::istringstream fields{std::string(stat.substr(close + 1))};
    std::string field;
    double utime = 0, stime = 0, starttime = 0;
    // After ')' come fields 3 (state) onwards: utime is 14, stime 15, starttime 22.
    for (int number = 3; fields >> field; ++number) {
        if (number == 14)
            std::from_chars(field.data(), field.data() + field.size(), utime);
        else if (number == 15)
            std::from_chars(field.data(), field.data() + field.size(), stime);
        else if (number == 22) {
            std::from_chars(field.data(), field.data() + field.size(), starttime);
            const auto ticks = static_cast<double>(ticks_per_second);
            out.cpu_seconds = (utime + stime) / ticks;
            out.start_time_seconds = boot_time_s + starttime / ticks;
            return;
        }
    }
}

process_sample sample_process()
{
    process_sample p;
    if (const auto boot = boot_time())
        parse_proc_stat(read_small_file("/proc/self/stat"), ::sysconf(_SC_CLK_TCK), *boot, p);

    std::istringstream statm(read_small_file("/proc/self/statm"));
    std::uint64_t size_pages = 0, resident_pages = 0;
    if (statm >> size_pages >> resident_pages) {
        const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        p.virtual_bytes = size_pages * page;
        p.resident_bytes = resident_pages * page;
    }

    std::error_code ec;
    std::uint64_t fds = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec))
        ++fds;
    if (!ec)
        p.open_fds = fds > 0 ? fds - 1 : 0; // the iterator's own descriptor on the folder
    if (const long limit = ::sysconf(_SC_OPEN_MAX); limit > 0)
        p.max_fds = static_cast<std::uint64_t>(limit);
    return p;
}

std::string render_metrics(const services::counters& c, const timings& t, const gauges& g, const process_sample& p,
                           std::string_view version)
{
    std::string out;
    out.reserve(64 * 1024);
    exposition x(out);
    x.family("fxd_build_info", "gauge", "Always 1; the version is a label.");
    x.sample("fxd_build_info", label("version", version), 1);
    render_counters(x, c);
    render_gauges(x, c, g);
    render_histograms(x, t);
    render_process(x, p);
    return out;
}

} // namespace fxd::daemon
