#include <fxd/client/sha256.hpp>

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace fxd::client {

struct sha256::impl {
    EVP_MD_CTX* ctx = nullptr;
    ~impl() { EVP_MD_CTX_free(ctx); }
};

sha256::sha256() : impl_(std::make_unique<impl>())
{
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL cannot start a SHA-256");
}

sha256::~sha256() = default;
sha256::sha256(sha256&&) noexcept = default;
sha256& sha256::operator=(sha256&&) noexcept = default;

void sha256::update(std::span<const char> bytes)
{
    if (!bytes.empty() && EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()) != 1)
        throw std::runtime_error("OpenSSL SHA-256 update failed");
}

std::string sha256::hex()
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(impl_->ctx, digest, &len) != 1)
        throw std::runtime_error("OpenSSL SHA-256 final failed");
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) {
        out += digits[digest[i] >> 4];
        out += digits[digest[i] & 0xF];
    }
    return out;
}

std::string sha256_hex(std::string_view bytes)
{
    sha256 h;
    h.update(bytes);
    return h.hex();
}

void hash_file_prefix(int fd, std::uint64_t limit, sha256& h,
                      const std::function<void(std::uint64_t, std::uint64_t)>& progress)
{
    std::vector<char> buf(1 << 20);
    std::uint64_t done = 0;
    while (done < limit) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(limit - done, buf.size()));
        const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw std::system_error(errno, std::generic_category(), "read");
        if (n == 0)
            throw std::runtime_error("the file is shorter than expected");
        h.update(std::span<const char>(buf.data(), static_cast<std::size_t>(n)));
        done += static_cast<std::uint64_t>(n);
        if (progress)
            progress(done, limit);
    }
}

std::string sha256_file(const std::filesystem::path& path,
                        const std::function<void(std::uint64_t, std::uint64_t)>& progress)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "open " + path.string());
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw std::system_error(errno, std::generic_category(), "stat " + path.string());
    sha256 h;
    hash_file_prefix(fd, static_cast<std::uint64_t>(st.st_size), h, progress);
    return h.hex();
}

} // namespace fxd::client
