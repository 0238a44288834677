#include "tools/cli.h"

#include <cstdio>

namespace sluice::tools {

int cli_main(const std::string& cmd, int, char**) {
    std::fprintf(stderr, "sluice: unknown command '%s' (try sluice --help)\n", cmd.c_str());
    return 2;
}

}  // namespace sluice::tools
