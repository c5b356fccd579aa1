#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/header.hpp>
#include <fxd/protocol/udp.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <limits>

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

const header_member* find_member(const request_header& h, std::string_view key) noexcept
{
    for (const auto& m : h.members)
        if (m.key == key)
            return &m;
    return nullptr;
}

/// Reads the flat shape the fast path takes, and nothing else: every
/// `declined` means "not sure", never "invalid", so the caller falls back to
/// Boost.JSON, which gives the verdict.
class flat_scanner {
public:
    explicit flat_scanner(std::string_view text) noexcept : p_(text.data()), end_(text.data() + text.size()) {}

    /// Fills members and returns their count, or nullopt to decline.
    std::optional<std::size_t> read_object(std::span<header_member> members) noexcept
    {
        skip_space();
        if (!take('{'))
            return std::nullopt;
        std::size_t count = 0;
        skip_space();
        if (!take('}')) {
            for (;;) {
                if (count == members.size())
                    return std::nullopt;
                auto& m = members[count];
                skip_space();
                if (!read_string(m.key))
                    return std::nullopt;
                for (std::size_t i = 0; i < count; ++i)
                    if (members[i].key == m.key)
                        return std::nullopt; // which duplicate wins is Boost.JSON's business
                skip_space();
                if (!take(':'))
                    return std::nullopt;
                skip_space();
                if (!read_value(m))
                    return std::nullopt;
                ++count;
                skip_space();
                if (take('}'))
                    break;
                if (!take(','))
                    return std::nullopt;
            }
        }
        skip_space();
        if (p_ != end_)
            return std::nullopt;
        return count;
    }

private:
    static bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
    static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
    /// After a number or literal: what JSON lets follow it inside a flat object.
    bool at_value_end() const noexcept { return p_ != end_ && (is_space(*p_) || *p_ == ',' || *p_ == '}'); }

    void skip_space() noexcept
    {
        while (p_ != end_ && is_space(*p_))
            ++p_;
    }

    bool take(char c) noexcept
    {
        if (p_ == end_ || *p_ != c)
            return false;
        ++p_;
        return true;
    }

    /// Printable ASCII only: no escapes to undo and no UTF-8 to validate, so
    /// the text between the quotes is the value.
    bool read_string(std::string_view& out) noexcept
    {
        if (!take('"'))
            return false;
        const char* begin = p_;
        for (; p_ != end_; ++p_) {
            const char c = *p_;
            if (c == '"') {
                out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
                ++p_;
                return true;
            }
            if (c < 0x20 || c > 0x7e || c == '\\')
                return false;
        }
        return false;
    }

    bool read_literal(std::string_view word) noexcept
    {
        if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
            return false;
        p_ += word.size();
        return at_value_end();
    }

    bool read_value(header_member& m) noexcept
    {
        if (p_ == end_)
            return false;
        if (*p_ == '"') {
            m.type = header_member::kind::string;
            return read_string(m.text);
        }
        if (*p_ == 't' || *p_ == 'f') {
            const bool value = *p_ == 't';
            m.type = header_member::kind::boolean;
            m.number = value ? 1 : 0;
            return read_literal(value ? "true" : "false");
        }
        return read_unsigned(m);
    }

    /// 1 to 19 digits without a leading zero (so it fits in 64 bits, where
    /// Boost.JSON makes it an int64, or a uint64 past INT64_MAX); a sign, a
    /// fraction, an exponent or a 20th digit declines.
    bool read_unsigned(header_member& m) noexcept
    {
        constexpr int max_digits = 19;
        std::uint64_t value = 0;
        int digits = 0;
        for (; p_ != end_ && is_digit(*p_); ++p_, ++digits) {
            if (digits == max_digits)
                return false;
            value = value * 10 + static_cast<std::uint64_t>(*p_ - '0');
        }
        if (digits == 0 || (digits > 1 && value < pow10(digits - 1)))
            return false; // not a number, or a leading zero
        m.type = header_member::kind::number;
        m.number = value;
        return at_value_end();
    }

    static constexpr std::uint64_t pow10(int n) noexcept
    {
        std::uint64_t v = 1;
        while (n-- > 0)
            v *= 10;
        return v;
    }

    const char* p_;
    const char* end_;
};

} // namespace

header_parser::header_parser(std::size_t max_depth)
    : max_depth_(max_depth),
      arena_(std::in_place, initial_arena_.data(), initial_arena_.size()),
      parser_(boost::json::storage_ptr(), header_options(max_depth), parser_stack_.data(), parser_stack_.size()),
      value_(boost::json::storage_ptr(&*arena_)), // so release() moves the tree in instead of copying it
      id_value_(boost::json::storage_ptr(&*arena_))
{
}

void header_parser::recycle_storage() noexcept
{
    // Drop what the previous header left (keeping the arena as the values'
    // storage) before recycling the arena at the same address, so their
    // storage pointers stay valid.
    value_ = nullptr;
    id_value_ = nullptr;
    arena_.emplace(initial_arena_.data(), initial_arena_.size());
}

