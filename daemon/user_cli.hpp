#pragma once
/// `fxd user add|passwd|del|list`: operators manage accounts without the network.

#include "config.hpp"

#include <string>
#include <vector>

namespace fxd::daemon {

/// args: what follows "user". Returns the exit status: 0 done, 1 refused
/// (user exists, unknown user, storage error), 2 bad usage.
int run_user_command(const config& cfg, const std::vector<std::string>& args);

} // namespace fxd::daemon
