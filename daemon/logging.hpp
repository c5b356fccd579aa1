#pragma once
/// The daemon's logger: spdlog to stderr, as text or one JSON object per line.

#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}

namespace fxd::daemon {

/// Throws config_error for an unknown level or format (the config loader checks first).
std::shared_ptr<spdlog::logger> make_logger(std::string_view level, std::string_view format);

/// Changes level and format of an existing logger (used at start and on reload).
void configure_logger(spdlog::logger& log, std::string_view level, std::string_view format);

/// Escapes text from clients (names, ops) so it cannot forge log lines.
std::string escape_for_log(std::string_view text, std::size_t max_bytes = 256);

} // namespace fxd::daemon
