#pragma once
// Client subcommands of the `sluice` binary (everything but `serve`).

#include <string>

namespace sluice::tools {
// Runs `sluice <cmd> ...`; argv holds the arguments after the command. Returns the exit code.
int cli_main(const std::string& cmd, int argc, char** argv);
}  // namespace sluice::tools
