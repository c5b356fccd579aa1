#include <fxd/protocol/decoder.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace fxd::protocol {

namespace {
constexpr std::size_t min_capacity = 4096;
}

decoder::decoder(decoder_limits limits) : limits_(limits) {}

bool decoder::in_body() const noexcept
{
    return state_ == state::body_buffer || state_ == state::body_skip || state_ == state::body_stream;
}

std::span<char> decoder::prepare(std::size_t min_free)
{
    begin_ += std::exchange(pending_consume_, 0);
    if (begin_ == end_)
        begin_ = end_ = 0;
    if (capacity_ - end_ >= min_free)
        return {buf_.get() + end_, capacity_ - end_};

    const std::size_t held = end_ - begin_;
    if (capacity_ - held >= min_free && capacity_ != 0) {
        std::memmove(buf_.get(), buf_.get() + begin_, held);
    } else {
        const std::size_t wanted = std::max({capacity_ * 2, held + min_free, min_capacity});
        auto bigger = std::make_unique_for_overwrite<char[]>(wanted);
        if (held != 0)
            std::memcpy(bigger.get(), buf_.get() + begin_, held);
        buf_ = std::move(bigger);
        capacity_ = wanted;
    }
    begin_ = 0;
    end_ = held;
    return {buf_.get() + end_, capacity_ - end_};
}

void decoder::feed(std::span<const char> bytes)
{
    auto space = prepare(bytes.size());
    std::copy(bytes.begin(), bytes.end(), space.begin());
    commit(bytes.size());
}

void decoder::release_memory() noexcept
{
    if (begin_ + pending_consume_ != end_)
        return;
    buf_.reset();
    capacity_ = begin_ = end_ = pending_consume_ = 0;
    if (state_ == state::prefix) {
        // The last header views the parser's storage: drop both together.
        header_ = {};
        parser_.reset();
    }
}

decoder::event decoder::fail(errc code) noexcept
{
    state_ = state::failed;
    error_ = code;
    return event::error;
}

decoder::event decoder::next()
{
    begin_ += std::exchange(pending_consume_, 0);
    body_ = {};
    for (;;) {
        const std::size_t avail = end_ - begin_;
        const char* data = buf_.get() + begin_;
        switch (state_) {
        case state::prefix: {
            if (avail < prefix_bytes)
                return event::need_more;
            header_len_ = load_u32_be(reinterpret_cast<const unsigned char*>(data));
            begin_ += prefix_bytes;
            if (header_len_ == 0)
                return fail(errc::bad_frame);
            if (header_len_ > limits_.max_header_bytes)
                return fail(errc::header_too_large);
            state_ = state::header;
            continue;
        }
        case state::header: {
            if (avail < header_len_)
                return event::need_more;
            errc code{};
            if (!parser_)
                parser_ = std::make_unique<header_parser>(limits_.max_json_depth);
            if (!parser_->parse({data, header_len_}, header_, code))
                return fail(code);
            begin_ += header_len_;
            remaining_ = header_.size;
            state_ = state::awaiting_choice;
            return event::header;
        }
        case state::awaiting_choice:
            throw std::logic_error("decoder: body handling not chosen after a header");
        case state::body_buffer:
            if (avail < remaining_)
                return event::need_more;
            body_ = {data, static_cast<std::size_t>(remaining_)};
            pending_consume_ = static_cast<std::size_t>(remaining_);
            remaining_ = 0;
            state_ = state::prefix;
            return event::frame;
        case state::body_skip: {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(avail, remaining_));
            begin_ += n;
            remaining_ -= n;
            if (remaining_ != 0)
                return event::need_more;
            state_ = state::prefix;
            continue;
        }
        case state::body_stream: {
            if (remaining_ == 0) {
                state_ = state::prefix;
                return event::body_end;
            }
            if (avail == 0)
                return event::need_more;
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(avail, remaining_));
            body_ = {data, n};
            pending_consume_ = n;
            remaining_ -= n;
            return event::body_chunk;
        }
        case state::failed:
            return event::error;
        }
    }
}

} // namespace fxd::protocol
