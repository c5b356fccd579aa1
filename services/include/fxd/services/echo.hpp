#pragma once
/// echo: the body with ASCII a-z turned to A-Z, every other byte unchanged.

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/header.hpp>

#include <span>
#include <string>

namespace fxd::services {

/// Writes to.size() == from.size() bytes; from and to may be the same range.
void upper_ascii(std::span<const char> from, std::span<char> to) noexcept;

/// Appends the whole echo reply (header and body) to out.
void serve_echo(const protocol::request_header& request, std::span<const char> body, std::string& out);

} // namespace fxd::services
