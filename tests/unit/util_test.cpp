// fxd::util: the descriptor owner, hex, SHA-256 and file hashing, the clock,
// address resolution and the open-file limit.

#include <fxd/util/hex.hpp>
#include <fxd/util/net.hpp>
#include <fxd/util/resumable_sha256.hpp>
#include <fxd/util/sha256.hpp>
#include <fxd/util/time.hpp>
#include <fxd/util/trailing_hash.hpp>
#include <fxd/util/unique_fd.hpp>

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace util = fxd::util;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace {

bool is_open(int fd)
{
    return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

int open_null()
{
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE_GE(fd, 0);
    return fd;
}

/// A file with the given bytes in a fresh temporary folder, removed afterwards.
struct temp_file {
    fs::path dir;
    fs::path path;

    explicit temp_file(const std::string& bytes)
    {
        std::string pattern = (fs::temp_directory_path() / "fxd-util-test-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        dir = pattern;
        path = dir / "data.bin";
        std::ofstream(path, std::ios::binary) << bytes;
    }
    ~temp_file()
    {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

std::string patterned(std::size_t n)
{
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 7 + (i >> 10)) & 0xFF);
    return s;
}

// FIPS 180-2 test vectors.
constexpr std::string_view sha_of_empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view sha_of_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr std::string_view sha_of_two_blocks = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr std::string_view two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

} // namespace

BOOST_AUTO_TEST_SUITE(util_unique_fd)

BOOST_AUTO_TEST_CASE(closes_what_it_owns_and_nothing_else, *utf::timeout(10))
{
    int raw = -1;
    {
        const util::unique_fd fd(open_null());
        raw = fd.get();
        BOOST_TEST(static_cast<bool>(fd));
        BOOST_TEST(is_open(raw));
    }
    BOOST_TEST(!is_open(raw));

    util::unique_fd kept(open_null());
    raw = kept.release();
    BOOST_TEST(!kept);
    BOOST_TEST(is_open(raw));
    ::close(raw);

    const util::unique_fd empty;
    BOOST_TEST(empty.get() == -1);
}

BOOST_AUTO_TEST_CASE(reset_move_and_close_pass_ownership_on, *utf::timeout(10))
{
    util::unique_fd a(open_null());
    const int first = a.get();
    a.reset(open_null());
    BOOST_TEST((!is_open(first) || a.get() == first)); // the kernel may hand the number out again
    const int second = a.get();

    util::unique_fd b(std::move(a));
    BOOST_TEST(!a);
    BOOST_TEST(b.get() == second);

    util::unique_fd c(open_null());
    const int third = c.get();
    c = std::move(b);
    BOOST_TEST(c.get() == second);
    BOOST_TEST((!is_open(third) || third == second));

    c = std::move(c); // self-move keeps the descriptor
    BOOST_TEST(c.get() == second);
    BOOST_TEST(is_open(second));

    BOOST_TEST(c.close() == 0);
    BOOST_TEST(!c);
    BOOST_TEST(!is_open(second));
    BOOST_TEST(c.close() == 0); // nothing left to close
}

BOOST_AUTO_TEST_CASE(the_open_file_limit_is_raised_to_the_hard_limit, *utf::timeout(10))
{
    const std::uint64_t granted = util::raise_nofile_limit();
    rlimit now{};
    BOOST_REQUIRE_EQUAL(::getrlimit(RLIMIT_NOFILE, &now), 0);
    BOOST_TEST(now.rlim_cur == now.rlim_max);
    if (now.rlim_cur == RLIM_INFINITY)
        BOOST_TEST(granted == std::numeric_limits<std::uint64_t>::max());
    else
        BOOST_TEST(granted == static_cast<std::uint64_t>(now.rlim_cur));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(util_hex)

BOOST_AUTO_TEST_CASE(writes_two_lowercase_digits_a_byte, *utf::timeout(10))
{
    const std::array<unsigned char, 6> bytes{0x00, 0x01, 0x0f, 0x10, 0xab, 0xff};
    BOOST_TEST(util::to_hex(bytes) == "00010f10abff");
    BOOST_TEST(util::to_hex({}) == "");
    std::string out = "x=";
    util::append_hex(out, static_cast<unsigned char>(0x7e));
    util::append_hex(out, bytes);
    BOOST_TEST(out == "x=7e00010f10abff");
    for (int b = 0; b < 256; ++b) {
        std::string one;
        util::append_hex(one, static_cast<unsigned char>(b));
        BOOST_TEST(std::stoi(one, nullptr, 16) == b);
        BOOST_TEST(util::is_lower_hex(one));
    }
}

BOOST_AUTO_TEST_CASE(recognises_lowercase_hex_only, *utf::timeout(10))
{
    BOOST_TEST(util::is_lower_hex(""));
    BOOST_TEST(util::is_lower_hex("0123456789abcdef"));
    BOOST_TEST(!util::is_lower_hex("ABCDEF"));
    BOOST_TEST(!util::is_lower_hex("abcg"));
    BOOST_TEST(!util::is_lower_hex(" 00"));
    BOOST_TEST(!util::is_lower_hex(std::string_view("00\0", 3)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(util_sha256)

BOOST_AUTO_TEST_CASE(matches_the_standard_vectors, *utf::timeout(10))
{
    BOOST_TEST(util::sha256_hex("") == sha_of_empty);
    BOOST_TEST(util::sha256_hex("abc") == sha_of_abc);
    BOOST_TEST(util::sha256_hex(two_blocks) == sha_of_two_blocks);
}

BOOST_AUTO_TEST_CASE(resumable_state_saved_and_restored_continues_the_digest, *utf::timeout(10))
{
    // Bytes that are not all alike, three 64-byte blocks and a tail.
    std::string data;
    for (int i = 0; i < 200; ++i)
        data += static_cast<char>(i * 37 + 11);
    const std::string whole = util::sha256_hex(data);

    util::resumable_sha256 first;
    first.update(std::span<const char>(data.data(), 128));
    BOOST_TEST(first.bytes_hashed() == 128u);
    const std::string saved = first.save();
    BOOST_TEST(saved.starts_with("128:"));

    // Another process picks it up from the text alone.
    auto second = util::resumable_sha256::restore(saved);
    BOOST_TEST(second.bytes_hashed() == 128u);
    second.update(std::span<const char>(data.data() + 128, data.size() - 128));
    BOOST_TEST(second.finish_hex() == whole);

    util::resumable_sha256 empty;
    BOOST_TEST(util::resumable_sha256::restore(empty.save()).finish_hex() == sha_of_empty);
}

BOOST_AUTO_TEST_CASE(resumable_state_refuses_what_it_cannot_save_or_read, *utf::timeout(10))
{
    util::resumable_sha256 h;
    h.update(std::string_view("abc"));
    BOOST_CHECK_THROW(h.save(), std::logic_error); // mid-block
    for (const std::string& bad : std::vector<std::string>{"", "12", "64:", "63:" + std::string(64, 'a'), "64:" + std::string(63, 'a'),
                                       "x:" + std::string(64, 'a'), "64:" + std::string(64, 'g'),
                                       "-64:" + std::string(64, 'a')})
        BOOST_CHECK_THROW(util::resumable_sha256::restore(bad), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(pieces_hash_like_the_whole_and_raw_matches_hex, *utf::timeout(10))
{
    util::sha256 pieces;
    for (const char c : two_blocks)
        pieces.update(std::string_view(&c, 1));
    const auto raw = pieces.finish();
    BOOST_TEST(util::to_hex(raw) == sha_of_two_blocks);

    util::sha256 spans;
    spans.update(std::span<const char>(two_blocks.data(), 10));
    spans.update(std::string(two_blocks.substr(10)));
    BOOST_TEST(spans.finish_hex() == sha_of_two_blocks);
}

BOOST_AUTO_TEST_CASE(a_finished_hash_is_spent, *utf::timeout(10))
{
    util::sha256 h;
    h.update(std::string_view("abc"));
    BOOST_TEST(h.finish_hex() == sha_of_abc);
    BOOST_CHECK_THROW(h.finish(), std::runtime_error);
    BOOST_CHECK_THROW(h.update(std::string_view("more")), std::runtime_error);

    util::sha256 moved_from;
    util::sha256 moved = std::move(moved_from);
    moved.update(std::string_view("abc"));
    BOOST_TEST(moved.finish_hex() == sha_of_abc);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(util_hash_file)

BOOST_AUTO_TEST_CASE(hashes_exactly_the_bytes_asked_for, *utf::timeout(30))
{
    const std::string content = patterned(3 * (1 << 20) + 12345); // several reads
    const temp_file file(content);
    const util::unique_fd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    for (const std::size_t length : {std::size_t{0}, std::size_t{3}, std::size_t{1 << 20}, content.size()}) {
        util::sha256 h;
        util::hash_file(fd.get(), length, h);
        BOOST_TEST(h.finish_hex() == util::sha256_hex(std::string_view(content).substr(0, length)), length);
    }
    BOOST_TEST(::lseek(fd.get(), 0, SEEK_CUR) == 0); // pread: the file offset is the caller's
    BOOST_TEST(util::sha256_file(fd.get()) == util::sha256_hex(content));
    BOOST_TEST(util::sha256_file(file.path) == util::sha256_hex(content));
}

BOOST_AUTO_TEST_CASE(a_file_shorter_than_asked_is_an_error_not_a_shorter_digest, *utf::timeout(10))
{
    const temp_file file("abc");
    const util::unique_fd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    util::sha256 h;
    BOOST_CHECK_EXCEPTION(util::hash_file(fd.get(), 4, h), util::file_too_short, [](const util::file_too_short& e) {
        return std::string(e.what()).find("after 3 of the 4 bytes") != std::string::npos;
    });
    util::sha256 exact;
    util::hash_file(fd.get(), 3, exact);
    BOOST_TEST(exact.finish_hex() == sha_of_abc);
}

BOOST_AUTO_TEST_CASE(progress_counts_up_to_the_length, *utf::timeout(30))
{
    const std::string content = patterned(2 * (1 << 20) + 5);
    const temp_file file(content);
    std::vector<std::uint64_t> seen;
    const auto sha = util::sha256_file(file.path, [&](std::uint64_t done, std::uint64_t total) {
        BOOST_TEST(total == content.size());
        seen.push_back(done);
    });
    BOOST_TEST(sha == util::sha256_hex(content));
    BOOST_REQUIRE(!seen.empty());
    BOOST_TEST(std::is_sorted(seen.begin(), seen.end()));
    BOOST_TEST(seen.back() == content.size());
}

BOOST_AUTO_TEST_CASE(a_missing_file_or_a_bad_descriptor_throws, *utf::timeout(10))
{
    BOOST_CHECK_THROW(util::sha256_file(fs::path("/nonexistent/fxd/file")), std::system_error);
    util::sha256 h;
    BOOST_CHECK_THROW(util::hash_file(-1, 1, h), std::system_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(util_trailing_hash)

namespace {

/// Appends `content` to fd in pieces whose sizes cycle through odd values,
/// telling the hash after each one, with a pause now and then so the pool
/// sometimes catches up and sometimes lags.
void write_in_pieces(int fd, std::string_view content, util::trailing_hash& hash, std::uint64_t already = 0)
{
    constexpr std::array<std::size_t, 7> sizes{1, 4095, 4097, 65536, 300001, 3, 2 << 20};
    std::size_t at = 0;
    for (std::size_t i = 0; at < content.size(); ++i) {
        const std::size_t n = std::min(sizes[i % sizes.size()], content.size() - at);
        BOOST_REQUIRE(::write(fd, content.data() + at, n) == static_cast<ssize_t>(n));
        at += n;
        hash.written(already + at);
        if (i % 16 == 15)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(hashes_every_byte_written_in_pieces_of_any_size, *utf::timeout(60))
{
    // Past one turn of a pool thread (32 MiB) and many write-back steps.
    const std::string content = patterned(41 * (1 << 20) + 4321);
    const temp_file file("");
    const util::unique_fd fd(::open(file.path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    util::trailing_hash_pool pool(2);
    auto hash = pool.follow(fd.get(), 0);
    write_in_pieces(fd.get(), content, hash);
    BOOST_TEST(hash.finish_hex(content.size()) == util::sha256_hex(content));
    BOOST_CHECK_THROW(hash.finish_hex(content.size()), std::logic_error);
}

BOOST_AUTO_TEST_CASE(a_resumed_file_hashes_the_bytes_already_there_first, *utf::timeout(60))
{
    const std::string content = patterned(12 * (1 << 20) + 77);
    const std::size_t present = 5 * (1 << 20) + 3;
    const temp_file file(content.substr(0, present));
    const util::unique_fd fd(::open(file.path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    util::trailing_hash_pool pool(1);
    auto hash = pool.follow(fd.get(), present);
    write_in_pieces(fd.get(), std::string_view(content).substr(present), hash, present);
    BOOST_TEST(hash.finish_hex(content.size()) == util::sha256_hex(content));
}

BOOST_AUTO_TEST_CASE(files_share_one_thread_and_a_dropped_one_stops_nobody, *utf::timeout(60))
{
    const std::string a = patterned(9 * (1 << 20) + 1);
    const std::string b = a.substr(1) + "b";
    const temp_file fa(""), fb(""), fc("");
    const util::unique_fd da(::open(fa.path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    const util::unique_fd db(::open(fb.path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    const util::unique_fd dc(::open(fc.path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    BOOST_REQUIRE(da);
    BOOST_REQUIRE(db);
    BOOST_REQUIRE(dc);
    util::trailing_hash_pool pool(1);
    auto ha = pool.follow(da.get(), 0);
    auto hb = pool.follow(db.get(), 0);
    {
        auto dropped = pool.follow(dc.get(), 0);
        write_in_pieces(dc.get(), a, dropped); // never finished: cancelled when it goes
    }
    for (std::size_t at = 0; at < a.size(); at += 1 << 20) {
        const std::size_t n = std::min<std::size_t>(1 << 20, a.size() - at);
        BOOST_REQUIRE(::write(da.get(), a.data() + at, n) == static_cast<ssize_t>(n));
        ha.written(at + n);
        BOOST_REQUIRE(::write(db.get(), b.data() + at, n) == static_cast<ssize_t>(n));
        hb.written(at + n);
    }
    BOOST_TEST(hb.finish_hex(b.size()) == util::sha256_hex(b));
    BOOST_TEST(ha.finish_hex(a.size()) == util::sha256_hex(a));
}

BOOST_AUTO_TEST_CASE(finish_hashes_what_a_stopped_pool_left, *utf::timeout(60))
{
    const std::string content = patterned(20 * (1 << 20) + 9);
    const temp_file file("");
    const util::unique_fd fd(::open(file.path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    auto pool = std::make_unique<util::trailing_hash_pool>(2);
    auto hash = pool->follow(fd.get(), 0);
    write_in_pieces(fd.get(), content, hash);
    pool.reset();
    BOOST_TEST(hash.finish_hex(content.size()) == util::sha256_hex(content));
}

BOOST_AUTO_TEST_CASE(a_file_shorter_than_the_bytes_to_hash_is_an_error, *utf::timeout(30))
{
    const std::string content = patterned(3 * (1 << 20));
    const temp_file file(content);
    const util::unique_fd fd(::open(file.path.c_str(), O_RDWR | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    util::trailing_hash_pool pool(1);
    auto hash = pool.follow(fd.get(), content.size());
    BOOST_CHECK_THROW(hash.finish_hex(content.size() + 10), util::file_too_short);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(util_time_and_net)

BOOST_AUTO_TEST_CASE(unix_now_is_the_wall_clock_in_seconds, *utf::timeout(10))
{
    const auto before = static_cast<std::int64_t>(std::time(nullptr));
    const auto now = util::unix_now();
    const auto after = static_cast<std::int64_t>(std::time(nullptr));
    BOOST_TEST(before <= now);
    BOOST_TEST(now <= after);
}

BOOST_AUTO_TEST_CASE(resolves_numeric_addresses_with_their_port, *utf::timeout(10))
{
    const auto v4 = util::resolve("127.0.0.1", 7070, SOCK_STREAM);
    BOOST_REQUIRE(!v4.empty());
    BOOST_TEST(v4.front().family == AF_INET);
    BOOST_TEST(v4.front().socktype == SOCK_STREAM);
    BOOST_REQUIRE_EQUAL(v4.front().length, sizeof(sockaddr_in));
    const auto* in = reinterpret_cast<const sockaddr_in*>(v4.front().address());
    BOOST_TEST(ntohs(in->sin_port) == 7070);
    BOOST_TEST(ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK);

    const auto v6 = util::resolve("::1", 53, SOCK_DGRAM);
    BOOST_REQUIRE(!v6.empty());
    BOOST_TEST(v6.front().family == AF_INET6);
    BOOST_TEST(ntohs(reinterpret_cast<const sockaddr_in6*>(v6.front().address())->sin6_port) == 53);
}

BOOST_AUTO_TEST_CASE(a_refused_lookup_says_which_name, *utf::timeout(10))
{
    // An unknown socket type fails inside getaddrinfo without asking a DNS server.
    BOOST_CHECK_EXCEPTION(util::resolve("127.0.0.1", 1, 12345), util::resolve_error, [](const util::resolve_error& e) {
        return std::string(e.what()).starts_with("cannot resolve 127.0.0.1: ");
    });
}

BOOST_AUTO_TEST_SUITE_END()
