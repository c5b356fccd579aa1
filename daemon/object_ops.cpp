// upload, download and delete when file bodies live in an object store
// (storage.backend "s3"): the catalog on the worker pool, the store on the loop.

#include "dispatcher.hpp"
#include "logging.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/services/database.hpp>

#include <spdlog/logger.h>

namespace fxd::daemon {

using protocol::errc;
using services::file_status;

void dispatcher::reply_store_failure(std::string& out, const protocol::request_header& request, std::string_view what)
{
    log_.warn("{}", what);
    const bool upload = request.operation == protocol::op::upload;
    reply_error(out, &request, errc::storage_unavailable,
                upload ? "the object store failed or did not answer; try again later (any whole parts stored are "
                         "kept: stat the name and resume)"
                       : "the object store failed or did not answer; try again later");
}

boost::asio::awaitable<upload_handle>
dispatcher::begin_object_upload(const protocol::request_header& request, session_context& session, std::string& out)
{
    const std::string name = file_name(request);
    const std::uint64_t offset = protocol::uint_field(request, "offset").value_or(0);
    const std::uint64_t size = request.size;
    const services::local_files::limits limits{cfg_.storage.quota_bytes, cfg_.storage.max_files_per_user};
    std::optional<std::string> failure;
    try {
        if (size > 10000 * objects_->part_bytes()) {
            // S3 takes at most 10000 parts in one upload.
            reply_error(out, &request, errc::body_too_large, "this upload needs more than 10000 parts of s3.part_bytes");
            ++stats_.uploads_failed;
            co_return upload_handle{};
        }
        if (!has_worker_room(request, out)) {
            ++stats_.uploads_failed;
            co_return upload_handle{};
        }
        auto* objects = objects_;
        auto admitted = co_await as_current_login(request, session, out, [objects, &name, size, offset, limits](const std::string& user) {
            return objects->admit_now(user, name, size, offset, limits);
        });
        if (!admitted) {
            ++stats_.uploads_failed;
            co_return upload_handle{};
        }
        if (admitted->status != file_status::ok) {
            reply_upload_refused(request, admitted->status, admitted->partial, out);
            ++stats_.uploads_failed;
            co_return upload_handle{};
        }
        // Named first: GCC 12 mishandles a co_await inside a braced initializer.
        auto opened = co_await objects->open(std::move(*admitted));
        co_return upload_handle{nullptr, std::move(opened)};
    } catch (const store_failure& e) {
        failure = e.what();
    } catch (const std::exception& e) {
        reply_failure(out, request, "upload of " + escape_for_log(name) + " (start)", e);
    }
    if (failure)
        reply_store_failure(out, request, "upload of " + escape_for_log(name) + " not started: " + *failure);
    ++stats_.uploads_failed;
    co_return upload_handle{};
}

boost::asio::awaitable<void> dispatcher::finish_object_upload(const protocol::request_header& request,
                                                              const session_context& session,
                                                              std::unique_ptr<object_upload> up,
                                                              std::chrono::steady_clock::time_point started,
                                                              std::string& out)
{
    std::optional<std::string> expected;
    if (const auto sha = protocol::string_field(request, "sha256"))
        expected = std::string(*sha);
    const auto mtime = protocol::mtime_field(request);
    const std::string name = up->name();
    std::optional<std::string> store_failed;
    std::optional<std::string> failed;
    services::file_record published;
    file_status status = file_status::not_found;
    try {
        status = co_await objects_->commit(*up, expected, mtime, published);
    } catch (const store_failure& e) {
        store_failed = e.what();
    } catch (const std::exception& e) {
        failed = e.what();
        reply_failure(out, request, "upload of " + escape_for_log(name), e);
    }
    if (store_failed) {
        co_await fail_object_upload(request, std::move(up), *store_failed, out);
        co_return;
    }
    if (failed) {
        // The catalog failed after the object was complete: the object is
        // swept as unreferenced; the client was told and may send again.
        ++stats_.uploads_failed;
        co_return;
    }
    switch (status) {
    case file_status::ok:
        reply_uploaded(request, session, published, started, out);
        co_return;
    case file_status::checksum_mismatch:
        reply_error(out, &request, errc::checksum_mismatch, "the body's SHA-256 differs from sha256; nothing stored");
        break;
    default:
        reply_error(out, &request, errc::internal, "internal error");
    }
    ++stats_.uploads_failed;
}

boost::asio::awaitable<void> dispatcher::fail_object_upload(const protocol::request_header& request,
                                                            std::unique_ptr<object_upload> up, std::string why,
                                                            std::string& out)
{
    reply_store_failure(out, request, "upload of " + escape_for_log(up->name()) + " stopped: " + why);
    co_await keep_object_partial(std::move(up));
}

boost::asio::awaitable<void> dispatcher::keep_object_partial(std::unique_ptr<object_upload> up)
{
    ++stats_.uploads_failed;
    const std::string name = up->name();
    std::optional<std::string> failure;
    try {
        co_await objects_->keep_partial(*up);
    } catch (const std::exception& e) {
        failure = e.what(); // the row stays: the sweep keeps or drops it
    }
    if (failure)
        log_.error("could not keep a partial upload of {}: {}", escape_for_log(name), *failure);
    else
        log_.info("upload of {} interrupted: its whole parts are kept as a partial", escape_for_log(name));
}

boost::asio::awaitable<std::optional<dispatcher::download>>
dispatcher::begin_object_download(const protocol::request_header& request, session_context& session, std::string& out)
{
    const std::string name = file_name(request);
    const std::uint64_t offset = protocol::uint_field(request, "offset").value_or(0);
    std::optional<std::string> failure;
    try {
        auto* objects = objects_;
        const auto found = co_await as_current_login(
            request, session, out, [objects, &name](const std::string& user) { return objects->find_now(user, name); });
        if (!found) {
            ++stats_.downloads_failed;
            co_return std::nullopt;
        }
        if (!*found) {
            ++stats_.downloads_failed;
            reply_error(out, &request, errc::not_found, "no such file");
            co_return std::nullopt;
        }
        const auto& file = **found;
        if (file.blob.empty()) { // stored before storage.backend was "s3"
            reply_error(out, &request, errc::not_found, "this file is in the local folder, not the object store");
            ++stats_.downloads_failed;
            co_return std::nullopt;
        }
        if (offset > file.size) {
            reply_download_header(request, file, offset, out); // the bad_offset reply
            co_return std::nullopt;
        }
        download d{{}, offset, file.size - offset, nullptr};
        if (d.count > 0) {
            auto body = co_await objects->read(file.blob, offset);
            d.stream = std::make_unique<s3::object_stream>(std::move(body));
        }
        reply_download_header(request, file, offset, out);
        co_return d;
    } catch (const store_failure& e) {
        failure = e.what();
    } catch (const std::exception& e) {
        reply_failure(out, request, "download of " + escape_for_log(name), e);
    }
    if (failure)
        reply_store_failure(out, request, "download of " + escape_for_log(name) + " not started: " + *failure);
    ++stats_.downloads_failed;
    co_return std::nullopt;
}

boost::asio::awaitable<void> dispatcher::delete_object_file(const protocol::request_header& request,
                                                            session_context& session, std::string& out)
{
    auto* objects = objects_;
    const std::string name = file_name(request);
    auto removed = co_await as_current_login(
        request, session, out, [objects, &name](const std::string& user) { return objects->remove_now(user, name); });
    if (!removed)
        co_return;
    if (!removed->found) {
        reply_error(out, &request, errc::not_found, "no such file");
        co_return;
    }
    reply_deleted(request, session, name, out);
    // The rows are gone, so the name is deleted whatever the store says now;
    // the objects go in the background, not on this reply's time.
    objects->delete_later(std::move(*removed));
}

} // namespace fxd::daemon
