// The `sluice` command: `sluice serve` runs a broker; the other subcommands are clients that
// talk the Kafka protocol to any broker.

#include <cstdio>
#include <cstring>
#include <string>

#include "broker/serve.h"
#include "sluice_version.h"
#include "tools/cli.h"

#ifdef SLUICE_HAVE_JEMALLOC
// jemalloc's settings for this binary (why: broker/allocator.h).
extern "C" {
const char* malloc_conf = "background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:5000";
}
#endif

int main(int argc, char** argv) {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        std::fprintf(
            stderr,
            "usage: sluice <command> [options]   (sluice --version)\n"
            "  serve      run a broker (sluice serve --help)\n"
            "  topic      create | list | describe | alter-config | add-partitions | delete\n"
            "  produce    write records from stdin to a topic\n"
            "  consume    print records of a topic\n"
            "  bench      load generator against any Kafka broker\n"
            "  group      list | describe | reset-offsets | delete consumer groups\n"
            "  cluster    describe: controller, brokers, under-replicated partitions\n"
            "  txn        list | describe | find-hanging | abort transactions\n"
            "  user       add | list | delete SCRAM users\n"
            "  acl        add | list | remove ACL bindings\n"
            "  quota      alter | describe client quotas\n"
            "  dump-log   print (or --verify) segments and indexes batch by batch\n");
        return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    if (cmd == "--version" || cmd == "version") {
        std::printf("sluice %s (commit %s)\n", SLUICE_VERSION, SLUICE_GIT_COMMIT);
        return 0;
    }
    if (cmd == "serve") return sluice::broker::serve_main(argc - 2, argv + 2);
    return sluice::tools::cli_main(cmd, argc - 2, argv + 2);
}
