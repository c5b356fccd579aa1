#pragma once
/// SHA-256 through OpenSSL's EVP interface, and hashing (part of) an open file.

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

struct evp_md_ctx_st; // OpenSSL's EVP_MD_CTX, kept out of this header

namespace fxd::util {

/// An incremental SHA-256. Throws std::runtime_error when OpenSSL fails.
class sha256 {
public:
    static constexpr std::size_t digest_bytes = 32;
    using digest = std::array<unsigned char, digest_bytes>;

    sha256();

    void update(std::span<const char> bytes);
    void update(std::string_view bytes) { update(std::span(bytes.data(), bytes.size())); }
    /// A std::string converts to both of the above: this one says which.
    void update(const std::string& bytes) { update(std::string_view(bytes)); }

    /// The digest; the hash is spent afterwards (update and finish throw).
    digest finish();
    /// The digest as 64 lowercase hex digits (the contract's form); spends the hash too.
    std::string finish_hex();

private:
    struct context_deleter {
        void operator()(evp_md_ctx_st* ctx) const noexcept;
    };
    std::unique_ptr<evp_md_ctx_st, context_deleter> ctx_;
};

/// SHA-256 of some bytes, as lowercase hex.
std::string sha256_hex(std::string_view bytes);

/// The file ended before the bytes asked for: it changed while it was read.
class file_too_short : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// progress(done, total) after each piece read.
using hash_progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// Feeds exactly the first `length` bytes of an open file into `into` (pread:
/// the file offset is left alone). A digest of fewer bytes than asked would be
/// the digest of some other file, so a file shorter than `length` throws
/// file_too_short; a read error throws std::system_error.
void hash_file(int fd, std::uint64_t length, sha256& into, const hash_progress& progress = {});

/// SHA-256 of the whole of an open file, as long as fstat says it is now.
std::string sha256_file(int fd, const hash_progress& progress = {});
/// SHA-256 of the whole file at path (opened read-only, following links).
std::string sha256_file(const std::filesystem::path& path, const hash_progress& progress = {});

} // namespace fxd::util
