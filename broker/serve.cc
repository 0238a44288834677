#include "broker/serve.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "broker/config.h"
#include "broker/server.h"

namespace sluice::broker {

namespace {
void usage() {
    std::fprintf(stderr,
                 "usage: sluice serve [--config server.properties] [--key=value ...]\n"
                 "  Any broker configuration key (Kafka's names) may be given as --key=value,\n"
                 "  e.g. --listeners=PLAINTEXT://127.0.0.1:9093 --log.dirs=/tmp/s1 "
                 "--num.partitions=3\n");
}
}  // namespace

int serve_main(int argc, char** argv) {
    std::optional<std::string> config_path;
    std::vector<std::pair<std::string, std::string>> overrides;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            usage();
            return 0;
        }
        if (a == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a.rfind("--config=", 0) == 0) {
            config_path = a.substr(9);
        } else if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
            auto eq = a.find('=');
            overrides.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
        } else if (a.rfind("--", 0) == 0 && i + 1 < argc) {
            overrides.emplace_back(a.substr(2), argv[++i]);
        } else {
            std::fprintf(stderr, "sluice serve: unexpected argument '%s'\n", a.c_str());
            usage();
            return 2;
        }
    }
    auto cfg = broker_config::load(config_path, overrides);
    if (!cfg) {
        std::fprintf(stderr, "sluice serve: %s\n", cfg.error().describe().c_str());
        return 2;
    }
    log::level lvl;
    if (log::parse_level(cfg->string_value("sluice.log.level"), lvl)) log::set_level(lvl);

    // Block the stop signals in every thread; this one waits for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    auto srv = server::create(std::move(*cfg));
    if (!srv) {
        std::fprintf(stderr, "sluice serve: %s\n", srv.error().describe().c_str());
        return 1;
    }
    if (auto started = (*srv)->start(); !started) {
        std::fprintf(stderr, "sluice serve: %s\n", started.error().describe().c_str());
        return 1;
    }
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log::info("broker", "received ", ::strsignal(sig), "; shutting down");
    (*srv)->controlled_shutdown();
    (*srv)->stop();
    (*srv)->wait();
    log::info("broker", "stopped cleanly");
    return 0;
}

}  // namespace sluice::broker
