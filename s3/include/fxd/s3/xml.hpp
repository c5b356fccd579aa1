#pragma once
/// The few S3 XML responses the client reads, parsed with expat into a small
/// element tree and then into plain structs. Strict: malformed XML, a different
/// root element or a missing required element throws xml_error.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fxd::s3 {

class xml_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One element: its name (no namespace processing: S3 uses a default namespace
/// only), its text (character data directly inside it) and its child elements.
struct xml_element {
    std::string name;
    std::string text;
    std::vector<xml_element> children;

    /// The first child with this name, or nullptr.
    const xml_element* child(std::string_view child_name) const;
    /// The text of the first child with this name; throws xml_error when there is none.
    const std::string& required(std::string_view child_name) const;
    /// The text of the first child with this name, or "".
    std::string optional(std::string_view child_name) const;
};

/// Parses a whole document (at most 64 levels deep). Throws xml_error naming
/// expat's reason and the line.
xml_element parse_xml(std::string_view document);

/// <Error>: an S3 error body.
struct error_body {
    std::string code;
    std::string message;
    std::string request_id;
    std::string resource;
};
/// nullopt when document is not an <Error> document (or not XML at all).
std::optional<error_body> parse_error_body(std::string_view document);

struct object_entry {
    std::string key;
    std::uint64_t size = 0;
    std::string etag;
    std::string last_modified;
};
/// <ListBucketResult> of ListObjectsV2.
struct list_objects_result {
    std::vector<object_entry> objects;
    std::vector<std::string> common_prefixes;
    bool is_truncated = false;
    std::string next_continuation_token;
};
list_objects_result parse_list_objects(std::string_view document);

/// <InitiateMultipartUploadResult>: the UploadId.
std::string parse_initiate_multipart(std::string_view document);

/// <CompleteMultipartUploadResult>: the ETag of the whole object. S3 may answer
/// 200 and then an <Error> body: that throws xml_error with the error's code.
std::string parse_complete_multipart(std::string_view document);

struct upload_entry {
    std::string key;
    std::string upload_id;
    std::string initiated; // ISO 8601, as the server wrote it
};
/// <ListMultipartUploadsResult>.
struct list_uploads_result {
    std::vector<upload_entry> uploads;
    bool is_truncated = false;
    std::string next_key_marker;
    std::string next_upload_id_marker;
};
list_uploads_result parse_list_uploads(std::string_view document);

struct part_entry {
    int part_number = 0;
    std::string etag;
    std::uint64_t size = 0;
};
/// <ListPartsResult>.
struct list_parts_result {
    std::vector<part_entry> parts;
    bool is_truncated = false;
    int next_part_number_marker = 0;
};
list_parts_result parse_list_parts(std::string_view document);

/// The <CompleteMultipartUpload> request body for these parts (in this order).
std::string complete_multipart_body(const std::vector<part_entry>& parts);

/// Text escaped for XML character data.
std::string xml_escape(std::string_view text);

} // namespace fxd::s3
