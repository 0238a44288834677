#include "tools/cli.h"

#include <csignal>
#include <cstdio>

#include "tools/commands.h"

#include <fstream>
#include <map>

#include "security/sasl.h"

namespace sluice::tools {

std::vector<option_spec> common_options() {
    return {{"bootstrap-server"},  {"client-id"},       {"request-timeout-ms"},
            {"command-config"},    {"security-protocol"}, {"ssl-ca-location"},
            {"ssl-certificate-location"}, {"ssl-key-location"},
            {"sasl-mechanism"},    {"sasl-username"},   {"sasl-password"},  {"help", false}};
}

namespace {

result<void> apply_protocol(const std::string& protocol, connection_options& c) {
    if (protocol != "PLAINTEXT" && protocol != "SSL" && protocol != "SASL_PLAINTEXT" &&
        protocol != "SASL_SSL") {
        return error(errc::bad_argument, "security.protocol '" + protocol +
                                             "': PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL");
    }
    c.tls = protocol == "SSL" || protocol == "SASL_SSL";
    return ok();
}

// Kafka client properties (kafka-*.sh --command-config): security.protocol, sasl.mechanism and
// the credentials, as sasl.username/sasl.password or in a sasl.jaas.config entry.
result<void> read_command_config(const std::string& path, connection_options& c) {
    std::ifstream in(path);
    if (!in) return error(errc::bad_argument, "--command-config: cannot read " + path);
    std::map<std::string, std::string> props;
    std::string line;
    while (std::getline(in, line)) {
        auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#' || line[start] == '!') continue;
        auto eq = line.find_first_of("=:", start);
        if (eq == std::string::npos) continue;
        auto trim = [](std::string v) {
            v.erase(0, v.find_first_not_of(" \t"));
            v.erase(v.find_last_not_of(" \t\r") + 1);
            return v;
        };
        props[trim(line.substr(start, eq - start))] = trim(line.substr(eq + 1));
    }
    std::string protocol = props.contains("security.protocol") ? props["security.protocol"] : "PLAINTEXT";
    if (auto r = apply_protocol(protocol, c); !r) return r;
    if (protocol.rfind("SASL_", 0) == 0) {
        c.sasl_mechanism = props.contains("sasl.mechanism") ? props["sasl.mechanism"] : "PLAIN";
    }
    // PEM files under Kafka's or librdkafka's names.
    for (const char* k : {"ssl.truststore.location", "ssl.ca.location"}) {
        if (props.contains(k)) c.tls_ca_file = props[k];
    }
    for (const char* k : {"ssl.keystore.location", "ssl.certificate.location"}) {
        if (props.contains(k)) c.tls_certificate_file = props[k];
    }
    if (props.contains("ssl.key.location")) c.tls_key_file = props["ssl.key.location"];
    if (props.contains("ssl.endpoint.identification.algorithm")) {
        c.tls_verify_hostname = !props["ssl.endpoint.identification.algorithm"].empty();
    }
    if (props.contains("sasl.username")) c.sasl_username = props["sasl.username"];
    if (props.contains("sasl.password")) c.sasl_password = props["sasl.password"];
    if (props.contains("sasl.jaas.config")) {
        auto j = security::parse_jaas(props["sasl.jaas.config"]);
        if (!j) return error(errc::bad_argument, "sasl.jaas.config: " + j.error().detail());
        if (j->options.contains("username")) c.sasl_username = j->options["username"];
        if (j->options.contains("password")) c.sasl_password = j->options["password"];
    }
    return ok();
}

}  // namespace

result<client_options> client_options_from(const args& a) {
    client_options o;
    o.bootstrap = a.get_or("bootstrap-server", "localhost:9092");
    o.conn.client_id = a.get_or("client-id", "sluice");
    auto t = a.integer("request-timeout-ms", 30000, 1, 3600 * 1000);
    if (!t) return t.error();
    o.conn.timeout_ms = static_cast<int>(*t);
    if (a.has("command-config")) {
        if (auto r = read_command_config(a.get_or("command-config", ""), o.conn); !r) return r.error();
    }
    if (a.has("security-protocol")) {
        std::string p = a.get_or("security-protocol", "");
        if (auto r = apply_protocol(p, o.conn); !r) return r.error();
        if (p.rfind("SASL_", 0) == 0 && o.conn.sasl_mechanism.empty()) o.conn.sasl_mechanism = "PLAIN";
    }
    if (a.has("ssl-ca-location")) o.conn.tls_ca_file = a.get_or("ssl-ca-location", "");
    if (a.has("ssl-certificate-location")) o.conn.tls_certificate_file = a.get_or("ssl-certificate-location", "");
    if (a.has("ssl-key-location")) o.conn.tls_key_file = a.get_or("ssl-key-location", "");
    if (a.has("sasl-mechanism")) o.conn.sasl_mechanism = a.get_or("sasl-mechanism", "");
    if (a.has("sasl-username")) o.conn.sasl_username = a.get_or("sasl-username", "");
    if (a.has("sasl-password")) o.conn.sasl_password = a.get_or("sasl-password", "");
    if (!o.conn.sasl_mechanism.empty() && o.conn.sasl_username.empty()) {
        return error(errc::bad_argument, "SASL needs a user name (--sasl-username or --command-config)");
    }
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
    if (cmd == "user") return user_main(argc, argv);
    if (cmd == "acl") return acl_main(argc, argv);
    if (cmd == "quota") return quota_main(argc, argv);
    if (cmd == "dump-log") return dump_log_main(argc, argv);
    std::fprintf(stderr, "sluice: unknown command '%s' (try sluice --help)\n", cmd.c_str());
    return exit_usage;
}

}  // namespace sluice::tools
