#pragma once
/// AWS Signature Version 4 for requests signed in the Authorization header: pure
/// functions (no I/O), each step separately so that the tests can hold every one
/// against AWS's published values.

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fxd/s3/credentials.hpp"

namespace fxd::s3::sigv4 {

/// The payload hash S3 accepts when the body is not part of the signature.
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";
/// SHA-256 of no bytes: the payload hash of a request without a body.
inline constexpr std::string_view empty_payload_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

using key_value = std::pair<std::string, std::string>;

/// What is signed. Strings are raw (not yet percent-encoded): the path is
/// encoded segment by segment here, query keys and values one by one.
struct request {
    std::string_view method;
    std::string_view path = "/";
    std::vector<key_value> query;   // any order; sorted when canonicalised
    std::vector<key_value> headers; // every header to sign, host and x-amz-date included
    std::string_view payload_hash;  // hex SHA-256 of the body, or unsigned_payload
};

/// RFC 3986 percent-encoding as S3 wants it: A-Z a-z 0-9 - _ . ~ stay, every other
/// byte becomes %XX (upper-case hex); '/' stays too when keep_slash (paths).
std::string uri_encode(std::string_view raw, bool keep_slash);

/// The path with each segment encoded once, '/' kept ("" becomes "/").
std::string canonical_uri(std::string_view path);
/// Keys and values encoded, then sorted by key, then value; "k=v" joined by '&'.
std::string canonical_query(const std::vector<key_value>& query);

struct canonical_result {
    std::string request;        // the canonical request
    std::string signed_headers; // "host;x-amz-date;..."
};
/// Header names lower-cased and sorted, values trimmed with inner runs of spaces
/// collapsed, repeated names joined with ',' in their order.
canonical_result canonical_request(const request& r);

/// "20150830/us-east-1/s3/aws4_request" from an x-amz-date ("20150830T123600Z").
std::string credential_scope(std::string_view amz_date, std::string_view region, std::string_view service);

std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);

using key_bytes = std::array<unsigned char, 32>;
/// HMAC-SHA256 chain: "AWS4"+secret, date, region, service, "aws4_request".
key_bytes signing_key(std::string_view secret, std::string_view date8, std::string_view region,
                      std::string_view service);

/// Hex HMAC-SHA256 of the string to sign under the signing key.
std::string signature(const key_bytes& key, std::string_view string_to_sign);

/// "AWS4-HMAC-SHA256 Credential=AK/scope, SignedHeaders=..., Signature=..."
std::string authorization(std::string_view access_key_id, std::string_view scope,
                          std::string_view signed_headers, std::string_view signature_hex);

/// The whole chain: the Authorization header's value for r, signed at amz_date.
std::string sign(const request& r, const credentials& creds, std::string_view region, std::string_view service,
                 std::string_view amz_date);

/// The x-amz-date form of a time: "YYYYMMDDTHHMMSSZ" in UTC.
std::string amz_date(std::chrono::system_clock::time_point when);

/// Hex HMAC-SHA256 and SHA-256, exposed for the tests.
key_bytes hmac_sha256(std::string_view key, std::string_view data);

} // namespace fxd::s3::sigv4
