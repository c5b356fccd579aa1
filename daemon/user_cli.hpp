#pragma once
/// `fxd user add|passwd|del|admin|list`: operators manage accounts without the network.

#include "config.hpp"

#include <string>

namespace fxd::daemon {

/// One `fxd user` command as the command line gave it (app.cpp checks the name's form).
struct user_command {
    enum class action { add, passwd, del, admin, list };
    action what;
    std::string name;   ///< empty for list
    bool admin = false; ///< add --admin; admin NAME on
};

/// Returns the exit status: 0 done, 1 refused (no database but for add, user exists, unknown user,
/// storage error), 2 no usable password given.
int run_user_command(const config& cfg, const user_command& command);

} // namespace fxd::daemon
