#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/udp.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace fxd::protocol {

namespace {

boost::json::parse_options header_options(std::size_t max_depth)
{
    boost::json::parse_options opts;
    opts.max_depth = max_depth;
    return opts; // strict JSON, invalid UTF-8 refused
}

const boost::json::value* find(const request_header& h, std::string_view key) noexcept
{
    return h.fields ? h.fields->if_contains(key) : nullptr;
}

} // namespace

header_parser::header_parser(std::size_t max_depth)
    : arena_(std::in_place, initial_arena_.data(), initial_arena_.size()),
      parser_(boost::json::storage_ptr(), header_options(max_depth), parser_stack_.data(), parser_stack_.size()),
      value_(boost::json::storage_ptr(&*arena_)) // so release() moves the tree in instead of copying it
{
}

bool header_parser::parse(std::string_view json_text, request_header& out, errc& error)
{
    out = request_header{};
    value_ = nullptr; // drop the previous tree (keeping the arena as its storage) before recycling the arena
    arena_.emplace(initial_arena_.data(), initial_arena_.size()); // same address, so value_'s storage stays valid
    parser_.reset(boost::json::storage_ptr(&*arena_));

    boost::system::error_code ec;
    parser_.write(json_text.data(), json_text.size(), ec);
    if (ec) {
        parser_.reset();
        error = errc::bad_header;
        return false;
    }
    value_ = parser_.release();
    const auto* obj = value_.if_object();
    if (!obj) {
        error = errc::bad_header;
        return false;
    }
    out.fields = obj;

    if (const auto* size = obj->if_contains("size")) {
        if (size->is_uint64())
            out.size = size->get_uint64();
        else if (size->is_int64() && size->get_int64() >= 0)
            out.size = static_cast<std::uint64_t>(size->get_int64());
        else {
            error = errc::bad_header;
            return false;
        }
    }
    if (const auto* op = obj->if_contains("op"); op && op->is_string()) {
        out.op_name = op->get_string();
        out.operation = op_from_name(out.op_name);
    }
    if (const auto* id = obj->if_contains("id")) {
        if (id->is_int64() || id->is_uint64() || id->is_string())
            out.id = id;
        else
            out.field_error = errc::bad_request;
    }
    return true;
}

std::optional<std::string_view> string_field(const request_header& h, std::string_view key) noexcept
{
    const auto* v = find(h, key);
    if (!v || !v->is_string())
        return std::nullopt;
    return std::string_view{v->get_string()};
}

std::optional<std::uint64_t> uint_field(const request_header& h, std::string_view key) noexcept
{
    const auto* v = find(h, key);
    if (!v)
        return std::nullopt;
    if (v->is_uint64())
        return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0)
        return static_cast<std::uint64_t>(v->get_int64());
    return std::nullopt;
}

std::optional<std::int64_t> mtime_field(const request_header& h) noexcept
{
    const auto seconds = uint_field(h, "mtime");
    if (!seconds || *seconds > static_cast<std::uint64_t>(max_mtime))
        return std::nullopt;
    return static_cast<std::int64_t>(*seconds);
}

std::uint64_t request_body_length(const request_header& h) noexcept
{
    if (h.operation != op::upload)
        return h.size;
    const auto offset = uint_field(h, "offset").value_or(0);
    return offset <= h.size ? h.size - offset : 0;
}

bool has_field(const request_header& h, std::string_view key) noexcept
{
    return find(h, key) != nullptr;
}

bool is_reply_shaped(const request_header& header) noexcept
{
    return has_field(header, "status");
}

} // namespace fxd::protocol
