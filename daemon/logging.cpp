#include "logging.hpp"

#include "config.hpp"

#include <fxd/protocol/encoder.hpp>

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>
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

/// One line for journald: "<PRIORITY>message". journald stamps the time itself
/// and strips the prefix into the entry's PRIORITY field (sd-daemon(3)).
class journal_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override
    {
        const char prefix[] = {'<', priority(msg.level), '>'};
        dest.append(prefix, prefix + sizeof prefix);
        dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
        dest.push_back('\n');
    }

    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<journal_formatter>(); }

private:
    /// syslog(3) priorities as the digit sd-daemon(3) expects.
    static char priority(spdlog::level::level_enum level) noexcept
    {
        switch (level) {
        case spdlog::level::critical: return '2'; // LOG_CRIT
        case spdlog::level::err: return '3';      // LOG_ERR
        case spdlog::level::warn: return '4';     // LOG_WARNING
        case spdlog::level::info: return '6';     // LOG_INFO
        default: return '7';                      // LOG_DEBUG: debug and trace
        }
    }
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

/// Unicode's format characters (general category Cf, Unicode 15) plus the
/// line and paragraph separators: invisible, yet they reorder (U+202E),
/// hide (U+200B) or break what a terminal or log viewer shows around them.
bool hidden_in_logs(char32_t c) noexcept
{
    struct range {
        char32_t first, last;
    };
    static constexpr std::array<range, 21> ranges{{
        {0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C}, {0x06DD, 0x06DD}, {0x070F, 0x070F},
        {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x180E, 0x180E}, {0x200B, 0x200F}, {0x2028, 0x202E},
        {0x2060, 0x2064}, {0x2066, 0x206F}, {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD},
        {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
        {0xE0020, 0xE007F},
    }};
    for (const auto& r : ranges)
        if (c >= r.first && c <= r.last)
            return true;
    return false;
}

/// The code point of a well-formed UTF-8 sequence of two to four bytes at
/// text[i], and its length; {0, 0} for anything else (ASCII, a stray or
/// malformed byte), which is then copied as it is.
std::pair<char32_t, std::size_t> decode_utf8(std::string_view text, std::size_t i) noexcept
{
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t c = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        c = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        c = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        c = lead & 0x07;
    } else {
        return {0, 0};
    }
    if (text.size() - i < length)
        return {0, 0};
    for (std::size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(text[i + k]);
        if ((next & 0xC0) != 0x80)
            return {0, 0};
        c = (c << 6) | (next & 0x3F);
    }
    return {c, length};
}

void append_u_escape(std::string& out, std::uint32_t unit)
{
    static constexpr char digits[] = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4)
        out += digits[(unit >> shift) & 0xF];
}

/// Rewrites every hidden character of an already JSON-escaped string as
/// \uXXXX (a surrogate pair past U+FFFF), so the line stays valid JSON.
std::string escape_hidden(const std::string& escaped)
{
    std::string out;
    out.reserve(escaped.size());
    for (std::size_t i = 0; i < escaped.size();) {
        const auto [c, length] = decode_utf8(escaped, i);
        if (length == 0 || !hidden_in_logs(c)) {
            const std::size_t take = length == 0 ? 1 : length;
            out.append(escaped, i, take);
            i += take;
            continue;
        }
        if (c > 0xFFFF) {
            const auto v = static_cast<std::uint32_t>(c) - 0x10000;
            append_u_escape(out, 0xD800 + (v >> 10));
            append_u_escape(out, 0xDC00 + (v & 0x3FF));
        } else {
            append_u_escape(out, static_cast<std::uint32_t>(c));
        }
        i += length;
    }
    return out;
}

} // namespace

bool is_journal_stream(const char* journal_stream, int fd)
{
    if (!journal_stream)
        return false;
    const std::string_view text(journal_stream);
    const auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return false;
    std::uint64_t device = 0, inode = 0;
    const auto dev_end = text.data() + colon;
    const auto [d, dev_ec] = std::from_chars(text.data(), dev_end, device);
    const auto [i, ino_ec] = std::from_chars(dev_end + 1, text.data() + text.size(), inode);
    if (dev_ec != std::errc() || d != dev_end || ino_ec != std::errc() || i != text.data() + text.size())
        return false;
    struct stat st {};
    // The variable is inherited by children whose stderr was redirected
    // elsewhere: only the very stream it names is the journal.
    return ::fstat(fd, &st) == 0 && static_cast<std::uint64_t>(st.st_dev) == device &&
           static_cast<std::uint64_t>(st.st_ino) == inode;
}

std::unique_ptr<spdlog::formatter> make_formatter(std::string_view format, bool journal)
{
    if (format == "json")
        return std::make_unique<json_formatter>();
    if (format != "text")
        throw config_error("config key 'log.format': '" + std::string(format) + "' is not text or json");
    if (journal)
        return std::make_unique<journal_formatter>();
    return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%d %H:%M:%S.%e %l %v");
}

void configure_logger(spdlog::logger& log, std::string_view level, std::string_view format)
{
    log.set_level(parse_level(level));
    log.set_formatter(make_formatter(format, is_journal_stream(std::getenv("JOURNAL_STREAM"), STDERR_FILENO)));
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
    std::string quoted;
    protocol::append_json_string(quoted, text.substr(0, max_bytes));
    auto out = escape_hidden(quoted);
    if (cut)
        out += "...";
    return out;
}

} // namespace fxd::daemon
