// fuzz_proxy: the PROXY protocol header parser, as the daemon's intake drives
// it: bytes arrive in pieces, and it parses the prefix it has each time. So on
// every prefix of the input the answer must be need_more until it is decided,
// and once decided (a header of some length, or invalid) it must not change as
// more bytes come; a header never claims bytes it was not given or more than
// the bound; and a frame or a TLS record is never taken for a header.
//
// Input: the first bytes of a connection.

#include "fuzz_support.hpp"

#include <fxd/protocol/proxy_header.hpp>

#include <algorithm>
#include <cstring>
#include <span>

namespace {

using namespace fxd::protocol::proxy;
using status = parse_result::status;

/// Inputs past this are cut: every decision falls within max_header_bytes,
/// and the prefix walk below is quadratic.
constexpr std::size_t max_input = 2 * max_header_bytes;

bool same_client(const std::optional<client_address>& a, const std::optional<client_address>& b)
{
    if (a.has_value() != b.has_value())
        return false;
    return !a || (a->v6 == b->v6 && a->port == b->port && a->bytes == b->bytes);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::span<const char> input(reinterpret_cast<const char*>(data), std::min(size, max_input));
    const auto whole = parse(input);

    FXD_FUZZ_CHECK(whole.version == 0 || whole.version == 1 || whole.version == 2);
    if (!input.empty())
        FXD_FUZZ_CHECK(starts_like_header(input) == (whole.version != 0));
    if (whole.state == status::need_more)
        FXD_FUZZ_CHECK(input.size() < max_header_bytes); // a reader's buffer is always enough
    if (whole.state == status::invalid)
        FXD_FUZZ_CHECK(!whole.error.empty());
    if (whole.state == status::complete) {
        FXD_FUZZ_CHECK(whole.length > 0 && whole.length <= input.size() && whole.length <= max_header_bytes);
        if (whole.version == 1) {
            FXD_FUZZ_CHECK(whole.length <= v1_max_bytes);
            FXD_FUZZ_CHECK(input[whole.length - 2] == '\r' && input[whole.length - 1] == '\n');
        } else {
            FXD_FUZZ_CHECK(whole.length >= v2_fixed_bytes);
        }
        if (whole.client && !whole.client->v6) // an IPv4 address uses the first four bytes only
            FXD_FUZZ_CHECK(std::all_of(whole.client->bytes.begin() + 4, whole.client->bytes.end(),
                                       [](std::uint8_t b) { return b == 0; }));
    }

    // Byte by byte, as a slow balancer would send it: undecided, then one
    // decision for good (checked on the next 64 prefixes past it).
    std::size_t decided_at = 0;
    for (std::size_t n = 1; n <= input.size() && (decided_at == 0 || n <= decided_at + 64); ++n) {
        const auto part = parse(input.first(n));
        if (decided_at == 0 && part.state == status::need_more)
            continue;
        FXD_FUZZ_CHECK(part.state == whole.state);
        if (part.state == status::complete) {
            FXD_FUZZ_CHECK(part.length == whole.length && part.version == whole.version);
            FXD_FUZZ_CHECK(same_client(part.client, whole.client));
            if (decided_at == 0)
                FXD_FUZZ_CHECK(part.length == n); // decided by its last byte, never by one after it
        }
        if (decided_at == 0)
            decided_at = n;
    }
    if (decided_at == 0)
        FXD_FUZZ_CHECK(whole.state == status::need_more);
    return 0;
}
