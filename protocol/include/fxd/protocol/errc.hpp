#pragma once
/// Stable error codes of the wire contract and their names.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fxd::protocol {

enum class errc : std::uint8_t {
    bad_frame,
    header_too_large,
    bad_header,
    unknown_op,
    bad_request,
    body_too_large,
    unauthorized,
    user_exists,
    bad_credentials,
    rate_limited,
    registration_closed,
    bad_name,
    not_found,
    bad_offset,
    checksum_mismatch,
    quota_exceeded,
    storage_full,
    busy,
    unsupported,
    shutting_down,
    timeout,
    internal,
    tls_required,        ///< register or login over plain TCP where auth.plaintext forbids it
    unavailable,         ///< the user database cannot be reached
    storage_unavailable, ///< the file store cannot be reached
};

inline constexpr std::size_t errc_count = static_cast<std::size_t>(errc::storage_unavailable) + 1;

/// The code as it travels on the wire, e.g. "bad_frame".
std::string_view to_string(errc code) noexcept;

} // namespace fxd::protocol
