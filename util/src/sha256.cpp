#include <fxd/util/hex.hpp>
#include <fxd/util/sha256.hpp>
#include <fxd/util/unique_fd.hpp>

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

namespace fxd::util {

void sha256::context_deleter::operator()(evp_md_ctx_st* ctx) const noexcept
{
    EVP_MD_CTX_free(ctx);
}

sha256::sha256() : ctx_(EVP_MD_CTX_new())
{
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL cannot start a SHA-256");
}

void sha256::update(std::span<const char> bytes)
{
    if (!bytes.empty() && EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) != 1)
        throw std::runtime_error("OpenSSL SHA-256 update failed");
}

sha256::digest sha256::finish()
{
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), out.data(), &length) != 1 || length != digest_bytes)
        throw std::runtime_error("OpenSSL SHA-256 final failed");
    // A spent context would hash on from the wrong state: refuse further use.
    EVP_MD_CTX_reset(ctx_.get());
    digest d{};
    std::copy_n(out.begin(), digest_bytes, d.begin());
    return d;
}

std::string sha256::finish_hex()
{
    return to_hex(finish());
}

std::string sha256_hex(std::string_view bytes)
{
    sha256 h;
    h.update(bytes);
    return h.finish_hex();
}

void hash_file(int fd, std::uint64_t length, sha256& into, const hash_progress& progress)
{
    std::vector<char> buffer(std::min<std::uint64_t>(length, 1 << 20));
    std::uint64_t done = 0;
    while (done < length) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length - done, buffer.size()));
        const ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::system_error(errno, std::generic_category(), "read");
        if (n == 0)
            throw file_too_short("the file ended after " + std::to_string(done) + " of the " + std::to_string(length) +
                                 " bytes to hash: it changed while it was read");
        into.update(std::span<const char>(buffer.data(), static_cast<std::size_t>(n)));
        done += static_cast<std::uint64_t>(n);
        if (progress)
            progress(done, length);
    }
}

std::string sha256_file(int fd, const hash_progress& progress)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw std::system_error(errno, std::generic_category(), "stat");
    sha256 h;
    hash_file(fd, static_cast<std::uint64_t>(st.st_size), h, progress);
    return h.finish_hex();
}

std::string sha256_file(const std::filesystem::path& path, const hash_progress& progress)
{
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        throw std::system_error(errno, std::generic_category(), "open " + path.string());
    return sha256_file(fd.get(), progress);
}

} // namespace fxd::util
