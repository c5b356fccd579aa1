// fuzz_udp: the daemon's UDP path, server::handle_datagram, on arbitrary
// datagrams. One real server is started once (port 0, a temporary storage
// folder, a cheap password hash cost); its io_context never runs, so only the
// datagram handling is exercised. The contract: an empty datagram and a
// reply-shaped one (a header with "status") get no reply, a reply stays within
// the protocol's UDP bound (protocol::udp_reply_within_bound, twice the
// request), and a reply is one well-formed frame (an echo's body upper-cased).
//
// Input: one datagram, whole.

#include "fuzz_support.hpp"

#include "config.hpp"
#include "server.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/udp.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace {

namespace daemon = fxd::daemon;

std::filesystem::path storage_dir;

void remove_storage()
{
    std::error_code ec;
    std::filesystem::remove_all(storage_dir, ec);
}

struct harness {
    boost::asio::io_context io{1};
    daemon::config cfg;
    spdlog::logger log{"fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()};
    std::unique_ptr<daemon::server> server;

    harness()
    {
        std::string dir = (std::filesystem::temp_directory_path() / "fxd-fuzz-udp-XXXXXX").string();
        if (!::mkdtemp(dir.data())) {
            std::perror("fuzz_udp: mkdtemp");
            std::abort();
        }
        storage_dir = dir;
        std::atexit(remove_storage);
        const boost::json::value text = {
            {"tcp", {{"port", 0}}},
            {"udp", {{"port", 0}}},
            {"storage", {{"dir", dir}}},
            {"log", {{"level", "error"}}},
            {"auth", {{"hash_passes", 1}, {"hash_memory_bytes", 8192}}},
            {"workers", {{"threads", 1}}},
        };
        cfg = daemon::load_config_text(boost::json::serialize(text), "fuzz_udp config");
        log.set_level(spdlog::level::err);
        server = std::make_unique<daemon::server>(io, cfg, log);
        server->start();
    }
};

harness& the_harness()
{
    static auto* h = new harness; // never destroyed: worker threads and sockets outlive every input
    return *h;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    auto& h = the_harness();
    const std::span<const char> datagram(reinterpret_cast<const char*>(data), size);
    std::string out;
    h.server->handle_datagram(datagram, out);

    if (size == 0)
        FXD_FUZZ_CHECK(out.empty());
    if (size > fxd::protocol::prefix_bytes && !out.empty()) {
        // Anything answered was a request: its header had no "status" member.
        const auto header_len = fxd::protocol::load_u32_be(data);
        const std::string_view header(reinterpret_cast<const char*>(data) + fxd::protocol::prefix_bytes,
                                      std::min<std::size_t>(header_len, size - fxd::protocol::prefix_bytes));
        const auto parsed = boost::json::parse(header);
        FXD_FUZZ_CHECK(parsed.is_object() && !parsed.as_object().contains("status"));
    }
    FXD_FUZZ_CHECK(fxd::protocol::udp_reply_within_bound(size, out.size())); // no amplification
    if (out.empty())
        return 0;
    const auto replies = fxd::fuzz::check_replies(out);
    FXD_FUZZ_CHECK(replies.size() == 1);
    const auto& reply = replies[0];
    if (fxd::fuzz::is_text(reply.header.at("status"), "ok")) {
        const auto* op = reply.header.if_contains("op");
        FXD_FUZZ_CHECK(fxd::fuzz::is_text(op, "ping") || fxd::fuzz::is_text(op, "echo")); // nothing else is offered on UDP
        if (fxd::fuzz::is_text(op, "echo")) {
            // The request's body is whatever follows its header in the datagram.
            const auto header_len = fxd::protocol::load_u32_be(data);
            const auto body = datagram.subspan(fxd::protocol::prefix_bytes + header_len);
            FXD_FUZZ_CHECK(fxd::fuzz::is_echo_of(reply.body, body));
        } else {
            FXD_FUZZ_CHECK(reply.body.empty());
        }
    }
    return 0;
}
