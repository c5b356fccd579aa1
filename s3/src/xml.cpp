#include "fxd/s3/xml.hpp"

#include <charconv>
#include <memory>
#include <limits>

#include <expat.h>

namespace fxd::s3 {
namespace {

constexpr std::size_t max_depth = 64;

// Builds the tree from expat's callbacks; `open` is the path from the root to
// the element being read.
struct builder {
    xml_element root;
    std::vector<xml_element*> open;
    bool too_deep = false;
    bool has_root = false;
};

void on_start(void* user, const XML_Char* name, const XML_Char** /*attributes*/) {
    auto& b = *static_cast<builder*>(user);
    if (b.open.size() >= max_depth) {
        b.too_deep = true;
        return;
    }
    if (b.open.empty()) {
        b.root.name = name;
        b.has_root = true;
        b.open.push_back(&b.root);
        return;
    }
    auto& parent = *b.open.back();
    parent.children.push_back(xml_element{name, {}, {}});
    b.open.push_back(&parent.children.back());
}

void on_end(void* user, const XML_Char* /*name*/) {
    auto& b = *static_cast<builder*>(user);
    if (!b.too_deep && !b.open.empty()) b.open.pop_back();
}

void on_text(void* user, const XML_Char* text, int length) {
    auto& b = *static_cast<builder*>(user);
    if (!b.too_deep && !b.open.empty()) b.open.back()->text.append(text, static_cast<std::size_t>(length));
}

struct parser_deleter {
    void operator()(XML_Parser p) const noexcept { XML_ParserFree(p); }
};

std::uint64_t to_u64(const std::string& text, std::string_view what) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
        throw xml_error(std::string(what) + " is not a number: '" + text + "'");
    }
    return value;
}

int to_int(const std::string& text, std::string_view what) {
    const std::uint64_t value = to_u64(text, what);
    if (value > static_cast<std::uint64_t>(std::numeric_limits<int>::max())) {
        throw xml_error(std::string(what) + " is out of range: " + text);
    }
    return static_cast<int>(value);
}

bool to_bool(const std::string& text, std::string_view what) {
    if (text == "true") return true;
    if (text == "false" || text.empty()) return false;
    throw xml_error(std::string(what) + " is not true or false: '" + text + "'");
}

xml_element parse_root(std::string_view document, std::string_view expected_root) {
    xml_element root = parse_xml(document);
    if (root.name == "Error") {
        const error_body e{root.optional("Code"), root.optional("Message"), root.optional("RequestId"),
                           root.optional("Resource")};
        throw xml_error("S3 error " + e.code + ": " + e.message);
    }
    if (root.name != expected_root) {
        throw xml_error("expected <" + std::string(expected_root) + ">, got <" + root.name + ">");
    }
    return root;
}

} // namespace

const xml_element* xml_element::child(std::string_view child_name) const {
    for (const auto& c : children) {
        if (c.name == child_name) return &c;
    }
    return nullptr;
}

const std::string& xml_element::required(std::string_view child_name) const {
    const xml_element* c = child(child_name);
    if (c == nullptr) throw xml_error("<" + name + "> has no <" + std::string(child_name) + ">");
    return c->text;
}

std::string xml_element::optional(std::string_view child_name) const {
    const xml_element* c = child(child_name);
    return c == nullptr ? std::string{} : c->text;
}

xml_element parse_xml(std::string_view document) {
    if (document.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw xml_error("XML document too large");
    }
    const std::unique_ptr<XML_ParserStruct, parser_deleter> parser(XML_ParserCreate("UTF-8"));
    if (!parser) throw xml_error("cannot create an XML parser");
    builder b;
    XML_SetUserData(parser.get(), &b);
    XML_SetElementHandler(parser.get(), on_start, on_end);
    XML_SetCharacterDataHandler(parser.get(), on_text);
    if (XML_Parse(parser.get(), document.data(), static_cast<int>(document.size()), XML_TRUE) != XML_STATUS_OK) {
        throw xml_error("malformed XML at line " + std::to_string(XML_GetCurrentLineNumber(parser.get())) + ": " +
                        XML_ErrorString(XML_GetErrorCode(parser.get())));
    }
    if (b.too_deep) throw xml_error("XML nested deeper than " + std::to_string(max_depth) + " levels");
    if (!b.has_root) throw xml_error("XML document has no element");
    return std::move(b.root);
}

std::optional<error_body> parse_error_body(std::string_view document) {
    try {
        const xml_element root = parse_xml(document);
        if (root.name != "Error") return std::nullopt;
        return error_body{root.optional("Code"), root.optional("Message"), root.optional("RequestId"),
                          root.optional("Resource")};
    } catch (const xml_error&) {
        return std::nullopt;
    }
}

list_objects_result parse_list_objects(std::string_view document) {
    const xml_element root = parse_root(document, "ListBucketResult");
    list_objects_result out;
    for (const auto& c : root.children) {
        if (c.name == "Contents") {
            out.objects.push_back(object_entry{c.required("Key"), to_u64(c.required("Size"), "Size"),
                                               c.optional("ETag"), c.optional("LastModified")});
        } else if (c.name == "CommonPrefixes") {
            out.common_prefixes.push_back(c.required("Prefix"));
        }
    }
    out.is_truncated = to_bool(root.optional("IsTruncated"), "IsTruncated");
    out.next_continuation_token = root.optional("NextContinuationToken");
    if (out.is_truncated && out.next_continuation_token.empty()) {
        throw xml_error("a truncated <ListBucketResult> without <NextContinuationToken>");
    }
    return out;
}

std::string parse_initiate_multipart(std::string_view document) {
    const xml_element root = parse_root(document, "InitiateMultipartUploadResult");
    const std::string& id = root.required("UploadId");
    if (id.empty()) throw xml_error("<UploadId> is empty");
    return id;
}

std::string parse_complete_multipart(std::string_view document) {
    const xml_element root = parse_root(document, "CompleteMultipartUploadResult");
    return root.optional("ETag");
}

list_uploads_result parse_list_uploads(std::string_view document) {
    const xml_element root = parse_root(document, "ListMultipartUploadsResult");
    list_uploads_result out;
    for (const auto& c : root.children) {
        if (c.name == "Upload") {
            out.uploads.push_back(upload_entry{c.required("Key"), c.required("UploadId"), c.optional("Initiated")});
        }
    }
    out.is_truncated = to_bool(root.optional("IsTruncated"), "IsTruncated");
    out.next_key_marker = root.optional("NextKeyMarker");
    out.next_upload_id_marker = root.optional("NextUploadIdMarker");
    return out;
}

list_parts_result parse_list_parts(std::string_view document) {
    const xml_element root = parse_root(document, "ListPartsResult");
    list_parts_result out;
    for (const auto& c : root.children) {
        if (c.name == "Part") {
            out.parts.push_back(part_entry{to_int(c.required("PartNumber"), "PartNumber"), c.required("ETag"),
                                           to_u64(c.required("Size"), "Size")});
        }
    }
    out.is_truncated = to_bool(root.optional("IsTruncated"), "IsTruncated");
    const std::string marker = root.optional("NextPartNumberMarker");
    out.next_part_number_marker = marker.empty() ? 0 : to_int(marker, "NextPartNumberMarker");
    return out;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string complete_multipart_body(const std::vector<part_entry>& parts) {
    std::string out = "<CompleteMultipartUpload>";
    for (const auto& p : parts) {
        out += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>" + xml_escape(p.etag) +
               "</ETag></Part>";
    }
    out += "</CompleteMultipartUpload>";
    return out;
}

} // namespace fxd::s3
