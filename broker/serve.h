#pragma once
// `sluice serve`: runs a broker until SIGTERM or SIGINT.

namespace sluice::broker {
// argv holds the arguments after "serve": `--config FILE` and any `--key=value` config keys.
int serve_main(int argc, char** argv);
}  // namespace sluice::broker
