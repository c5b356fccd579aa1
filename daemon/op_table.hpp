#pragma once
/// What each op is, in one table: where it is offered, whether it needs a
/// login, what it does with a body, where it runs and which handler serves it.
/// A new op is one row in op_table.cpp plus its handler.

#include "config.hpp"

#include <fxd/protocol/errc.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/ops.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fxd::daemon {

class dispatcher;
struct session_context;

enum class transport : std::uint8_t { tcp = 1, udp = 2 };

/// What the connection does with the bytes after the header.
enum class body_kind : std::uint8_t {
    none,     ///< the op takes no body: any sent is discarded (up to limits.max_discard_bytes)
    whole,    ///< gathered whole, then served (echo)
    streamed, ///< handed to storage piece by piece as it arrives (upload)
};

/// How the op is served once admitted.
enum class op_shape : std::uint8_t {
    loop,     ///< on the loop's thread, at once: `serve`
    worker,   ///< awaited, its slow part on the worker pool: `work`
    upload,   ///< the session streams the body into storage (dispatcher::begin_upload)
    download, ///< the session sends the file after the reply header (dispatcher::begin_download)
};

/// Why a header was refused before any work.
struct refusal {
    protocol::errc code;
    std::string_view message;
};

struct op_spec {
    using check_fn = std::optional<refusal> (*)(const protocol::request_header&, const config&);
    using serve_fn = void (dispatcher::*)(const protocol::request_header&, std::span<const char> body,
                                          session_context* session, std::string& out);
    using work_fn = boost::asio::awaitable<void> (dispatcher::*)(const protocol::request_header&,
                                                                 session_context& session, std::string& out);

    protocol::op op;
    std::uint8_t transports;   ///< bits of `transport`
    bool needs_login;
    body_kind body;
    op_shape shape;
    check_fn check = nullptr;  ///< the op's own header rules, after the shared ones
    serve_fn serve = nullptr;  ///< shape loop
    work_fn work = nullptr;    ///< shape worker

    constexpr bool offered_over(transport t) const noexcept { return (transports & static_cast<std::uint8_t>(t)) != 0; }
};

/// The row of op o.
const op_spec& spec_of(protocol::op o) noexcept;

/// Every row, in the contract's order (hello lists the TCP ones in this order).
std::span<const op_spec> all_ops() noexcept;

} // namespace fxd::daemon
