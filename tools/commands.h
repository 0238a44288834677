#pragma once
// The client subcommands of `sluice` and what they share. Each `*_main` takes the arguments after
// its command word and returns the process exit code: 0 success, 1 the operation failed (a Kafka
// error, an unreachable broker, records not acknowledged), 2 a usage error.

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "tools/args.h"
#include "tools/kafka_client.h"

namespace sluice::tools {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;

int topic_main(int argc, char** argv);
int produce_main(int argc, char** argv);
int consume_main(int argc, char** argv);
int bench_main(int argc, char** argv);
int group_main(int argc, char** argv);  // group_cli.cc
int cluster_main(int argc, char** argv);  // cluster_cmd.cc
int txn_main(int argc, char** argv);      // txn_cmd.cc
int user_main(int argc, char** argv);     // security_cmd.cc
int acl_main(int argc, char** argv);      // security_cmd.cc
int quota_main(int argc, char** argv);    // security_cmd.cc
int dump_log_main(int argc, char** argv);  // dump_log_cmd.cc

// Options every client subcommand accepts.
std::vector<option_spec> common_options();
// Client options from --bootstrap-server, --client-id and --request-timeout-ms.
[[nodiscard]] result<client_options> client_options_from(const args& a);

// The arguments of a command that names one topic (`sluice produce TOPIC`, `sluice consume
// TOPIC`): parses them, prints `usage` for --help, a parse error or a missing/extra topic, and
// then returns nullopt with `exit_code` set.
[[nodiscard]] std::optional<args> parse_topic_command(const char* what, int argc, char** argv,
                                                      const std::vector<option_spec>& specs,
                                                      void (*usage)(), int& exit_code);

// Prints "sluice <what>: <message>" to stderr and returns the exit code for the error
// (exit_usage for errc::bad_argument, else exit_failed).
int report(const char* what, const error& e);

}  // namespace sluice::tools
