#include <fxd/protocol/ops.hpp>

#include <array>

namespace fxd::protocol {

namespace {
constexpr std::array<std::string_view, op_count> op_names{
    "ping", "hello", "echo", "register", "login", "logout", "whoami",
    "upload", "download", "stat", "list", "delete", "stats",
};
} // namespace

std::string_view to_string(op o) noexcept
{
    return op_names[static_cast<std::size_t>(o)];
}

std::optional<op> op_from_name(std::string_view name) noexcept
{
    for (std::size_t i = 0; i < op_names.size(); ++i) {
        if (op_names[i] == name)
            return static_cast<op>(i);
    }
    return std::nullopt;
}

} // namespace fxd::protocol
