#pragma once
// The broker's edge of security: what each listener demands (TLS, SASL, both), the principal a
// request runs as, the ACL checks handlers make, client quotas, and the admin APIs that manage
// ACLs, SCRAM credentials and quotas. The mechanisms themselves live in security/ (SASL, SCRAM,
// the authorizer, the persisted state) and net/tls.h (TLS).
//
// Threading: listener_security and the authorizer settings are fixed at start-up and read from
// every core; the security state is read through snapshots; the quota tracker is shared by all
// cores behind a mutex, touched only when a quota applies to the client.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "broker/config.h"
#include "security/acl.h"
#include "tools/kafka_client.h"

namespace sluice::net {
class tls_context;
}

namespace sluice::broker {

struct request_context;

enum class security_protocol { plaintext, ssl, sasl_plaintext, sasl_ssl };
const char* to_string(security_protocol p);

struct listener_security {
    std::string name;  // the listener's name ("SASL_SSL", "CLIENT", ...)
    security_protocol protocol = security_protocol::plaintext;
    std::shared_ptr<net::tls_context> tls;  // ssl and sasl_ssl
    std::vector<std::string> mechanisms;    // sasl_*: sasl.enabled.mechanisms
    std::map<std::string, std::string> plain_users;  // PLAIN: user -> password (JAAS entry)
    int64_t reauth_ms = 0;                           // connections.max.reauth.ms
    bool uses_tls() const {
        return protocol == security_protocol::ssl || protocol == security_protocol::sasl_ssl;
    }
    bool uses_sasl() const {
        return protocol == security_protocol::sasl_plaintext ||
               protocol == security_protocol::sasl_ssl;
    }
};

// One entry per configured listener, in `listeners` order; an error names the key at fault
// (a listener without a protocol, unreadable certificates, a bad JAAS entry).
result<std::vector<listener_security>> make_listener_security(const broker_config& cfg);
// How this broker authenticates to the others (replica fetchers, transaction markers) on the
// inter-broker listener (inter.broker.listener.name, else the first): with SASL, the mechanism
// is sasl.mechanism.inter.broker.protocol and the credentials the username/password options of
// that listener's JAAS entry, as in Kafka; with TLS, the listener's truststore verifies the
// other brokers and its PEM certificate and key are presented to them.
struct inter_broker_auth {
    std::string listener;
    std::string mechanism;  // empty: no SASL
    std::string username;
    std::string password;
    // SSL / SASL_SSL: the listener's own truststore and (PEM) keystore serve as the client side.
    bool tls = false;
    std::string ca_file, certificate_file, key_file;
    bool verify_hostname = true;  // ssl.endpoint.identification.algorithm (https by default)
    // The same as the brokers' client takes it (replica fetchers, marker senders).
    tools::connection_options client_options() const;
};
result<inter_broker_auth> make_inter_broker_auth(const broker_config& cfg,
                                                 const std::vector<listener_security>& listeners);

// authorizer.class.name, super.users, allow.everyone.if.no.acl.found.
result<security::authorizer_config> make_authorizer_config(const broker_config& cfg);

// The checks handlers make. `name` is the resource's name (kafka-cluster for the cluster).
bool allowed(const request_context& ctx, security::acl_operation op, security::resource_type type,
             const std::string& name);
bool allowed_on_cluster(const request_context& ctx, security::acl_operation op);
// Whether some ACL lets the principal do `op` on at least one resource of `type` (Kafka's
// test for idempotent producers: WRITE on any topic stands in for IDEMPOTENT_WRITE).
bool allowed_on_any(const request_context& ctx, security::acl_operation op, security::resource_type type);

// Byte-rate quotas (producer_byte_rate, consumer_byte_rate) per user and client id, measured
// over `windows` windows of `window` each. record() adds the bytes a request moved and returns
// how long the client must now wait for its rate to fall back to the quota (0: within it).
class quota_tracker {
  public:
    using clock = std::chrono::steady_clock;
    quota_tracker(int windows, std::chrono::milliseconds window) : _windows(windows), _window(window) {}
    int32_t record(const std::string& key, const std::string& user, const std::string& client_id,
                   double quota_bytes_per_s, uint64_t bytes, clock::time_point now);

  private:
    struct meter {
        std::vector<std::pair<clock::time_point, uint64_t>> samples;  // window start, bytes
    };
    std::mutex _mu;
    std::map<std::string, meter> _meters;  // "key|user|client"
    int _windows;
    std::chrono::milliseconds _window;
};
// Bound on meters kept: the oldest idle ones go first beyond it.
inline constexpr size_t quota_meters_max = 100'000;

// The principal's user name for quotas ("alice" of "User:alice"; "" for ANONYMOUS).
std::string quota_user(const request_context& ctx);
// Applies the quota `key` to a request that moved `bytes`: the throttle time to answer with
// (and the connection is muted for it). 0 when no quota applies.
int32_t apply_quota(request_context& ctx, const char* key, uint64_t bytes);

}  // namespace sluice::broker
