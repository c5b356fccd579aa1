#include <fxd/services/echo.hpp>

#include <fxd/protocol/ops.hpp>

#include <array>
#include <cstring>

namespace fxd::services {

namespace {

char upper(char c) noexcept
{
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c;
}

} // namespace

void upper_ascii(std::span<const char> from, std::span<char> to) noexcept
{
    // In blocks through a local copy: a loop of fixed length over memory that
    // cannot alias is one the compiler turns into vector instructions at -O2
    // (the plain loop stayed one byte at a time, since from and to may overlap).
    constexpr std::size_t block = 16;
    std::size_t i = 0;
    for (; i + block <= from.size(); i += block) {
        std::array<char, block> bytes;
        std::memcpy(bytes.data(), from.data() + i, block);
        for (auto& c : bytes)
            c = upper(c);
        std::memcpy(to.data() + i, bytes.data(), block);
    }
    for (; i < from.size(); ++i)
        to[i] = upper(from[i]);
}

void serve_echo(const protocol::request_header& request, std::span<const char> body, std::string& out)
{
    protocol::append_ok_reply_header(out, protocol::to_string(protocol::op::echo), request.id, body.size());
    const std::size_t at = out.size();
    out.resize(at + body.size());
    upper_ascii(body, {out.data() + at, body.size()});
}

} // namespace fxd::services
