#pragma once
/// The fxd command line: parses arguments, loads the config, runs the server.

namespace fxd::daemon {

/// Returns the process exit status: 0 success, 1 start-up failure, 2 bad usage or config.
int run(int argc, char** argv);

} // namespace fxd::daemon
