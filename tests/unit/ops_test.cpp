// The operator's view without a daemon: journald log lines, the histograms and
// the Prometheus text, /proc/self/stat parsing.
#include "config.hpp"
#include "logging.hpp"
#include "metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

using namespace fxd::daemon;

namespace {

std::string format_line(std::string_view format, bool journal, spdlog::level::level_enum level, std::string_view text)
{
    const auto formatter = make_formatter(format, journal);
    spdlog::details::log_msg msg("fxd", level, spdlog::string_view_t(text.data(), text.size()));
    spdlog::memory_buf_t out;
    formatter->format(msg, out);
    return std::string(out.data(), out.size());
}

std::string dev_ino(int fd)
{
    struct stat st {};
    BOOST_REQUIRE(::fstat(fd, &st) == 0);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

} // namespace

BOOST_AUTO_TEST_SUITE(journald_logs)

BOOST_AUTO_TEST_CASE(text_lines_for_journald_carry_the_priority_and_no_timestamp, *boost::unit_test::timeout(10))
{
    BOOST_TEST(format_line("text", true, spdlog::level::warn, "disk nearly full") == "<4>disk nearly full\n");
    BOOST_TEST(format_line("text", true, spdlog::level::err, "x") == "<3>x\n");
    BOOST_TEST(format_line("text", true, spdlog::level::critical, "x") == "<2>x\n");
    BOOST_TEST(format_line("text", true, spdlog::level::info, "x") == "<6>x\n");
    BOOST_TEST(format_line("text", true, spdlog::level::debug, "x") == "<7>x\n");
    BOOST_TEST(format_line("text", true, spdlog::level::trace, "x") == "<7>x\n");
}

BOOST_AUTO_TEST_CASE(elsewhere_text_lines_are_unchanged, *boost::unit_test::timeout(10))
{
    const auto line = format_line("text", false, spdlog::level::warn, "disk nearly full");
    BOOST_TEST(line.front() != '<', line);
    BOOST_TEST(line.ends_with(" warning disk nearly full\n"), line);
    BOOST_TEST(line.size() == std::string("2026-01-01 00:00:00.000 warning disk nearly full\n").size(), line);
    // JSON is one object per line with its own time, under journald or not.
    BOOST_TEST(format_line("json", true, spdlog::level::warn, "x").starts_with("{\"time\":"));
}

BOOST_AUTO_TEST_CASE(journal_stream_must_name_this_very_descriptor, *boost::unit_test::timeout(10))
{
    std::FILE* file = std::tmpfile();
    BOOST_REQUIRE(file);
    const int fd = ::fileno(file);
    const auto mine = dev_ino(fd);
    BOOST_TEST(is_journal_stream(mine.c_str(), fd));
    BOOST_TEST(!is_journal_stream(nullptr, fd));
    BOOST_TEST(!is_journal_stream("", fd));
    BOOST_TEST(!is_journal_stream("12", fd));
    BOOST_TEST(!is_journal_stream((mine + "x").c_str(), fd));
    std::FILE* other = std::tmpfile(); // inherited variable, stderr redirected elsewhere
    BOOST_REQUIRE(other);
    BOOST_TEST(!is_journal_stream(mine.c_str(), ::fileno(other)));
    std::fclose(other);
    std::fclose(file);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(metrics_text)

BOOST_AUTO_TEST_CASE(histogram_buckets_are_cumulative_in_the_exposition, *boost::unit_test::timeout(10))
{
    timings t;
    t.upload_bytes.observe(1000.0);     // le 1024
    t.upload_bytes.observe(1024.0);     // le 1024 (bounds are inclusive)
    t.upload_bytes.observe(5000.0);     // le 16384
    t.upload_bytes.observe(1e12);       // +Inf only
    t.observe_request(fxd::protocol::op::ping, std::chrono::microseconds(50));
    t.observe_request(std::nullopt, std::chrono::seconds(1)); // no op: not counted
    const auto text = render_metrics({}, t, {}, {}, "9.9.9");
    BOOST_TEST(text.find("fxd_upload_size_bytes_bucket{le=\"1024\"} 2\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_upload_size_bytes_bucket{le=\"4096\"} 2\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_upload_size_bytes_bucket{le=\"16384\"} 3\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_upload_size_bytes_bucket{le=\"17179869184\"} 3\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_upload_size_bytes_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_upload_size_bytes_count 4\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_request_duration_seconds_bucket{op=\"ping\",le=\"0.0001\"} 1\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_request_duration_seconds_count{op=\"ping\"} 1\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_request_duration_seconds_count{op=\"echo\"} 0\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_build_info{version=\"9.9.9\"} 1\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(every_sample_belongs_to_a_family_declared_before_it, *boost::unit_test::timeout(10))
{
    fxd::services::counters c;
    c.requests_by_op[0] = 7;
    gauges g;
    g.users = 3;
    process_sample p;
    p.cpu_seconds = 1.5;
    p.open_fds = 9;
    const auto text = render_metrics(c, timings{}, g, p, "1");
    std::string family;
    std::size_t samples = 0;
    for (std::size_t at = 0; at < text.size();) {
        const auto end = text.find('\n', at);
        BOOST_REQUIRE(end != std::string::npos);
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        if (line.starts_with("# TYPE ")) {
            family = line.substr(7, line.find(' ', 7) - 7);
            continue;
        }
        if (line.starts_with("#"))
            continue;
        const auto name = line.substr(0, line.find_first_of("{ "));
        const bool belongs = name == family || name == family + "_bucket" || name == family + "_sum" ||
                             name == family + "_count";
        BOOST_TEST(belongs, line << " (family " << family << ")");
        ++samples;
    }
    BOOST_TEST(samples > 100u);
    BOOST_TEST(text.find("fxd_requests_total{op=\"ping\"} 7\n") != std::string::npos);
    BOOST_TEST(text.find("fxd_users 3\n") != std::string::npos);
    BOOST_TEST(text.find("process_cpu_seconds_total 1.5\n") != std::string::npos);
    BOOST_TEST(text.find("process_open_fds 9\n") != std::string::npos);
    BOOST_TEST(text.find("process_resident_memory_bytes") == std::string::npos); // not sampled: left out
}

BOOST_AUTO_TEST_CASE(proc_stat_gives_cpu_seconds_and_start_time, *boost::unit_test::timeout(10))
{
    // A command name with spaces and parentheses, as the kernel writes it.
    const std::string stat = "4242 (fx d) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 3 0 "
                             "12345 200000000 1000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    process_sample p;
    parse_proc_stat(stat, 100, 1000.0, p);
    BOOST_REQUIRE(p.cpu_seconds.has_value());
    BOOST_TEST(*p.cpu_seconds == 2.0);         // (150 + 50) ticks / 100
    BOOST_TEST(std::abs(*p.start_time_seconds - 1123.45) < 1e-6); // boot + 12345 / 100
    process_sample none;
    parse_proc_stat("garbage", 100, 0, none);
    BOOST_TEST(!none.cpu_seconds.has_value());
}

BOOST_AUTO_TEST_CASE(this_process_can_be_sampled, *boost::unit_test::timeout(10))
{
    const auto p = sample_process();
    BOOST_TEST(p.cpu_seconds.has_value());
    BOOST_TEST(p.resident_bytes.value_or(0) > 0u);
    BOOST_TEST(p.open_fds.value_or(0) >= 3u);
    BOOST_TEST(p.start_time_seconds.value_or(0) > 1.6e9);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(man_pages)

BOOST_AUTO_TEST_CASE(fxd_json_5_describes_every_config_key, *boost::unit_test::timeout(10))
{
    std::ifstream in(std::string(FXD_SOURCE_DIR) + "/docs/man/fxd.json.5.scd", std::ios::binary);
    BOOST_REQUIRE(in.good());
    const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const auto key : config_key_names()) {
        // Each key opens its own entry: "*section.key* (type, default ...)".
        const std::string entry = "\n*" + std::string(key) + "* (";
        BOOST_TEST(page.find(entry) != std::string::npos, "docs/man/fxd.json.5.scd lacks an entry for " << key);
    }
}

BOOST_AUTO_TEST_SUITE_END()
