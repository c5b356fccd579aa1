#include "proxy_trust.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace fxd::daemon {

namespace ip = boost::asio::ip;

namespace {

/// An IPv4-mapped IPv6 address as the IPv4 address it is; others unchanged.
ip::address unmapped(const ip::address& a)
{
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return ip::make_address_v4(ip::v4_mapped, a.to_v6());
    return a;
}

template <std::size_t N>
bool prefix_matches(const std::array<unsigned char, N>& a, const std::array<unsigned char, N>& b, unsigned prefix)
{
    const unsigned whole = prefix / 8;
    if (!std::equal(a.begin(), a.begin() + whole, b.begin()))
        return false;
    const unsigned rest = prefix % 8;
    if (rest == 0)
        return true;
    const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

template <std::size_t N>
bool has_host_bits(const std::array<unsigned char, N>& a, unsigned prefix)
{
    for (unsigned i = prefix; i < N * 8; ++i) {
        if (a[i / 8] & (0x80 >> (i % 8)))
            return true;
    }
    return false;
}

} // namespace

std::optional<address_range> address_range::parse(std::string_view text, std::string& why)
{
    const auto slash = text.find('/');
    boost::system::error_code ec;
    const auto base = unmapped(ip::make_address(std::string(text.substr(0, slash)), ec));
    if (ec) {
        why = "'" + std::string(text.substr(0, slash)) + "' is not an IPv4 or IPv6 address";
        return std::nullopt;
    }
    const unsigned length = base.is_v4() ? 32 : 128;
    unsigned prefix = length;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (digits.empty() || err != std::errc{} || end != digits.data() + digits.size() || prefix > length) {
            why = "'/" + std::string(digits) + "' is not a prefix length 0.." + std::to_string(length);
            return std::nullopt;
        }
    }
    const bool host_bits = base.is_v4() ? has_host_bits(base.to_v4().to_bytes(), prefix)
                                        : has_host_bits(base.to_v6().to_bytes(), prefix);
    if (host_bits) {
        why = "'" + std::string(text) + "' has address bits set past its prefix length";
        return std::nullopt;
    }
    return address_range(base, prefix);
}

bool address_range::contains(const ip::address& peer) const noexcept
{
    const auto a = unmapped(peer);
    if (a.is_v4() != base_.is_v4())
        return false;
    return a.is_v4() ? prefix_matches(a.to_v4().to_bytes(), base_.to_v4().to_bytes(), prefix_)
                     : prefix_matches(a.to_v6().to_bytes(), base_.to_v6().to_bytes(), prefix_);
}

trusted_proxies::trusted_proxies(const std::vector<std::string>& networks)
{
    for (const auto& text : networks) {
        std::string why;
        auto range = address_range::parse(text, why);
        if (!range)
            throw std::invalid_argument(why);
        ranges_.push_back(std::move(*range));
    }
}

bool trusted_proxies::trusts(const ip::address& peer) const noexcept
{
    return std::any_of(ranges_.begin(), ranges_.end(), [&](const address_range& r) { return r.contains(peer); });
}

} // namespace fxd::daemon
