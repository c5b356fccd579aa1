#pragma once
/// Child processes for the tests: run a program to completion with pipes on
/// its stdin, stdout and stderr; start one and read its first line; drive one
/// on a pseudo-terminal. Every wait has a deadline.

#include <chrono>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace fxd::test {

/// A child's exit status as a shell shows it: a death by signal is 128 + signal.
int decode_status(int wait_status);

/// What a program run to completion left behind (status -1: killed at the deadline).
struct run_result {
    int status = -1;
    std::string out;
    std::string err;
};
std::ostream& operator<<(std::ostream& os, const run_result& r);

/// Environment changes for a child: a nullopt value removes the variable.
using env_changes = std::map<std::string, std::optional<std::string>>;

/// This process's environment without variables starting with any of drop_prefixes
/// (or named in changes), plus changes.
std::vector<std::string> environment_with(const env_changes& changes, const std::vector<std::string>& drop_prefixes = {});

struct run_options {
    std::string input;                                   ///< written to stdin, which is then closed
    std::optional<std::vector<std::string>> environment; ///< the whole environment; ours when unset
    bool new_session = false;                            ///< setsid(): no controlling terminal, so no prompt
    std::string working_dir;                             ///< the child's current folder; ours when empty
    std::chrono::milliseconds deadline = std::chrono::seconds(60);
};

/// Runs argv (argv[0] a path) to completion, or kills it at the deadline.
run_result run_program(const std::vector<std::string>& argv, const run_options& options = {});

/// A child started with stdout on a pipe (stdin and stderr on /dev/null); not waited for here.
struct spawned_child {
    pid_t pid = -1;
    std::string first_line; ///< what it printed up to the first newline, within 20 s
};
spawned_child spawn_reading_first_line(const std::vector<std::string>& argv);

/// Waits for a child to exit; its status (see decode_status), or nullopt at the deadline.
std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout);

/// A program on a pseudo-terminal: its stdin, stdout and stderr are the terminal.
class pty_process {
public:
    explicit pty_process(const std::vector<std::string>& argv, const std::vector<std::string>& environment);
    ~pty_process();
    pty_process(const pty_process&) = delete;
    pty_process& operator=(const pty_process&) = delete;

    /// Reads until the output after the last expect() contains needle; false at the deadline or at the end.
    bool expect(const std::string& needle, std::chrono::seconds deadline = std::chrono::seconds(60));
    /// Types a line (ending in a carriage return, as a terminal sends it).
    void send_line(const std::string& line);
    /// Reads to the end and returns the exit status (-1 at the deadline).
    int wait(std::chrono::seconds deadline = std::chrono::seconds(60));
    const std::string& output() const noexcept { return output_; }

private:
    void read_some(std::chrono::milliseconds wait_for);

    pid_t pid_ = -1;
    int master_ = -1;
    std::string output_;
    std::size_t mark_ = 0;
    bool eof_ = false;
    std::optional<int> status_;
};

} // namespace fxd::test
