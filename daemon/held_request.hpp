#pragma once
/// A request header that owns its fields. The decoder's header views memory
/// that its next call reuses (and the reaper frees when the connection
/// parks), so a request that waits (worker pool) or outlives its header
/// (a streaming upload) keeps one of these instead.

#include <fxd/protocol/header.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace fxd::daemon {

class held_request {
public:
    explicit held_request(const protocol::request_header& from) : fields_(protocol::fields_copy(from)), header_(from)
    {
        header_.fields = &fields_;
        header_.members = {}; // the decoder's: fields_ holds them now
        header_.id = from.id ? fields_.if_contains("id") : nullptr;
        if (const auto* name = fields_.if_contains("op"); name && name->is_string())
            header_.op_name = name->get_string();
    }
    held_request(const held_request&) = delete;
    held_request& operator=(const held_request&) = delete;

    const protocol::request_header& header() const noexcept { return header_; }

private:
    boost::json::object fields_;
    protocol::request_header header_;
};

} // namespace fxd::daemon
