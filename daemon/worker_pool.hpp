#pragma once
/// A small pool of threads for blocking calls (password hashing, fsync), so the
/// event loop never blocks. A coroutine awaits run(fn): fn runs on a worker and
/// the coroutine resumes on its own executor with fn's result (or exception).

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

namespace fxd::daemon {

class worker_pool {
public:
    worker_pool(std::size_t threads, std::size_t queue_limit) : pool_(threads), queue_limit_(queue_limit) {}
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;
    ~worker_pool() { join(); }

    /// Jobs submitted and not yet finished (read on the loop thread only).
    std::size_t depth() const noexcept { return depth_; }
    /// False when the queue is full: the caller answers busy instead of queueing.
    bool has_room() const noexcept { return depth_ < queue_limit_; }

    void join() { pool_.join(); }

    /// Runs fn() on a worker. fn must return a default-constructible, movable value.
    /// Give it only trivially destructible captures (pointers, references to the
    /// caller's locals): GCC 12 can destroy a lambda temporary twice when it sits
    /// in a co_await expression.
    template <class Fn>
    boost::asio::awaitable<std::invoke_result_t<Fn&>> run(Fn fn)
    {
        using result = std::invoke_result_t<Fn&>;
        ++depth_;
        struct leave {
            std::size_t& d;
            ~leave() { --d; }
        } guard{depth_};
        // A named initiation taking the job as an argument: GCC 12 mishandles
        // lambda temporaries with captures inside a co_await expression.
        auto initiation = [this](auto handler, Fn job) {
            boost::asio::post(pool_, [job = std::move(job), handler = std::move(handler)]() mutable {
                std::exception_ptr failure;
                result value{};
                try {
                    value = job();
                } catch (...) {
                    failure = std::current_exception();
                }
                auto home = boost::asio::get_associated_executor(handler);
                boost::asio::dispatch(home, [handler = std::move(handler), failure, value = std::move(value)]() mutable {
                    std::move(handler)(failure, std::move(value));
                });
            });
        };
        result value = co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                            void(std::exception_ptr, result)>(
            initiation, boost::asio::use_awaitable, std::move(fn));
        co_return value;
    }

private:
    boost::asio::thread_pool pool_;
    std::size_t queue_limit_;
    std::size_t depth_ = 0;
};

} // namespace fxd::daemon
