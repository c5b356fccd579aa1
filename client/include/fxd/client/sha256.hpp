#pragma once
/// SHA-256 through OpenSSL's EVP interface, as lowercase hex (the contract's form).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace fxd::client {

/// An incremental SHA-256.
class sha256 {
public:
    sha256();
    ~sha256();
    sha256(sha256&&) noexcept;
    sha256& operator=(sha256&&) noexcept;

    void update(std::span<const char> bytes);
    void update(std::string_view bytes) { update(std::span(bytes.data(), bytes.size())); }
    /// A std::string converts to both of the above: this one says which.
    void update(const std::string& bytes) { update(std::string_view(bytes)); }
    /// The digest as 64 lowercase hex digits; the hash cannot be updated afterwards.
    std::string hex();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// SHA-256 of some bytes.
std::string sha256_hex(std::string_view bytes);

/// Feeds the first `limit` bytes of an open file (from its start) into h;
/// progress(done, limit) after each piece. Throws std::system_error on a read
/// error and std::runtime_error when the file is shorter than limit.
void hash_file_prefix(int fd, std::uint64_t limit, sha256& h,
                      const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

/// SHA-256 of a whole file.
std::string sha256_file(const std::filesystem::path& path,
                        const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

} // namespace fxd::client
