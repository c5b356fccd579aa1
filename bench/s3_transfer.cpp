// s3_transfer: uploads SIZE MiB through fxd::s3::client (a multipart upload of
// PART MiB parts, one after another, as one fxd upload would), downloads it
// (one streamed GET), and prints both rates. bench/s3_compare.sh runs it beside
// s3cmd against the same gateway. Keys from S3_ACCESS_KEY / S3_SECRET_KEY.
//   s3_transfer ENDPOINT BUCKET SIZE_MIB [PART_MIB]
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "fxd/s3/client.hpp"

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

double mib_per_s(std::uint64_t bytes, steady::duration took) {
    return static_cast<double>(bytes) / (1024.0 * 1024.0) / std::chrono::duration<double>(took).count();
}

asio::awaitable<void> measure(fxd::s3::client& s3, std::string bucket, std::uint64_t size, std::size_t part_bytes) {
    const std::string key = "s3-transfer-" + std::to_string(size);
    // One part's worth of pseudo-random bytes, reused for every part: the
    // client is measured, not the generator.
    std::string part(part_bytes, '\0');
    std::mt19937_64 gen(42);
    for (auto& c : part) c = static_cast<char>(gen());

    try {
        co_await s3.create_bucket(bucket);
    } catch (const fxd::s3::error& e) {
        if (e.code() != "BucketAlreadyOwnedByYou" && e.code() != "BucketAlreadyExists") throw;
    }

    auto start = steady::now();
    const std::string id = co_await s3.create_multipart_upload(bucket, key);
    std::vector<fxd::s3::completed_part> parts;
    for (std::uint64_t done = 0; done < size;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(part_bytes, size - done));
        const int number = static_cast<int>(parts.size()) + 1;
        std::string etag = co_await s3.upload_part(bucket, key, id, number, std::string_view(part).substr(0, n));
        parts.push_back({number, std::move(etag), n});
        done += n;
    }
    co_await s3.complete_multipart_upload(bucket, key, id, parts);
    const auto upload = steady::now() - start;

    start = steady::now();
    auto stream = co_await s3.get_object(bucket, key);
    std::vector<char> buffer(256 * 1024);
    std::uint64_t got = 0;
    for (;;) {
        const std::size_t n = co_await stream.read_some(buffer);
        if (n == 0) break;
        got += n;
    }
    const auto download = steady::now() - start;
    if (got != size) throw std::runtime_error("downloaded " + std::to_string(got) + " bytes, not " + std::to_string(size));
    co_await s3.delete_object(bucket, key);

    std::cout << "fxd_s3 upload_mib_s=" << mib_per_s(size, upload) << " download_mib_s=" << mib_per_s(size, download)
              << " bytes=" << size << " part_mib=" << part_bytes / (1024 * 1024) << "\n";
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: s3_transfer ENDPOINT BUCKET SIZE_MIB [PART_MIB]  (keys: S3_ACCESS_KEY, S3_SECRET_KEY)\n";
        return 2;
    }
    const char* access = std::getenv("S3_ACCESS_KEY");
    const char* secret = std::getenv("S3_SECRET_KEY");
    if (access == nullptr || secret == nullptr) {
        std::cerr << "s3_transfer: set S3_ACCESS_KEY and S3_SECRET_KEY\n";
        return 2;
    }
    const std::uint64_t size = std::stoull(argv[3]) * 1024 * 1024;
    const std::size_t part = (argc > 4 ? std::stoul(argv[4]) : 16) * 1024 * 1024;
    asio::io_context io;
    fxd::s3::client_options options;
    options.endpoint = argv[1];
    options.request_timeout = std::chrono::seconds(120);
    fxd::s3::client s3(io.get_executor(), options, {access, secret, ""});
    int status = 0;
    asio::co_spawn(io, measure(s3, argv[2], size, part), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::cerr << "s3_transfer: " << x.what() << "\n";
            status = 1;
        }
    });
    io.run();
    return status;
}
