#pragma once
/// A SHA-256 whose running state can be written out and read back, so an
/// upload stored part by part can be resumed by another process: the digest of
/// the whole file continues from where the last stored part left it. Only at
/// 64-byte boundaries (a whole number of SHA-256 blocks), where the state is
/// just the eight chaining words and the byte count.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace fxd::util {

class resumable_sha256 {
public:
    resumable_sha256();
    ~resumable_sha256();
    resumable_sha256(resumable_sha256&&) noexcept;
    resumable_sha256& operator=(resumable_sha256&&) noexcept;

    void update(std::span<const char> bytes);
    std::uint64_t bytes_hashed() const noexcept;

    /// The state as text ("<byte count>:<64 hex digits>"). Throws
    /// std::logic_error when the bytes hashed are not a multiple of 64.
    std::string save() const;
    /// The state save() wrote; nullptr-free: throws std::invalid_argument when
    /// the text is not one.
    static resumable_sha256 restore(std::string_view saved);

    /// The digest as 64 lowercase hex digits; the state is spent afterwards.
    std::string finish_hex();

private:
    struct state;
    std::unique_ptr<state> state_;
};

} // namespace fxd::util
