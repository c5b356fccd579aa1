#pragma once
/// The operations of the wire contract and where each is offered.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fxd::protocol {

enum class op : std::uint8_t {
    ping,
    hello,
    echo,
    register_user,
    login,
    logout,
    whoami,
    upload,
    download,
    stat,
    list,
    delete_file,
    stats,
};

inline constexpr std::size_t op_count = static_cast<std::size_t>(op::stats) + 1;

/// The op's name on the wire, e.g. "register".
std::string_view to_string(op o) noexcept;

/// Looks up an op by its wire name; nullopt for names the contract does not define.
std::optional<op> op_from_name(std::string_view name) noexcept;

/// Whether the contract offers the op over UDP (only ping and echo).
constexpr bool offered_on_udp(op o) noexcept { return o == op::ping || o == op::echo; }

} // namespace fxd::protocol
