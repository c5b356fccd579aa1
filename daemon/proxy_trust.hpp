#pragma once
/// proxy.trusted: the networks whose connections start with a PROXY protocol
/// header naming the client they relay (a load balancer's addresses).

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::daemon {

/// One network in CIDR notation: "10.0.0.0/8", "2001:db8::/32", or a single
/// address ("127.0.0.1", "::1"), which is the whole-length prefix.
class address_range {
public:
    /// nullopt, with why set, when text is not a network: an address that does
    /// not parse, a prefix past the family's length, or bits set past the prefix.
    static std::optional<address_range> parse(std::string_view text, std::string& why);

    /// An IPv4 peer that reaches an IPv6 listener as ::ffff:a.b.c.d matches an IPv4 range.
    bool contains(const boost::asio::ip::address& peer) const noexcept;

private:
    address_range(boost::asio::ip::address base, unsigned prefix) : base_(std::move(base)), prefix_(prefix) {}
    boost::asio::ip::address base_;
    unsigned prefix_ = 0;
};

/// The parsed proxy.trusted list; empty trusts nobody.
class trusted_proxies {
public:
    trusted_proxies() = default;
    /// Throws std::invalid_argument naming the first entry that is not a network
    /// (the config check has refused such lists already).
    explicit trusted_proxies(const std::vector<std::string>& networks);

    bool trusts(const boost::asio::ip::address& peer) const noexcept;
    bool empty() const noexcept { return ranges_.empty(); }

private:
    std::vector<address_range> ranges_;
};

} // namespace fxd::daemon
