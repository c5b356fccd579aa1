#include <fxd/services/echo.hpp>

#include <fxd/protocol/ops.hpp>

namespace fxd::services {

void upper_ascii(std::span<const char> from, std::span<char> to) noexcept
{
    for (std::size_t i = 0; i < from.size(); ++i) {
        const char c = from[i];
        to[i] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c;
    }
}

void serve_echo(const protocol::request_header& request, std::span<const char> body, std::string& out)
{
    protocol::append_ok_reply_header(out, protocol::to_string(protocol::op::echo), request.id, body.size());
    const std::size_t at = out.size();
    out.resize(at + body.size());
    upper_ascii(body, {out.data() + at, body.size()});
}

} // namespace fxd::services
