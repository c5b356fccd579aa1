#include "logging.hpp"

#include "config.hpp"

#include <fxd/protocol/encoder.hpp>

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <ctime>
#include <string>

namespace fxd::daemon {

namespace {

/// One JSON object per line: {"time":...,"level":...,"msg":...}.
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override
    {
        const auto since_epoch = msg.time.time_since_epoch();
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
        const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
        const std::time_t t = secs.count();
        std::tm utc{};
        gmtime_r(&t, &utc);
        char stamp[40];
        const auto len = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);

        line_.clear();
        line_ += "{\"time\":\"";
        line_.append(stamp, len);
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(millis));
        line_ += frac;
        line_ += "\",\"level\":";
        const auto level = spdlog::level::to_string_view(msg.level);
        protocol::append_json_string(line_, std::string_view(level.data(), level.size()));
        line_ += ",\"msg\":";
        protocol::append_json_string(line_, std::string_view(msg.payload.data(), msg.payload.size()));
        line_ += "}\n";
        dest.append(line_.data(), line_.data() + line_.size());
    }

    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }

private:
    std::string line_;
};

spdlog::level::level_enum parse_level(std::string_view level)
{
    if (level == "trace") return spdlog::level::trace;
    if (level == "debug") return spdlog::level::debug;
    if (level == "info") return spdlog::level::info;
    if (level == "warn") return spdlog::level::warn;
    if (level == "error") return spdlog::level::err;
    throw config_error("config key 'log.level': '" + std::string(level) + "' is not a level");
}

} // namespace

void configure_logger(spdlog::logger& log, std::string_view level, std::string_view format)
{
    log.set_level(parse_level(level));
    if (format == "json")
        log.set_formatter(std::make_unique<json_formatter>());
    else if (format == "text")
        log.set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%d %H:%M:%S.%e %l %v"));
    else
        throw config_error("config key 'log.format': '" + std::string(format) + "' is not text or json");
    log.flush_on(spdlog::level::trace); // stderr is unbuffered by intent: journald and Docker read it live
}

std::shared_ptr<spdlog::logger> make_logger(std::string_view level, std::string_view format)
{
    auto log = std::make_shared<spdlog::logger>("fxd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    configure_logger(*log, level, format);
    return log;
}

std::string escape_for_log(std::string_view text, std::size_t max_bytes)
{
    const bool cut = text.size() > max_bytes;
    std::string out;
    protocol::append_json_string(out, text.substr(0, max_bytes));
    if (cut)
        out += "...";
    return out;
}

} // namespace fxd::daemon
