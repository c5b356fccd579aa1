#include <fxd/services/stats.hpp>

#include <fxd/protocol/encoder.hpp>

#include <iterator>
#include <tuple>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace fxd::services {

std::string stats_json(const counters& c)
{
    namespace json = boost::json;
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - c.started).count();

    json::object requests;
    json::object errors_by_op;
    for (std::size_t i = 0; i < protocol::op_count; ++i) {
        const auto name = protocol::to_string(static_cast<protocol::op>(i));
        requests[name] = c.requests_by_op[i];
        errors_by_op[name] = c.errors_by_op[i];
    }
    requests["unknown"] = c.requests_unknown_op;
    errors_by_op["none"] = c.errors_without_op;
    json::object errors_by_code;
    for (std::size_t i = 0; i < protocol::errc_count; ++i)
        errors_by_code[protocol::to_string(static_cast<protocol::errc>(i))] = c.errors_by_code[i];

    constexpr std::string_view drop_causes[] = {"empty", "reply_shaped", "malformed", "oversize_reply", "send_failed",
                                                "internal"};
    static_assert(std::size(drop_causes) == std::tuple_size_v<decltype(c.udp_dropped_by_cause)>);
    json::object udp_drops;
    for (std::size_t i = 0; i < std::size(drop_causes); ++i)
        udp_drops[drop_causes[i]] = c.udp_dropped_by_cause[i];

    json::object root{
        {"uptime_s", static_cast<std::uint64_t>(uptime)},
        {"connections", json::object{{"open", c.connections_open},
                                     {"total", c.connections_total},
                                     {"refused_busy", c.connections_refused},
                                     {"refused_per_address", c.connections_refused_per_address},
                                     {"cut_unread", c.connections_cut_unread},
                                     {"cut_memory", c.connections_cut_memory},
                                     {"timed_out", c.timeouts}}},
        {"requests", std::move(requests)},
        {"errors", json::object{{"by_op", std::move(errors_by_op)}, {"by_code", std::move(errors_by_code)}}},
        {"bytes", json::object{{"in", c.bytes_in}, {"out", c.bytes_out}}},
        {"logins", json::object{{"ok", c.logins_ok}, {"failed", c.logins_failed}, {"rate_limited", c.logins_rate_limited}}},
        {"files", json::object{{"uploads_ok", c.uploads_ok},
                               {"uploads_failed", c.uploads_failed},
                               {"downloads_ok", c.downloads_ok},
                               {"downloads_failed", c.downloads_failed},
                               {"bytes_stored", c.bytes_stored},
                               {"partials_held", c.partials_held}}},
        {"registrations", json::object{{"ok", c.registrations_ok}, {"rate_limited", c.registrations_rate_limited}}},
        {"database", json::object{{"unavailable", c.database_unavailable}}},
        {"workers", json::object{{"queue_depth", c.worker_queue_depth}, {"hash_queue_depth", c.hash_queue_depth}}},
        {"udp", json::object{{"in", c.udp_in},
                             {"out", c.udp_out},
                             {"dropped", c.udp_dropped},
                             {"dropped_by_cause", std::move(udp_drops)},
                             {"rate_limited", c.udp_rate_limited}}},
        {"tls", json::object{{"open", c.tls_open},
                             {"handshakes", c.tls_handshakes},
                             {"handshake_failures", c.tls_handshake_failures}}},
        {"proxy", json::object{{"accepted", c.proxy_accepted},
                               {"refused_untrusted", c.proxy_refused_untrusted},
                               {"bad_header", c.proxy_bad_header}}},
    };
    return json::serialize(root);
}

void serve_stats(const protocol::request_header& request, const counters& c, std::string& out)
{
    const std::string body = stats_json(c);
    protocol::reply_writer reply(out);
    reply.begin(protocol::to_string(protocol::op::stats), request.id, true);
    reply.end(body.size());
    out += body;
}

} // namespace fxd::services
