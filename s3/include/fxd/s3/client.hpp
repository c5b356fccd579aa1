#pragma once
/// An asynchronous S3 client on a given io_context: C++20 coroutines, HTTP/1.1
/// over plain TCP or TLS, SigV4 in the Authorization header, a bounded pool of
/// keep-alive connections, one deadline per operation, bounded retries with
/// exponential backoff for idempotent requests, S3 XML errors turned into
/// fxd::s3::error. Nothing here blocks the event loop (DNS is asynchronous too).
///
/// One client talks to one endpoint. It must outlive every operation it started
/// and every object_stream it returned. Not thread-safe: use it from one strand
/// (the io_context's thread in fxd).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "fxd/s3/credentials.hpp"
#include "fxd/s3/xml.hpp"

namespace fxd::s3 {

template <class T> using awaitable = boost::asio::awaitable<T>;

struct client_options {
    /// "http://host[:port]" or "https://host[:port]"; no path.
    std::string endpoint;
    std::string region = "us-east-1";
    /// true: http://endpoint/bucket/key; false: http://bucket.endpoint/key.
    bool path_style = true;
    /// PEM file of the CA(s) to trust for https instead of the system's.
    std::string ca_file;
    /// Every operation, retries and backoff included, fails within this. For a
    /// streamed GET it bounds reaching the body, then each pull of the body.
    std::chrono::milliseconds request_timeout{30'000};
    /// Attempts per idempotent request (1 = no retry).
    unsigned max_attempts = 4;
    /// First backoff; doubled after each failed attempt (with jitter).
    std::chrono::milliseconds backoff_base{100};
    /// Idle keep-alive connections kept for reuse; more are closed when released.
    std::size_t max_idle_connections = 8;
    /// Largest non-object response body read (XML listings, errors).
    std::size_t max_response_bytes = 16 * 1024 * 1024;
};

/// Why an operation failed.
enum class error_kind {
    service,   ///< S3 answered with an error status (code and http_status say which)
    timeout,   ///< request_timeout passed
    transport, ///< connecting, TLS or the connection failed
    protocol,  ///< the answer could not be understood (bad XML, a missing header)
};

class error : public std::runtime_error {
public:
    error(error_kind kind, std::string what, int http_status = 0, std::string code = {}, std::string request_id = {});
    error_kind kind() const noexcept { return kind_; }
    /// The HTTP status for service errors, else 0.
    int http_status() const noexcept { return http_status_; }
    /// S3's error code ("NoSuchKey", "SignatureDoesNotMatch"); may be empty (HEAD has no body).
    const std::string& code() const noexcept { return code_; }
    const std::string& request_id() const noexcept { return request_id_; }

private:
    error_kind kind_;
    int http_status_;
    std::string code_;
    std::string request_id_;
};

struct object_head {
    std::uint64_t size = 0;
    std::string etag;
    std::string last_modified;
    std::string content_type;
};

/// A byte range: `length` bytes from `offset`; no length means to the end.
struct byte_range {
    std::uint64_t offset = 0;
    std::optional<std::uint64_t> length;
};

class connection;
class connection_pool;

/// The body of a GET, read from the connection as the caller pulls it, straight
/// into the caller's memory: nothing is read ahead beyond what arrived with the
/// header, so a slow consumer makes the client read slowly (TCP pushes back on
/// the store). Destroying it before the end closes the connection; reading it
/// to the end returns the connection to the pool.
class object_stream {
public:
    /// An empty stream (read_some returns 0).
    object_stream();
    object_stream(object_stream&&) noexcept;
    object_stream& operator=(object_stream&&) noexcept;
    ~object_stream();

    /// Bytes this GET returns (the range's length, or the object's size).
    std::uint64_t content_length() const noexcept { return content_length_; }
    /// The object's whole size (from Content-Range, or Content-Length without a range).
    std::uint64_t object_size() const noexcept { return object_size_; }
    const std::string& etag() const noexcept { return etag_; }
    /// Bytes still to come.
    std::uint64_t remaining() const noexcept { return remaining_; }

    /// Up to into.size() bytes of the body; 0 once it has all been read. Throws
    /// fxd::s3::error (timeout, transport) when the store stops sending.
    awaitable<std::size_t> read_some(std::span<char> into);

private:
    friend class client;
    struct state;
    explicit object_stream(std::unique_ptr<state> s);
    std::unique_ptr<state> state_;
    std::uint64_t content_length_ = 0;
    std::uint64_t object_size_ = 0;
    std::uint64_t remaining_ = 0;
    std::string etag_;
};

/// A part of a multipart upload, as complete_multipart_upload wants it.
using completed_part = part_entry;

class client {
public:
    /// Throws std::invalid_argument for a malformed endpoint, and
    /// std::runtime_error when ca_file cannot be loaded.
    client(boost::asio::any_io_executor executor, client_options options, credentials creds);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    const client_options& options() const noexcept { return options_; }

    awaitable<void> create_bucket(std::string_view bucket);
    awaitable<void> delete_bucket(std::string_view bucket);

    /// body must stay valid until the operation ends. payload_sha256 (hex), when
    /// given, is trusted as the body's hash (computed elsewhere, e.g. off the
    /// loop); else it is computed here. Returns the ETag.
    awaitable<std::string> put_object(std::string_view bucket, std::string_view key, std::string_view body,
                                      std::string_view payload_sha256 = {});
    /// Throws error{service, 404} for a missing object.
    awaitable<object_head> head_object(std::string_view bucket, std::string_view key);
    /// Retries cover reaching the body; once the stream is returned, a failure
    /// of the body surfaces from read_some (ask again from where it stopped).
    awaitable<object_stream> get_object(std::string_view bucket, std::string_view key, byte_range range = {});
    awaitable<void> delete_object(std::string_view bucket, std::string_view key);
    /// One page (up to max_keys); pass the previous page's next_continuation_token.
    awaitable<list_objects_result> list_objects_v2(std::string_view bucket, std::string_view prefix,
                                                   std::string_view continuation_token = {}, int max_keys = 1000);

    /// Returns the upload id.
    awaitable<std::string> create_multipart_upload(std::string_view bucket, std::string_view key);
    /// part_number 1..10000; every part but the last at least 5 MiB. Returns the part's ETag.
    awaitable<std::string> upload_part(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                       int part_number, std::string_view body, std::string_view payload_sha256 = {});
    /// Returns the whole object's ETag, as the answer has it: Ceph 16's gateway
    /// leaves it empty (head_object has it then).
    awaitable<std::string> complete_multipart_upload(std::string_view bucket, std::string_view key,
                                                     std::string_view upload_id,
                                                     const std::vector<completed_part>& parts);
    awaitable<void> abort_multipart_upload(std::string_view bucket, std::string_view key, std::string_view upload_id);
    /// One page of the uploads in progress under prefix, with their initiation times.
    awaitable<list_uploads_result> list_multipart_uploads(std::string_view bucket, std::string_view prefix,
                                                          std::string_view key_marker = {},
                                                          std::string_view upload_id_marker = {});
    /// One page of an upload's stored parts.
    awaitable<list_parts_result> list_parts(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                            int part_number_marker = 0);

    /// Connections now idle in the pool (for the tests).
    std::size_t idle_connections() const noexcept;

private:
    struct http_request;
    struct http_response;
    awaitable<http_response> perform(http_request request);

    client_options options_;
    credentials credentials_;
    std::shared_ptr<connection_pool> pool_;
};

} // namespace fxd::s3
