// fuzz_header: the header parser on arbitrary header text, then the daemon's
// dispatcher on every header it accepts: admit() for all thirteen ops over TCP
// or UDP, logged in or not, draining or not, and serve() for what admit()
// routes to serve_now or buffer. Work, upload and download stop at admit(), so
// nothing reaches the worker pool, Argon2id, SQLite or the disk.
//
// Every text is also parsed with Boost.JSON alone (header_parser::
// parse_general): the parser's fast path must give the same verdict and the
// same reading (protocol::same_reading), and the ok-reply shortcut the same
// bytes as reply_writer.
//
// Input: byte 0 = flags (bit 0: UDP, bit 1: logged in, bit 2: draining), then
// the header text up to the first NUL byte, then the body.

#include "fuzz_support.hpp"

#include "config.hpp"
#include "dispatcher.hpp"
#include "worker_pool.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/names.hpp>
#include <fxd/protocol/ops.hpp>
#include <fxd/services/stats.hpp>

#include <boost/json/object.hpp>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace daemon = fxd::daemon;
namespace protocol = fxd::protocol;
using protocol::errc;
using protocol::op;
using kind = daemon::admission::kind;

struct harness {
    daemon::config cfg = daemon::load_config_text(
        R"({"log": {"level": "error"}, "limits": {"max_echo_bytes": 65536}, "workers": {"threads": 1, "queue_limit": 4}})",
        "fuzz_header config");
    fxd::services::counters stats;
    spdlog::logger log{"fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()};
    daemon::worker_pool workers{1, 4};
    daemon::worker_pool hashes{1, 4};
    daemon::dispatcher dispatcher{cfg, stats, log, workers, hashes};
};

harness& the_harness()
{
    static auto* h = new harness; // never destroyed: the worker thread outlives every input
    return *h;
}

bool is_one_of(op o, std::initializer_list<op> ops)
{
    return std::find(ops.begin(), ops.end(), o) != ops.end();
}

/// The reply frame in out must carry the request's op and id.
void check_echoes_request(const fxd::fuzz::reply& r, const protocol::request_header& request)
{
    const auto* reply_op = r.header.if_contains("op");
    if (request.operation) {
        FXD_FUZZ_CHECK(fxd::fuzz::is_text(reply_op, protocol::to_string(*request.operation)));
    } else {
        FXD_FUZZ_CHECK(!reply_op);
    }
    const auto* reply_id = r.header.if_contains("id");
    if (request.id) {
        FXD_FUZZ_CHECK(reply_id && *reply_id == *request.id);
    } else {
        FXD_FUZZ_CHECK(!reply_id);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    auto& h = the_harness();
    const std::uint8_t flags = data[0];
    const bool udp = flags & 1;
    const bool logged_in = flags & 2;
    const bool draining = flags & 4;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    const auto nul = rest.find('\0');
    const std::string_view text = rest.substr(0, nul);
    const std::string_view tail = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);

    // A fresh parser per input keeps every input reproducible on its own
    // (fuzz_decoder and fuzz_udp cover a parser reused across headers).
    protocol::header_parser parser;
    protocol::request_header request;
    errc error{};
    const bool accepted = parser.parse(text, request, error);

    // The parser's fast path against Boost.JSON alone on the same text: the
    // same verdict, and on acceptance the same reading of every member.
    protocol::header_parser reference;
    protocol::request_header general;
    errc general_error{};
    const bool general_accepted = reference.parse_general(text, general, general_error);
    FXD_FUZZ_CHECK(accepted == general_accepted);
    if (!accepted) {
        FXD_FUZZ_CHECK(error == errc::bad_header && general_error == errc::bad_header);
        return 0;
    }
    FXD_FUZZ_CHECK(general.fields != nullptr);
    FXD_FUZZ_CHECK(!request.fields || request.members.empty()); // one place or the other
    FXD_FUZZ_CHECK(protocol::same_reading(request, general));

    // The ok-reply shortcut (echo, ping) writes reply_writer's bytes for any op text and id.
    {
        std::string shortcut;
        std::string written;
        protocol::append_ok_reply_header(shortcut, request.op_name, request.id, request.size);
        protocol::reply_writer writer(written);
        writer.begin(request.op_name, request.id, true);
        writer.end(request.size);
        FXD_FUZZ_CHECK(shortcut == written);
    }
    if (request.operation)
        FXD_FUZZ_CHECK(protocol::to_string(*request.operation) == request.op_name);

    if (udp) { // as handle_datagram does: the body is the rest of the datagram
        if (protocol::has_field(request, "size") && request.size != tail.size())
            return 0;
        request.size = tail.size();
    }

    daemon::session_context session;
    session.peer_address = "127.0.0.1";
    session.address_key = "127.0.0.1";
    session.loopback = true; // stats are served to this host
    session.user = logged_in ? "alice" : "";
    const auto via = udp ? daemon::transport::udp : daemon::transport::tcp;
    const daemon::admission plan = h.dispatcher.admit(request, via, draining, udp ? nullptr : &session);
    const auto& limits = h.cfg.limits;
    std::string out;

    if (plan.action == kind::refuse) {
        FXD_FUZZ_CHECK(plan.code != errc::internal); // a header alone is the client's fault, never the server's
        FXD_FUZZ_CHECK(!plan.message.empty());
        h.dispatcher.reply_error(out, &request, plan.code, plan.message);
        const auto replies = fxd::fuzz::check_replies(out);
        FXD_FUZZ_CHECK(replies.size() == 1);
        FXD_FUZZ_CHECK(fxd::fuzz::is_text(replies[0].header.at("status"), "error"));
        FXD_FUZZ_CHECK(fxd::fuzz::is_text(replies[0].header.at("code"), protocol::to_string(plan.code)));
        check_echoes_request(replies[0], request);
        return 0;
    }

    // Admitted: the contract's rules must all hold.
    FXD_FUZZ_CHECK(!draining);
    FXD_FUZZ_CHECK(!request.field_error);
    FXD_FUZZ_CHECK(request.operation.has_value());
    const op o = *request.operation;
    if (udp)
        FXD_FUZZ_CHECK(protocol::offered_on_udp(o) && plan.action != kind::work);
    if (is_one_of(o, {op::upload, op::download, op::stat, op::list, op::delete_file}))
        FXD_FUZZ_CHECK(logged_in && !udp);
    if (is_one_of(o, {op::upload, op::download, op::stat, op::delete_file})) {
        const auto name = protocol::string_field(request, "name");
        // The name the op will use is its NFC form, within the rules (the bytes sent may be longer).
        const auto stored = name ? protocol::normalize_file_name(*name) : std::nullopt;
        FXD_FUZZ_CHECK(stored && protocol::is_valid_file_name(*stored));
        FXD_FUZZ_CHECK(!protocol::has_field(request, "offset") || protocol::uint_field(request, "offset"));
    }
    if (o != op::echo && o != op::upload)
        FXD_FUZZ_CHECK(protocol::request_body_length(request) <= limits.max_discard_bytes);

    switch (plan.action) {
    case kind::work:
        FXD_FUZZ_CHECK(is_one_of(o, {op::register_user, op::login, op::logout, op::stat, op::list, op::delete_file}));
        return 0;
    case kind::upload: {
        FXD_FUZZ_CHECK(o == op::upload);
        FXD_FUZZ_CHECK(request.size <= limits.max_upload_bytes);
        const auto sha = protocol::string_field(request, "sha256");
        FXD_FUZZ_CHECK(!protocol::has_field(request, "sha256") || (sha && protocol::is_sha256_hex(*sha)));
        FXD_FUZZ_CHECK(protocol::request_body_length(request) <= request.size);
        return 0;
    }
    case kind::download:
        FXD_FUZZ_CHECK(o == op::download);
        return 0;
    case kind::serve_now:
        FXD_FUZZ_CHECK(is_one_of(o, {op::ping, op::hello, op::stats, op::whoami}));
        h.dispatcher.serve(request, {}, udp ? nullptr : &session, out);
        break;
    case kind::buffer: {
        FXD_FUZZ_CHECK(o == op::echo);
        FXD_FUZZ_CHECK(request.size <= limits.max_echo_bytes);
        // The decoder hands serve() exactly size bytes: the input's tail, padded or cut.
        std::vector<char> body(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(tail.size(), request.size)));
        for (std::size_t i = body.size(); i < request.size; ++i)
            body.push_back(static_cast<char>('a' + i % 31));
        h.dispatcher.serve(request, body, udp ? nullptr : &session, out);
        const auto replies = fxd::fuzz::check_replies(out);
        FXD_FUZZ_CHECK(replies.size() == 1);
        FXD_FUZZ_CHECK(fxd::fuzz::is_echo_of(replies[0].body, body));
        break;
    }
    case kind::refuse:
        break;
    }

    const auto replies = fxd::fuzz::check_replies(out);
    FXD_FUZZ_CHECK(replies.size() == 1);
    FXD_FUZZ_CHECK(fxd::fuzz::is_text(replies[0].header.at("status"), "ok")); // "internal" would mean serve() failed
    check_echoes_request(replies[0], request);
    if (o == op::whoami) {
        const auto& user = replies[0].header.at("user");
        FXD_FUZZ_CHECK(logged_in ? fxd::fuzz::is_text(user, "alice") : user.is_null());
    }
    if (o == op::logout)
        FXD_FUZZ_CHECK(session.user.empty());
    if (o != op::echo)
        FXD_FUZZ_CHECK(replies[0].body.empty() || o == op::stats || o == op::hello);
    return 0;
}
