#pragma once
/// The daemon's logger: spdlog to stderr, as text or one JSON object per line.
/// When stderr is the journal's stream (fxd under systemd), text lines carry
/// an sd-daemon(3) priority prefix such as "<4>" instead of a timestamp, so
/// journald files each line at its level (journalctl -p warning works).

#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
class formatter;
}

namespace fxd::daemon {

/// Throws config_error for an unknown level or format (the config loader checks first).
std::shared_ptr<spdlog::logger> make_logger(std::string_view level, std::string_view format);

/// Changes level and format of an existing logger (used at start and on reload).
void configure_logger(spdlog::logger& log, std::string_view level, std::string_view format);

/// Whether fd is the stream JOURNAL_STREAM names ("DEVICE:INODE", as systemd
/// sets it for a service's stdout and stderr; see systemd.exec(5)).
bool is_journal_stream(const char* journal_stream, int fd);

/// The formatter for a log.format ("text" or "json"); journal: the text form
/// for journald (priority prefix, no timestamp). JSON is the same either way.
std::unique_ptr<spdlog::formatter> make_formatter(std::string_view format, bool journal);

/// Escapes text from clients (names, ops) so it cannot forge log lines.
std::string escape_for_log(std::string_view text, std::size_t max_bytes = 256);

} // namespace fxd::daemon
