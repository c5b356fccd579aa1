#pragma once
/// Routes each decoded request to its service, and is the one place that turns
/// refusals and unexpected failures into wire error codes and counts them.

#include "config.hpp"

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/services/info.hpp>
#include <fxd/services/stats.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace fxd::daemon {

enum class transport { tcp, udp };

/// What to do with a request's body, decided from its header alone.
struct admission {
    enum class kind {
        buffer,        ///< read the whole body, then serve
        serve_now,     ///< the op takes no body: serve at once, discard any body
        refuse,        ///< reply `code`, then discard the body or close (discard rule)
    };
    kind action = kind::refuse;
    protocol::errc code = protocol::errc::internal;
    std::string_view message;
};

class dispatcher {
public:
    dispatcher(const config& cfg, services::counters& stats, spdlog::logger& log);

    /// Counts the request and decides how to take it. While draining, every new
    /// request is refused with shutting_down.
    admission admit(const protocol::request_header& request, transport via, bool draining);

    /// Appends the reply to an admitted request. Never throws: failures become `internal`.
    void serve(const protocol::request_header& request, std::span<const char> body, std::string& out);

    /// Appends an error reply and counts it. request may be null (frame errors, busy, timeout).
    void reply_error(std::string& out, const protocol::request_header* request, protocol::errc code,
                     std::string_view message);

    services::counters& stats() noexcept { return stats_; }

private:
    const config& cfg_;
    services::counters& stats_;
    spdlog::logger& log_;
    std::vector<protocol::op> tcp_ops_;
    services::server_info tcp_info_;
};

} // namespace fxd::daemon
