#include "tools/cli.h"

#include <csignal>
#include <cstdio>

#include "tools/commands.h"

namespace sluice::tools {

std::vector<option_spec> common_options() {
    return {{"bootstrap-server"}, {"client-id"}, {"request-timeout-ms"}, {"help", false}};
}

result<client_options> client_options_from(const args& a) {
    client_options o;
    o.bootstrap = a.get_or("bootstrap-server", "localhost:9092");
    o.conn.client_id = a.get_or("client-id", "sluice");
    auto t = a.integer("request-timeout-ms", 30000, 1, 3600 * 1000);
    if (!t) return t.error();
    o.conn.timeout_ms = static_cast<int>(*t);
    return o;
}

int report(const char* what, const error& e) {
    std::fprintf(stderr, "sluice %s: %s\n", what, user_message(e).c_str());
    return e.is(errc::bad_argument) ? exit_usage : exit_failed;
}

std::optional<args> parse_topic_command(const char* what, int argc, char** argv,
                                       const std::vector<option_spec>& specs, void (*usage)(),
                                       int& exit_code) {
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        usage();
        exit_code = report(what, a.error());
        return std::nullopt;
    }
    if (a->has("help") || a->positional().size() != 1) {
        usage();
        exit_code = a->has("help") ? exit_ok : exit_usage;
        return std::nullopt;
    }
    return std::move(*a);
}

int cli_main(const std::string& cmd, int argc, char** argv) {
    // A closed stdout (sluice consume | head) ends the command through write errors, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
    if (cmd == "topic") return topic_main(argc, argv);
    if (cmd == "produce") return produce_main(argc, argv);
    if (cmd == "consume") return consume_main(argc, argv);
    if (cmd == "bench") return bench_main(argc, argv);
    if (cmd == "group") return group_main(argc, argv);
    if (cmd == "cluster") return cluster_main(argc, argv);
    if (cmd == "txn") return txn_main(argc, argv);
    std::fprintf(stderr, "sluice: unknown command '%s' (try sluice --help)\n", cmd.c_str());
    return exit_usage;
}

}  // namespace sluice::tools
