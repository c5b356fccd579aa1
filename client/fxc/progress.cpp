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
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
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
    if (!started_) {
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

void progress_bar::draw(bool last)
{
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    const double moved = static_cast<double>(done_ - std::min(done_, first_done_));
    const double rate = elapsed > 0.05 ? moved / elapsed : 0;
    const double fraction = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    char tail[160];
    const std::string rate_text = rate > 0 ? human_bytes(rate) + "/s" : std::string("--/s");
    const std::string time_text = last ? "in " + clock_text(elapsed)
                                       : "ETA " + (rate > 0 ? clock_text(static_cast<double>(total_ - done_) / rate)
                                                            : std::string("--:--"));
    std::snprintf(tail, sizeof tail, " %3d%%  %s / %s  %s  %s", static_cast<int>(fraction * 100),
                  human_bytes(static_cast<double>(done_)).c_str(), human_bytes(static_cast<double>(total_)).c_str(),
                  rate_text.c_str(), time_text.c_str());
    // label [bar] tail, within the terminal's width; the bar keeps at least 10 columns.
    const int columns = terminal_columns();
    std::string label = label_;
    const int room = columns - 1 - static_cast<int>(std::string_view(tail).size());
    const int label_room = std::max(room - 13, 8);
    if (static_cast<int>(label.size()) > label_room)
        label = label.substr(0, static_cast<std::size_t>(label_room - 3)) + "...";
    const int width = std::max(room - static_cast<int>(label.size()) - 3, 10);
    const int filled = static_cast<int>(fraction * width);
    std::string line = "\r" + label + " [";
    line.append(static_cast<std::size_t>(filled), '#');
    line.append(static_cast<std::size_t>(width - filled), '.');
    line += "]";
    line += tail;
    line += "\x1b[K";
    std::cerr << line << std::flush;
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
    char line[256];
    const double moved = static_cast<double>(done_ - std::min(done_, first_done_));
    if (ok) {
        const std::string resumed =
            first_done_ > 0 ? " (resumed at " + human_bytes(static_cast<double>(first_done_)) + ")" : std::string();
        std::snprintf(line, sizeof line, "%s: %s%s in %.2f s (%s/s)", label_.c_str(),
                      human_bytes(static_cast<double>(done_)).c_str(), resumed.c_str(), elapsed,
                      human_bytes(elapsed > 0 ? moved / elapsed : 0).c_str());
    } else {
        std::snprintf(line, sizeof line, "%s: stopped at %s of %s", label_.c_str(),
                      human_bytes(static_cast<double>(done_)).c_str(), human_bytes(static_cast<double>(total_)).c_str());
    }
    std::cerr << line << "\n" << std::flush;
}

} // namespace fxc
