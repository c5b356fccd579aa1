// Transfer progress on stderr: a bar redrawn in place on a terminal, one
// plain line at the end otherwise.

#include "fxc.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace fxc {

namespace {

using clock_type = std::chrono::steady_clock;

std::string clock_text(double seconds)
{
    if (!(seconds >= 0) || seconds > 359999)
        return "--:--";
    const auto s = static_cast<long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

int terminal_columns()
{
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/// Columns a UTF-8 string takes, counting one per character (continuation bytes take none).
int columns_of(std::string_view text)
{
    return static_cast<int>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

/// The last `columns` characters of text, after "..." when shortened.
std::string keep_end(const std::string& text, int columns)
{
    if (columns_of(text) <= columns)
        return text;
    if (columns <= 3)
        return std::string(static_cast<std::size_t>(std::max(columns, 0)), '.');
    std::size_t from = text.size();
    for (int kept = 0; from > 0;) {
        --from;
        if ((static_cast<unsigned char>(text[from]) & 0xC0) != 0x80 && ++kept == columns - 3)
            break;
    }
    return "..." + text.substr(from);
}

} // namespace

progress_bar::mode progress_bar::choose(const options& opts)
{
    if (opts.quiet)
        return mode::off;
    return stderr_is_terminal() ? mode::bar : mode::final_line;
}

progress_bar::progress_bar(std::string label, mode m) : label_(std::move(label)), mode_(m) {}

progress_bar::~progress_bar()
{
    if (started_ && !finished_)
        finish(false);
}

void progress_bar::update(std::uint64_t done, std::uint64_t total)
{
    const auto now = clock_type::now();
    if (!started_ || done < done_) {
        // The first call, or a transfer that went back to an earlier point
        // (a partial that did not match is sent again whole): rates and the
        // resumed amount count from here.
        started_ = true;
        start_ = now;
        first_done_ = done;
    }
    done_ = done;
    total_ = total;
    if (mode_ != mode::bar)
        return;
    const bool first = last_draw_ == clock_type::time_point{};
    if (first || done == total || now - last_draw_ >= std::chrono::milliseconds(100)) {
        last_draw_ = now;
        draw(false);
    }
}

std::string progress_bar::line(int columns, bool last) const
{
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    const double moved = static_cast<double>(done_ - std::min(done_, first_done_));
    const double rate = elapsed > 0.05 ? moved / elapsed : 0;
    const double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    char percent[16];
    std::snprintf(percent, sizeof percent, " %3d%%", static_cast<int>(fraction * 100));
    const std::string sizes =
        "  " + human_bytes(static_cast<double>(done_)) + " / " + human_bytes(static_cast<double>(total_));
    const std::string rate_text = "  " + (rate > 0 ? human_bytes(rate) + "/s" : std::string("--/s"));
    const std::string time_text =
        "  " + (last ? "in " + clock_text(elapsed)
                     : "ETA " + (rate > 0 ? clock_text(static_cast<double>(total_ - done_) / rate)
                                          : std::string("--:--")));
    // The richest line that fits in one row less a column (a full row would
    // wrap on some terminals and break the redraw): the name stays whole, the
    // figures go first (sizes, then rate, then time left), then the bar.
    const int room = columns - 1;
    const std::string tails[] = {percent + sizes + rate_text + time_text, percent + rate_text + time_text,
                                 percent + time_text, percent};
    constexpr int min_bar = 10;
    for (const auto& tail : tails) {
        const int bar = room - columns_of(label_) - 3 - columns_of(tail);
        if (bar >= min_bar) {
            const int filled = static_cast<int>(fraction * bar);
            std::string out = label_ + " [";
            out.append(static_cast<std::size_t>(filled), '#');
            out.append(static_cast<std::size_t>(bar - filled), '.');
            return out + "]" + tail;
        }
    }
    // Too narrow for a bar: the name and the percentage, the name shortened
    // from the front only when even that does not fit.
    return keep_end(label_, room - columns_of(tails[3])) + tails[3];
}

void progress_bar::draw(bool last)
{
    // \r and erase-to-end: the line is redrawn in place, never wrapped.
    std::cerr << "\r" << line(terminal_columns(), last) << "\x1b[K" << std::flush;
}

void progress_bar::finish(bool ok)
{
    if (finished_)
        return;
    finished_ = true;
    if (!started_ || mode_ == mode::off)
        return;
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    if (mode_ == mode::bar) {
        draw(ok);
        std::cerr << "\n" << std::flush;
        return;
    }
    char line[512];
    const double moved = static_cast<double>(done_ - std::min(done_, first_done_));
    if (ok) {
        // Only what moved now: whether it resumed is said once, by the result line.
        std::snprintf(line, sizeof line, "%s: %s in %.2f s (%s/s)", label_.c_str(),
                      human_bytes(moved).c_str(), elapsed, human_bytes(elapsed > 0 ? moved / elapsed : 0).c_str());
    } else {
        std::snprintf(line, sizeof line, "%s: stopped at %s of %s", label_.c_str(),
                      human_bytes(static_cast<double>(done_)).c_str(), human_bytes(static_cast<double>(total_)).c_str());
    }
    std::cerr << line << "\n" << std::flush;
}

} // namespace fxc