bool header_parser::parse(std::string_view json_text, request_header& out, errc& error)
{
    out = request_header{};
    recycle_storage();
    switch (scan_flat(json_text, out)) {
    case scan::taken:
        return true;
    case scan::bad_size:
        error = errc::bad_header;
        return false;
    case scan::declined:
        break;
    }
    out = request_header{};
    return parse_tree(json_text, out, error);
}

bool header_parser::parse_general(std::string_view json_text, request_header& out, errc& error)
{
    out = request_header{};
    recycle_storage();
    return parse_tree(json_text, out, error);
}

header_parser::scan header_parser::scan_flat(std::string_view json_text, request_header& out)
{
    // Longer headers carry more than the common shape; a depth of 0 makes
    // Boost.JSON refuse even a flat object.
    constexpr std::size_t max_flat_text = 1024;
    if (max_depth_ == 0 || json_text.size() > max_flat_text)
        return scan::declined;
    // The members view a copy in the arena: the decoder may move its read
    // buffer (to gather a body) while the header is still in use.
    auto* copy = static_cast<char*>(arena_->allocate(json_text.size() + 1, 1));
    std::copy(json_text.begin(), json_text.end(), copy);
    const std::string_view text(copy, json_text.size());

    flat_scanner scanner(text);
    const auto count = scanner.read_object(members_);
    if (!count)
        return scan::declined;
    const std::span<const header_member> members(members_.data(), *count);
    for (const auto& m : members) {
        if (m.key == "size") {
            if (m.type != header_member::kind::number)
                return scan::bad_size;
            out.size = m.number;
        } else if (m.key == "op") {
            if (m.type == header_member::kind::string) {
                out.op_name = m.text;
                out.operation = op_from_name(out.op_name);
            }
        } else if (m.key == "id") {
            if (m.type == header_member::kind::string)
                id_value_.emplace_string().assign(m.text);
            else if (m.type == header_member::kind::boolean)
                out.field_error = errc::bad_request;
            else if (m.number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                id_value_ = m.number; // as Boost.JSON reads it: uint64 only past INT64_MAX
            else
                id_value_ = static_cast<std::int64_t>(m.number);
            if (!out.field_error)
                out.id = &id_value_;
        }
    }
    out.members = members;
    return scan::taken;
}

bool header_parser::parse_tree(std::string_view json_text, request_header& out, errc& error)
{
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
    if (!h.fields) {
        const auto* m = find_member(h, key);
        if (!m || m->type != header_member::kind::string)
            return std::nullopt;
        return m->text;
    }
    const auto* v = find(h, key);
    if (!v || !v->is_string())
        return std::nullopt;
    return std::string_view{v->get_string()};
}

std::optional<std::uint64_t> uint_field(const request_header& h, std::string_view key) noexcept
{
    if (!h.fields) {
        const auto* m = find_member(h, key);
        if (!m || m->type != header_member::kind::number)
            return std::nullopt;
        return m->number;
    }
    const auto* v = find(h, key);
    if (!v)
        return std::nullopt;
    if (v->is_uint64())
        return v->get_uint64();
    if (v->is_int64() && v->get_int64() >= 0)
        return static_cast<std::uint64_t>(v->get_int64());
    return std::nullopt;
}

std::optional<bool> bool_field(const request_header& h, std::string_view key) noexcept
{
    if (!h.fields) {
        const auto* m = find_member(h, key);
        if (!m || m->type != header_member::kind::boolean)
            return std::nullopt;
        return m->number != 0;
    }
    const auto* v = find(h, key);
    if (!v || !v->is_bool())
        return std::nullopt;
    return v->get_bool();
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
    return h.fields ? find(h, key) != nullptr : find_member(h, key) != nullptr;
}

boost::json::object fields_copy(const request_header& h)
{
    if (h.fields)
        return *h.fields;
    boost::json::object copy(h.members.size());
    for (const auto& m : h.members) {
        auto& slot = copy[m.key];
        switch (m.type) {
        case header_member::kind::string: slot = m.text; break;
        case header_member::kind::boolean: slot = m.number != 0; break;
        case header_member::kind::number:
            if (m.number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                slot = m.number;
            else
                slot = static_cast<std::int64_t>(m.number);
            break;
        }
    }
    return copy;
}

bool is_reply_shaped(const request_header& header) noexcept
{
    return has_field(header, "status");
}

bool same_reading(const request_header& a, const request_header& b)
{
    if (a.operation != b.operation || a.op_name != b.op_name || a.size != b.size || a.field_error != b.field_error)
        return false;
    if ((a.id == nullptr) != (b.id == nullptr))
        return false;
    if (a.id && (a.id->kind() != b.id->kind() || *a.id != *b.id))
        return false;
    const auto a_fields = fields_copy(a);
    const auto b_fields = fields_copy(b);
    if (a_fields.size() != b_fields.size())
        return false;
    for (const auto& member : b_fields) {
        const auto key = member.key();
        const auto& value = member.value();
        const auto* other = a_fields.if_contains(key);
        if (!other || other->kind() != value.kind() || *other != value)
            return false;
        if (has_field(a, key) != has_field(b, key) || string_field(a, key) != string_field(b, key) ||
            uint_field(a, key) != uint_field(b, key) || bool_field(a, key) != bool_field(b, key))
            return false;
    }
    return true;
}

} // namespace fxd::protocol
