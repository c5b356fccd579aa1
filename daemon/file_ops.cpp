// upload, download, stat, list and delete: checks on the loop, disk work on the worker pool.

#include "dispatcher.hpp"
#include "logging.hpp"

#include <fxd/protocol/encoder.hpp>
#include <fxd/protocol/names.hpp>
#include <fxd/services/database.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/logger.h>

namespace fxd::daemon {

using protocol::errc;
using protocol::op;
using services::file_status;

namespace {

std::string_view op_name(const protocol::request_header& request)
{
    return protocol::to_string(*request.operation);
}

double rate_mb_s(std::uint64_t bytes, double seconds)
{
    return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
}

} // namespace

/// The name a file op works on: the NFC form of the request's `name`, which
/// check_file_name (op_table.cpp) accepted before the op was admitted, so
/// every op and every spelling of a name reach the same file.
std::string dispatcher::file_name(const protocol::request_header& request)
{
    return protocol::normalize_file_name(protocol::string_field(request, "name").value_or(std::string_view{}))
        .value_or(std::string{});
}

void dispatcher::reply_upload_refused(const protocol::request_header& request, file_status status,
                                      std::uint64_t partial, std::string& out)
{
    switch (status) {
    case file_status::bad_offset: {
        stats_.count_error(request.operation, errc::bad_offset);
        protocol::reply_writer reply(out);
        reply.begin(op_name(request), request.id, false);
        reply.field("code", protocol::to_string(errc::bad_offset));
        reply.field("message", "offset must be 0 or equal the partial held, with the same size");
        reply.field("partial", partial);
        reply.end(0);
        break;
    }
    case file_status::quota_exceeded:
        reply_error(out, &request, errc::quota_exceeded, "this upload would pass storage.quota_bytes");
        break;
    case file_status::too_many_files:
        reply_error(out, &request, errc::quota_exceeded, "this upload would pass storage.max_files_per_user");
        break;
    case file_status::storage_full:
        reply_error(out, &request, errc::storage_full, "the server's disk is full");
        break;
    default:
        reply_error(out, &request, errc::internal, "internal error");
    }
}

boost::asio::awaitable<upload_handle>
dispatcher::begin_upload(const protocol::request_header& request, session_context& session, std::string& out)
{
    if (objects_)
        co_return co_await begin_object_upload(request, session, out);
    const std::string name = file_name(request);
    const std::uint64_t offset = protocol::uint_field(request, "offset").value_or(0);
    const std::uint64_t size = request.size;
    try {
        if (!has_worker_room(request, out))
            co_return nullptr;
        auto* files = files_;
        auto* accounts = accounts_;
        const std::string user = session.user;
        const services::user_identity login = session.login;
        const services::local_files::limits limits{cfg_.storage.quota_bytes, cfg_.storage.max_files_per_user};
        struct checked {
            std::optional<services::user_identity> login;
            std::optional<services::local_files::begun> begun; ///< none when the login was revoked
        };
        auto r = co_await workers_.run([files, accounts, &login, &user, &name, size, offset, limits] {
            auto c = std::make_shared<checked>();
            c->login = current_login(*accounts, login);
            if (c->login) // a revoked login must not reserve quota or create a partial
                c->begun.emplace(files->begin_upload(user, name, size, offset, limits));
            return c;
        });
        if (!keep_login(r->login, request, session, out)) {
            ++stats_.uploads_failed;
            co_return upload_handle{};
        }
        auto& begun = r->begun;
        if (begun->status == file_status::ok)
            co_return upload_handle{std::move(begun->up), nullptr};
        reply_upload_refused(request, begun->status, begun->partial, out);
    } catch (const std::exception& e) {
        reply_failure(out, request, "upload of " + escape_for_log(name) + " (start)", e);
    }
    ++stats_.uploads_failed;
    co_return upload_handle{};
}

// Every job below ends by destroying the upload on the worker: an unfinished
// upload's destructor removes its blob and record, disk and database work
// that must never run on the loop.

boost::asio::awaitable<void> dispatcher::finish_upload(const protocol::request_header& request,
                                                       const session_context& session, upload_handle handle,
                                                       std::chrono::steady_clock::time_point started, std::string& out)
{
    if (handle.object) {
        co_await finish_object_upload(request, session, std::move(handle.object), started, out);
        co_return;
    }
    auto up = std::move(handle.local);
    std::optional<std::string> expected;
    if (const auto sha = protocol::string_field(request, "sha256"))
        expected = std::string(*sha);
    const auto mtime = protocol::mtime_field(request); // checked by the op table when present
    const std::string name = up->name();
    struct result {
        std::optional<file_status> status; ///< none when the commit threw
        services::file_record file;
        std::string failure; ///< what went wrong, when the commit threw
        bool unavailable = false; ///< it threw because the database cannot be reached
    };
    auto* files = files_;
    const auto r = co_await workers_.run([files, &up, &expected, mtime] {
        result res;
        try {
            res.status = files->commit(*up, expected, res.file, mtime);
        } catch (const services::store_unavailable& e) {
            res.failure = e.what();
            res.unavailable = true;
        } catch (const std::exception& e) {
            res.failure = e.what();
        }
        up.reset();
        return res;
    });
    switch (r.status.value_or(file_status::not_found)) {
    case file_status::ok:
        reply_uploaded(request, session, r.file, started, out);
        co_return;
    case file_status::checksum_mismatch:
        reply_error(out, &request, errc::checksum_mismatch, "the body's SHA-256 differs from sha256; nothing stored");
        break;
    case file_status::storage_full:
        reply_error(out, &request, errc::storage_full, "the server's disk is full");
        break;
    default:
        if (r.unavailable) {
            ++stats_.database_unavailable;
            log_.warn("upload of {} not published: {}", escape_for_log(name), r.failure);
            reply_error(out, &request, errc::unavailable,
                        "the user database cannot be reached; the bytes are kept: once it is back, stat the name "
                        "and resume (or it is published as sent)");
            break;
        }
        log_.error("upload of {} failed: {}", escape_for_log(name), r.failure.empty() ? "unexpected status" : r.failure);
        reply_error(out, &request, errc::internal, "internal error");
    }
    ++stats_.uploads_failed;
}

void dispatcher::reply_uploaded(const protocol::request_header& request, const session_context& session,
                                const services::file_record& file, std::chrono::steady_clock::time_point started,
                                std::string& out)
{
    ++stats_.uploads_ok;
    // From the first body byte to the file being durable: what the client waited for.
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    protocol::reply_writer reply(out);
    reply.begin(op_name(request), request.id, true);
    reply.field("name", file.name);
    reply.field("total", file.size); // "size" is the reply's body length (0) by the frame rule
    reply.field("sha256", file.sha256);
    reply.field("mtime", file.mtime);
    reply.end(0);
    log_.info("upload user={} name={} bytes={} seconds={:.3f} MB/s={:.1f} sha256={}", session.user,
              escape_for_log(file.name), file.size, seconds, rate_mb_s(file.size, seconds), file.sha256);
}

boost::asio::awaitable<void> dispatcher::fail_upload(const protocol::request_header& request, upload_handle handle,
                                                     std::error_code why, std::string& out)
{
    if (handle.object) {
        co_await fail_object_upload(request, std::move(handle.object), why.message(), out);
        co_return;
    }
    auto up = std::move(handle.local);
    ++stats_.uploads_failed;
    const bool full = why == std::errc::no_space_on_device || why.value() == EDQUOT;
    if (full) {
        log_.warn("upload of {} stopped: {}", escape_for_log(up->name()), why.message());
        reply_error(out, &request, errc::storage_full, "the server's disk is full");
    } else {
        log_.error("upload of {} stopped: {}", escape_for_log(up->name()), why.message());
        reply_error(out, &request, errc::internal, "internal error");
    }
    auto* files = files_;
    const std::string failure = co_await workers_.run([files, &up] {
        std::string what;
        try {
            files->discard(*up);
        } catch (const std::exception& e) {
            what = e.what(); // the start-up repair removes what is left
        }
        up.reset();
        return what;
    });
    if (!failure.empty())
        log_.error("could not remove a failed upload: {}", failure);
}

boost::asio::awaitable<void> dispatcher::keep_partial(upload_handle handle)
{
    if (handle.object) {
        co_await keep_object_partial(std::move(handle.object));
        co_return;
    }
    auto up = std::move(handle.local);
    ++stats_.uploads_failed;
    const std::string name = up->name();
    const auto received = up->received();
    const auto size = up->size();
    auto* files = files_;
    const std::string failure = co_await workers_.run([files, &up] {
        std::string what;
        try {
            files->keep_partial(*up);
        } catch (const std::exception& e) {
            what = e.what();
        }
        up.reset();
        return what;
    });
    if (failure.empty())
        log_.info("upload of {} interrupted: kept {} of {} bytes as a partial", escape_for_log(name), received, size);
    else
        log_.error("could not keep a partial upload of {}: {}", escape_for_log(name), failure);
}

boost::asio::awaitable<std::optional<dispatcher::download>>
dispatcher::begin_download(const protocol::request_header& request, session_context& session,
                           std::string& out)
{
    if (objects_)
        co_return co_await begin_object_download(request, session, out);
    const std::string name = file_name(request);
    const std::uint64_t offset = protocol::uint_field(request, "offset").value_or(0);
    try {
        auto* files = files_;
        auto* accounts = accounts_;
        const std::string user = session.user;
        const services::user_identity login = session.login;
        struct checked {
            std::optional<services::user_identity> login;
            std::optional<services::local_files::opened> opened;
        };
        auto r = co_await workers_.run([files, accounts, &login, &user, &name] {
            auto c = std::make_shared<checked>();
            c->login = current_login(*accounts, login);
            if (c->login)
                c->opened = files->open_for_download(user, name);
            return c;
        });
        if (!keep_login(r->login, request, session, out)) {
            ++stats_.downloads_failed;
            co_return std::nullopt;
        }
        auto& opened = r->opened;
        if (!opened) {
            ++stats_.downloads_failed;
            reply_error(out, &request, errc::not_found, "no such file");
            co_return std::nullopt;
        }
        auto& file = *opened;
        if (!reply_download_header(request, file.info, offset, out))
            co_return std::nullopt;
        co_return download{std::move(file.fd), offset, file.info.size - offset, {}};
    } catch (const std::exception& e) {
        ++stats_.downloads_failed;
        reply_failure(out, request, "download of " + escape_for_log(name), e);
    }
    co_return std::nullopt;
}

bool dispatcher::reply_download_header(const protocol::request_header& request, const services::file_record& file,
                                       std::uint64_t offset, std::string& out)
{
    if (offset > file.size) {
        ++stats_.downloads_failed;
        reply_error(out, &request, errc::bad_offset, "offset is past the end of the file");
        return false;
    }
    protocol::reply_writer reply(out);
    reply.begin(op_name(request), request.id, true);
    reply.field("name", file.name);
    reply.field("total", file.size);
    reply.field("sha256", file.sha256);
    reply.field("mtime", file.mtime);
    reply.end(file.size - offset);
    return true;
}

void dispatcher::end_download(const protocol::request_header& request, const session_context& session,
                              const download& d, bool complete, double seconds)
{
    const std::string name = file_name(request);
    if (complete) {
        ++stats_.downloads_ok;
        log_.info("download user={} name={} bytes={} seconds={:.3f} MB/s={:.1f}", session.user, escape_for_log(name),
                  d.count, seconds, rate_mb_s(d.count, seconds));
    } else {
        ++stats_.downloads_failed;
        log_.info("download user={} name={} cut after {:.3f} s", session.user, escape_for_log(name), seconds);
    }
}

boost::asio::awaitable<void> dispatcher::stat_file(const protocol::request_header& request, session_context& session,
                                                   std::string& out)
{
    auto* files = files_;
    const std::string name = file_name(request);
    struct found {
        std::optional<services::file_record> file;
        std::optional<services::partial_record> partial;
    };
    const auto found_now = co_await as_current_login(request, session, out, [files, &name](const std::string& user) {
        return found{files->catalog().find_file(user, name), files->catalog().find_partial(user, name)};
    });
    if (!found_now)
        co_return;
    const auto& f = *found_now;
    if (!f.file && !f.partial) {
        reply_error(out, &request, errc::not_found, "no such file");
        co_return;
    }
    protocol::reply_writer reply(out);
    reply.begin(op_name(request), request.id, true);
    reply.field("name", name);
    reply.field("exists", f.file.has_value());
    if (f.file) {
        reply.field("total", f.file->size); // "size" is the reply's body length (0) by the frame rule
        reply.field("sha256", f.file->sha256);
        reply.field("mtime", f.file->mtime);
    }
    reply.field("partial", f.partial ? f.partial->bytes : std::uint64_t{0});
    reply.end(0);
}

boost::asio::awaitable<void> dispatcher::list_files(const protocol::request_header& request, session_context& session,
                                                    std::string& out)
{
    auto* files = files_;
    const auto listing = co_await as_current_login(
        request, session, out, [files](const std::string& user) { return files->catalog().list_files(user); });
    if (!listing)
        co_return;
    const auto& listed = *listing;
    boost::json::array entries;
    entries.reserve(listed.size());
    for (const auto& f : listed)
        entries.push_back(boost::json::object{{"name", f.name}, {"size", f.size}, {"mtime", f.mtime}});
    const std::string body = boost::json::serialize(entries);
    protocol::reply_writer reply(out);
    reply.begin(op_name(request), request.id, true);
    reply.end(body.size());
    out += body;
}

boost::asio::awaitable<void> dispatcher::delete_file(const protocol::request_header& request, session_context& session,
                                                     std::string& out)
{
    if (objects_) {
        co_await delete_object_file(request, session, out);
        co_return;
    }
    auto* files = files_;
    const std::string name = file_name(request);
    const auto removed = co_await as_current_login(
        request, session, out, [files, &name](const std::string& user) { return files->remove(user, name); });
    if (!removed)
        co_return;
    if (!*removed) {
        reply_error(out, &request, errc::not_found, "no such file");
        co_return;
    }
    reply_deleted(request, session, name, out);
}

void dispatcher::reply_deleted(const protocol::request_header& request, const session_context& session,
                               const std::string& name, std::string& out)
{
    log_.info("delete user={} name={}", session.user, escape_for_log(name));
    protocol::reply_writer reply(out);
    reply.begin(op_name(request), request.id, true);
    reply.end(0);
}

} // namespace fxd::daemon
