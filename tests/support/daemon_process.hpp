#pragma once
/// Starts the real fxd binary on ports 0 with its own temporary storage folder,
/// reads the ports it prints, and stops it at the end of the test.

#include "child_process.hpp"
#include "temp_dir.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fxd::test {

class daemon_process {
public:
    /// extra: more --set KEY=VALUE (or other) arguments. Waits for the ports line.
    explicit daemon_process(std::vector<std::string> extra = {}, std::optional<std::filesystem::path> storage = {});
    ~daemon_process();
    daemon_process(const daemon_process&) = delete;
    daemon_process& operator=(const daemon_process&) = delete;

    std::uint16_t tcp_port() const noexcept { return tcp_port_; }
    std::uint16_t udp_port() const noexcept { return udp_port_; }
    const std::filesystem::path& storage() const noexcept { return storage_; }
    int pid() const noexcept { return pid_; }

    /// Sends a signal to the daemon.
    void signal(int signo) const;
    /// Waits for the daemon to exit; its exit status, or nullopt on timeout.
    /// A death by signal is reported as 128 + signal number.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    /// Everything the daemon wrote to stderr so far.
    std::string log() const;

private:
    std::unique_ptr<temp_dir> own_storage_;
    std::filesystem::path storage_;
    std::filesystem::path log_file_;
    int pid_ = -1;
    std::optional<int> status_;
    std::uint16_t tcp_port_ = 0;
    std::uint16_t udp_port_ = 0;
};

/// Daemon arguments for a cheap Argon2id (logins stay fast), then `more`.
std::vector<std::string> fast(std::vector<std::string> more = {});

/// Path of the fxd binary under test.
std::string fxd_binary();

/// Runs fxd with arguments to completion (for --check-config, `fxd user ...` and the like),
/// with input on its stdin.
run_result run_fxd(const std::vector<std::string>& args, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                   const std::string& input = {});

/// `fxd user COMMAND...` on a storage folder, with the fast hash cost and input on its stdin.
run_result fxd_user(const std::filesystem::path& storage, const std::vector<std::string>& command,
                    const std::string& input = {});

} // namespace fxd::test
