#include <fxd/protocol/errc.hpp>

#include <array>

namespace fxd::protocol {

namespace {
constexpr std::array<std::string_view, errc_count> errc_names{
    "bad_frame",       "header_too_large", "bad_header",          "unknown_op",   "bad_request",
    "body_too_large",  "unauthorized",     "user_exists",         "bad_credentials", "rate_limited",
    "registration_closed", "bad_name",     "not_found",           "bad_offset",   "checksum_mismatch",
    "quota_exceeded",  "storage_full",     "busy",                "unsupported",  "shutting_down",
    "timeout",         "internal",         "tls_required",        "unavailable",  "storage_unavailable",
};
} // namespace

std::string_view to_string(errc code) noexcept
{
    return errc_names[static_cast<std::size_t>(code)];
}

} // namespace fxd::protocol
