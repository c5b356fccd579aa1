#include "op_table.hpp"

#include "dispatcher.hpp"

#include <fxd/protocol/names.hpp>

#include <boost/json/object.hpp>

#include <array>

namespace fxd::daemon {

using protocol::errc;
using protocol::op;

namespace {

constexpr std::uint8_t tcp_only = static_cast<std::uint8_t>(transport::tcp);
constexpr std::uint8_t tcp_and_udp = tcp_only | static_cast<std::uint8_t>(transport::udp);

std::optional<refusal> check_echo(const protocol::request_header& request, const config& cfg)
{
    if (request.size > cfg.limits.max_echo_bytes)
        return refusal{errc::body_too_large, "echo body exceeds limits.max_echo_bytes"};
    return std::nullopt;
}

std::optional<refusal> check_file_name(const protocol::request_header& request, const config&)
{
    const auto name = protocol::string_field(request, "name");
    if (!name)
        return refusal{errc::bad_request, "name is a required string"};
    // The rules apply to the name's NFC form, the one every file op then uses (file_ops.cpp).
    if (!protocol::normalize_file_name(*name))
        return refusal{errc::bad_name,
                       "a name is 1 to 255 bytes of UTF-8 without / \\ or control characters, not starting with '.'"};
    if (protocol::has_field(request, "offset") && !protocol::uint_field(request, "offset"))
        return refusal{errc::bad_request, "offset must be a non-negative integer"};
    return std::nullopt;
}

std::optional<refusal> check_upload(const protocol::request_header& request, const config& cfg)
{
    if (auto refused = check_file_name(request, cfg))
        return refused;
    if (const auto sha = protocol::string_field(request, "sha256");
        protocol::has_field(request, "sha256") && !(sha && protocol::is_sha256_hex(*sha)))
        return refusal{errc::bad_request, "sha256 must be 64 lowercase hex digits"};
    if (protocol::has_field(request, "mtime") && !protocol::mtime_field(request))
        return refusal{errc::bad_request, "mtime must be whole seconds since 1970 from 0 to 253402300799 (9999-12-31)"};
    if (request.size > cfg.limits.max_upload_bytes)
        return refusal{errc::body_too_large, "size exceeds limits.max_upload_bytes"};
    return std::nullopt;
}

using d = dispatcher;
using body = body_kind;
using shape = op_shape;

// One row per op, in the order of protocol::op.
constexpr std::array<op_spec, protocol::op_count> table{{
    // op                  transports   login  body           shape            check            handler
    {op::ping,             tcp_and_udp, false, body::none,    shape::loop,     nullptr,         &d::serve_ping},
    {op::hello,            tcp_only,    false, body::none,    shape::loop,     nullptr,         &d::serve_hello},
    {op::echo,             tcp_and_udp, false, body::whole,   shape::loop,     check_echo,      &d::serve_echo},
    {op::register_user,    tcp_only,    false, body::none,    shape::worker,   nullptr,         nullptr, &d::register_user},
    {op::login,            tcp_only,    false, body::none,    shape::worker,   nullptr,         nullptr, &d::login},
    {op::logout,           tcp_only,    false, body::none,    shape::worker,   nullptr,         nullptr, &d::logout},
    {op::whoami,           tcp_only,    false, body::none,    shape::loop,     nullptr,         &d::serve_whoami},
    {op::upload,           tcp_only,    true,  body::streamed, shape::upload,  check_upload},
    {op::download,         tcp_only,    true,  body::none,    shape::download, check_file_name},
    {op::stat,             tcp_only,    true,  body::none,    shape::worker,   check_file_name, nullptr, &d::stat_file},
    {op::list,             tcp_only,    true,  body::none,    shape::worker,   nullptr,         nullptr, &d::list_files},
    {op::delete_file,      tcp_only,    true,  body::none,    shape::worker,   check_file_name, nullptr, &d::delete_file},
    {op::stats,            tcp_only,    false, body::none,    shape::loop,     nullptr,         &d::serve_stats},
}};

constexpr bool table_is_consistent()
{
    for (std::size_t i = 0; i < table.size(); ++i) {
        const auto& row = table[i];
        if (static_cast<std::size_t>(row.op) != i)
            return false; // rows follow protocol::op, so spec_of() is an index
        if (row.offered_over(transport::udp) != protocol::offered_on_udp(row.op))
            return false; // the contract decides what UDP offers
        if (row.offered_over(transport::udp) && row.shape != shape::loop)
            return false; // nothing on UDP may wait for the pool or stream
    }
    return true;
}
// Whether every row names the handler its shape calls is checked by the
// op-table test: UBSan makes comparisons of member pointers non-constant.
static_assert(table_is_consistent());

} // namespace

const op_spec& spec_of(op o) noexcept
{
    return table[static_cast<std::size_t>(o)];
}

std::span<const op_spec> all_ops() noexcept
{
    return table;
}

} // namespace fxd::daemon
