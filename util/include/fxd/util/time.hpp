#pragma once
/// The wall clock as the contract and the catalog count it.

#include <chrono>
#include <cstdint>

namespace fxd::util {

/// Whole seconds since the Unix epoch (mtime, partial ages, password changes).
inline std::int64_t unix_now() noexcept
{
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace fxd::util
