#include "fxd/s3/sigv4.hpp"

#include <algorithm>
#include <ctime>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fxd/util/hex.hpp"
#include "fxd/util/sha256.hpp"

namespace fxd::s3::sigv4 {
namespace {

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    return out;
}

// Leading and trailing blanks dropped, each inner run of blanks made one space.
std::string trimmed_value(std::string_view v) {
    std::string out;
    bool pending_space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t') {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out += ' ';
        pending_space = false;
        out += c;
    }
    return out;
}

std::string hex(std::span<const unsigned char> bytes) {
    std::string out;
    util::append_hex(out, bytes);
    return out;
}

} // namespace

std::string uri_encode(std::string_view raw, bool keep_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(raw.size());
    for (char ch : raw) {
        const auto c = static_cast<unsigned char>(ch);
        if (unreserved(c) || (keep_slash && c == '/')) {
            out += ch;
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 0xF];
        }
    }
    return out;
}

std::string canonical_uri(std::string_view path) {
    if (path.empty()) return "/";
    return uri_encode(path, true);
}

std::string canonical_query(const std::vector<key_value>& query) {
    std::vector<key_value> encoded;
    encoded.reserve(query.size());
    for (const auto& [k, v] : query) encoded.emplace_back(uri_encode(k, false), uri_encode(v, false));
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [k, v] : encoded) {
        if (!out.empty()) out += '&';
        out += k;
        out += '=';
        out += v;
    }
    return out;
}

canonical_result canonical_request(const request& r) {
    // Names lower-cased; a stable sort keeps repeated names in their order.
    std::vector<key_value> headers;
    headers.reserve(r.headers.size());
    for (const auto& [name, value] : r.headers) headers.emplace_back(lower(name), trimmed_value(value));
    std::stable_sort(headers.begin(), headers.end(),
                     [](const key_value& a, const key_value& b) { return a.first < b.first; });

    std::string canonical_headers;
    std::string signed_headers;
    for (std::size_t i = 0; i < headers.size(); ++i) {
        if (i > 0 && headers[i].first == headers[i - 1].first) {
            canonical_headers.pop_back(); // the '\n' of the previous value
            canonical_headers += ',';
        } else {
            if (!signed_headers.empty()) signed_headers += ';';
            signed_headers += headers[i].first;
            canonical_headers += headers[i].first;
            canonical_headers += ':';
        }
        canonical_headers += headers[i].second;
        canonical_headers += '\n';
    }

    canonical_result out;
    out.request.append(r.method).append("\n");
    out.request.append(canonical_uri(r.path)).append("\n");
    out.request.append(canonical_query(r.query)).append("\n");
    out.request.append(canonical_headers).append("\n");
    out.request.append(signed_headers).append("\n");
    out.request.append(r.payload_hash);
    out.signed_headers = std::move(signed_headers);
    return out;
}

std::string credential_scope(std::string_view amz_date, std::string_view region, std::string_view service) {
    if (amz_date.size() < 8) throw std::invalid_argument("x-amz-date too short: " + std::string(amz_date));
    std::string out(amz_date.substr(0, 8));
    out.append("/").append(region).append("/").append(service).append("/aws4_request");
    return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
    std::string out = "AWS4-HMAC-SHA256\n";
    out.append(amz_date).append("\n").append(scope).append("\n");
    out += util::sha256_hex(canonical_request);
    return out;
}

key_bytes hmac_sha256(std::string_view key, std::string_view data) {
    key_bytes out{};
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
             data.size(), out.data(), &length) == nullptr ||
        length != out.size()) {
        throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
    }
    return out;
}

namespace {
std::string_view as_view(const key_bytes& k) { return {reinterpret_cast<const char*>(k.data()), k.size()}; }
} // namespace

key_bytes signing_key(std::string_view secret, std::string_view date8, std::string_view region,
                      std::string_view service) {
    const std::string first = "AWS4" + std::string(secret);
    const key_bytes date_key = hmac_sha256(first, date8);
    const key_bytes region_key = hmac_sha256(as_view(date_key), region);
    const key_bytes service_key = hmac_sha256(as_view(region_key), service);
    return hmac_sha256(as_view(service_key), "aws4_request");
}

std::string signature(const key_bytes& key, std::string_view string_to_sign) {
    return hex(hmac_sha256(as_view(key), string_to_sign));
}

std::string authorization(std::string_view access_key_id, std::string_view scope, std::string_view signed_headers,
                          std::string_view signature_hex) {
    std::string out = "AWS4-HMAC-SHA256 Credential=";
    out.append(access_key_id).append("/").append(scope);
    out.append(", SignedHeaders=").append(signed_headers);
    out.append(", Signature=").append(signature_hex);
    return out;
}

std::string sign(const request& r, const credentials& creds, std::string_view region, std::string_view service,
                 std::string_view amz_date) {
    const canonical_result canonical = canonical_request(r);
    const std::string scope = credential_scope(amz_date, region, service);
    const std::string to_sign = string_to_sign(amz_date, scope, canonical.request);
    const key_bytes key = signing_key(creds.secret_access_key, amz_date.substr(0, 8), region, service);
    return authorization(creds.access_key_id, scope, canonical.signed_headers, signature(key, to_sign));
}

std::string amz_date(std::chrono::system_clock::time_point when) {
    const std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char buf[32];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &utc);
    return {buf, n};
}

} // namespace fxd::s3::sigv4
