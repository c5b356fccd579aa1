#include <fxd/protocol/decoder.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

namespace fxd::protocol {

namespace {
constexpr std::size_t working_set_bytes = 8192; // two pages
constexpr std::size_t cache_line = 64;
} // namespace

struct decoder::working_set {
    static constexpr std::size_t buffer_bytes =
        working_set_bytes - (sizeof(header_parser) + sizeof(bool) + cache_line - 1) / cache_line * cache_line;

    explicit working_set(std::size_t max_depth, bool in_pages) : parser(max_depth), mapped(in_pages) {}

    header_parser parser;
    bool mapped; ///< from mmap; from malloc when mmap was refused (too many mappings)
    alignas(cache_line) char buffer[buffer_bytes];
};
static_assert(sizeof(header_parser) < working_set_bytes / 2, "the working set must leave room to read into");

void decoder::working_set_deleter::operator()(working_set* w) const noexcept
{
    const bool mapped = w->mapped;
    std::destroy_at(w);
    if (mapped)
        ::munmap(w, working_set_bytes);
    else
        std::free(w);
}

void decoder::ensure_working_set()
{
    if (working_)
        return;
    bool mapped = true;
    void* memory = ::mmap(nullptr, working_set_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        mapped = false;
        memory = std::aligned_alloc(cache_line, working_set_bytes);
        if (!memory)
            throw std::bad_alloc();
    }
    try {
        working_.reset(std::construct_at(static_cast<working_set*>(memory), limits_.max_json_depth, mapped));
    } catch (...) {
        if (mapped)
            ::munmap(memory, working_set_bytes);
        else
            std::free(memory);
        throw;
    }
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
    if (!buf_) {
        ensure_working_set();
        buf_ = working_->buffer;
        capacity_ = working_set::buffer_bytes;
    }
    if (capacity_ - end_ >= min_free)
        return {buf_ + end_, capacity_ - end_};

    const std::size_t held = end_ - begin_;
    if (capacity_ - held >= min_free) {
        std::memmove(buf_, buf_ + begin_, held);
    } else {
        const std::size_t wanted = std::max(capacity_ * 2, held + min_free);
        auto bigger = std::make_unique_for_overwrite<char[]>(wanted);
        if (held != 0)
            std::memcpy(bigger.get(), buf_ + begin_, held);
        heap_buf_ = std::move(bigger);
        buf_ = heap_buf_.get();
        capacity_ = wanted;
    }
    begin_ = 0;
    end_ = held;
    return {buf_ + end_, capacity_ - end_};
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
    heap_buf_.reset();
    buf_ = nullptr;
    capacity_ = begin_ = end_ = pending_consume_ = 0;
    if (state_ == state::prefix) {
        // The last header views the parser's storage: drop both together.
        header_ = {};
        working_.reset();
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
        const char* data = buf_ + begin_;
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
            ensure_working_set();
            if (!working_->parser.parse({data, header_len_}, header_, code))
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
