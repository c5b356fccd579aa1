#include <boost/test/unit_test.hpp>

#include "fxd/s3/xml.hpp"

using namespace fxd::s3;

namespace {

template <class F> void expect_xml_error(F&& f, std::string_view part) {
    try {
        f();
        BOOST_ERROR("no xml_error; expected one containing: " << part);
    } catch (const xml_error& e) {
        BOOST_TEST(std::string(e.what()).find(part) != std::string::npos, e.what() << " lacks " << part);
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(s3_xml)

BOOST_AUTO_TEST_CASE(error_body) {
    const auto e = parse_error_body("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
                                    "<Message>The request signature we calculated does not match</Message>"
                                    "<RequestId>tx1</RequestId><Resource>/b/k</Resource></Error>");
    BOOST_REQUIRE(e.has_value());
    BOOST_TEST(e->code == "SignatureDoesNotMatch");
    BOOST_TEST(e->message == "The request signature we calculated does not match");
    BOOST_TEST(e->request_id == "tx1");
    BOOST_TEST(e->resource == "/b/k");
    BOOST_TEST(!parse_error_body("<ListBucketResult/>").has_value());
    BOOST_TEST(!parse_error_body("not xml").has_value());
    BOOST_TEST(!parse_error_body("").has_value());
}

BOOST_AUTO_TEST_CASE(list_objects_v2_with_entities_and_namespace) {
    const auto r = parse_list_objects(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix>"
        "<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>tok+/=</NextContinuationToken>"
        "<Contents><Key>p/a&amp;b</Key><LastModified>2026-11-28T17:00:00.000Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>p/\xC3\xA9</Key><Size>0</Size></Contents>"
        "<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes></ListBucketResult>");
    BOOST_TEST(r.is_truncated);
    BOOST_TEST(r.next_continuation_token == "tok+/=");
    BOOST_REQUIRE(r.objects.size() == 2U);
    BOOST_TEST(r.objects[0].key == "p/a&b");
    BOOST_TEST(r.objects[0].etag == "\"abc\"");
    BOOST_TEST(r.objects[0].size == 12U);
    BOOST_TEST(r.objects[0].last_modified == "2026-11-28T17:00:00.000Z");
    BOOST_TEST(r.objects[1].key == "p/\xC3\xA9");
    BOOST_REQUIRE(r.common_prefixes.size() == 1U);
    BOOST_TEST(r.common_prefixes[0] == "p/d/");
}

BOOST_AUTO_TEST_CASE(strictness) {
    expect_xml_error([] { parse_list_objects("<ListBucketResult><Contents><Key>a</Key></Contents>"); },
                     "malformed XML at line 1");
    expect_xml_error([] { parse_list_objects("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"); },
                     "<Contents> has no <Key>");
    expect_xml_error(
        [] { parse_list_objects("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>"); },
        "Size is not a number: '-1'");
    expect_xml_error([] { parse_list_objects("<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>"); },
                     "IsTruncated is not true or false");
    expect_xml_error([] { parse_list_objects("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"); },
                     "without <NextContinuationToken>");
    expect_xml_error([] { parse_list_objects("<Other/>"); }, "expected <ListBucketResult>, got <Other>");
    expect_xml_error([] { parse_initiate_multipart("<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>"); },
                     "S3 error NoSuchBucket: m");
    expect_xml_error([] { parse_xml(""); }, "malformed XML");
    expect_xml_error([] { parse_xml("<a></b>"); }, "mismatched tag");
    std::string deep;
    for (int i = 0; i < 70; ++i) deep += "<a>";
    for (int i = 0; i < 70; ++i) deep += "</a>";
    expect_xml_error([&] { parse_xml(deep); }, "deeper than 64");
    // An entity declaration (the billion-laughs shape) is refused by expat's own
    // amplification limit or parsed harmlessly; it must not crash or hang.
    try {
        parse_xml("<!DOCTYPE a [<!ENTITY x \"xxxxxxxxxx\"><!ENTITY y \"&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;\">]><a>&y;</a>");
    } catch (const xml_error&) {
    }
}

BOOST_AUTO_TEST_CASE(multipart_answers) {
    BOOST_TEST(parse_initiate_multipart("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                                        "<UploadId>2~abc</UploadId></InitiateMultipartUploadResult>") == "2~abc");
    expect_xml_error([] { parse_initiate_multipart("<InitiateMultipartUploadResult><UploadId/></InitiateMultipartUploadResult>"); },
                     "<UploadId> is empty");
    BOOST_TEST(parse_complete_multipart("<CompleteMultipartUploadResult><Location>l</Location><ETag>\"e-3\"</ETag>"
                                        "</CompleteMultipartUploadResult>") == "\"e-3\"");
    expect_xml_error([] { parse_complete_multipart("<Error><Code>InvalidPart</Code><Message>m</Message></Error>"); },
                     "InvalidPart");

    const auto uploads = parse_list_uploads(
        "<ListMultipartUploadsResult><Bucket>b</Bucket><NextKeyMarker>k2</NextKeyMarker>"
        "<NextUploadIdMarker>u2</NextUploadIdMarker><IsTruncated>true</IsTruncated>"
        "<Upload><Key>k1</Key><UploadId>u1</UploadId><Initiated>2026-11-28T17:00:00.000Z</Initiated></Upload>"
        "<Upload><Key>k2</Key><UploadId>u2</UploadId><Initiated>2026-11-28T17:01:00.000Z</Initiated></Upload>"
        "</ListMultipartUploadsResult>");
    BOOST_REQUIRE(uploads.uploads.size() == 2U);
    BOOST_TEST(uploads.uploads[1].upload_id == "u2");
    BOOST_TEST(uploads.uploads[0].initiated == "2026-11-28T17:00:00.000Z");
    BOOST_TEST(uploads.is_truncated);
    BOOST_TEST(uploads.next_key_marker == "k2");
    BOOST_TEST(uploads.next_upload_id_marker == "u2");

    const auto parts = parse_list_parts("<ListPartsResult><IsTruncated>false</IsTruncated>"
                                        "<Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag><Size>5242880</Size></Part>"
                                        "<Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag><Size>7</Size></Part>"
                                        "</ListPartsResult>");
    BOOST_REQUIRE(parts.parts.size() == 2U);
    BOOST_TEST(parts.parts[0].size == 5242880U);
    BOOST_TEST(parts.parts[1].part_number == 2);
    BOOST_TEST(!parts.is_truncated);
    expect_xml_error([] { parse_list_parts("<ListPartsResult><Part><PartNumber>99999999999</PartNumber><ETag>e</ETag>"
                                           "<Size>1</Size></Part></ListPartsResult>"); },
                     "PartNumber is out of range");
}

BOOST_AUTO_TEST_CASE(complete_body_escapes_etags) {
    BOOST_TEST(complete_multipart_body({{1, "\"a\"", 0}, {2, "<b&>", 0}}) ==
               "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
               "<Part><PartNumber>2</PartNumber><ETag>&lt;b&amp;&gt;</ETag></Part></CompleteMultipartUpload>");
    // What the client writes, its own parser reads back.
    const auto root = parse_xml(complete_multipart_body({{3, "<x>", 0}}));
    BOOST_TEST(root.child("Part")->required("ETag") == "<x>");
}

BOOST_AUTO_TEST_SUITE_END()
