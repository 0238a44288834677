#pragma once
// The broker's security metadata: SCRAM credentials, ACL bindings and client quotas, kept as
// one immutable `security_state` that every core reads through a snapshot, and changed only
// through `security_store::update()`, which persists the new state before publishing it.
//
// Persistence (docs/formats/security.md): a single broker keeps `<log dir>/sluice-security`,
// rewritten atomically; a cluster keeps the same text in a ZooKeeper znode that every broker
// watches (broker/cluster.cc provides that backend), so a change made through any broker is
// enforced by all of them. Passwords are never stored: only salted SCRAM keys.
//
// Threading: update() may be called from any thread (writers are serialised); snapshot() is
// lock-free and safe from every core.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/result.h"
#include "security/acl.h"
#include "security/sasl.h"

namespace sluice::security {

// Whom a quota applies to: a user, a client id, or both; a name of nullopt is the default
// entity (Kafka's <default>) of that type.
struct quota_entity {
    bool has_user = false;
    std::optional<std::string> user;
    bool has_client_id = false;
    std::optional<std::string> client_id;
    auto operator<=>(const quota_entity&) const = default;
};
std::string to_string(const quota_entity& e);  // "user=alice,client-id=<default>"

// Kafka's quota keys that Sluice enforces.
inline constexpr const char* producer_byte_rate = "producer_byte_rate";
inline constexpr const char* consumer_byte_rate = "consumer_byte_rate";
bool is_quota_key(const std::string& key);

struct security_state {
    // user -> mechanism -> credential
    std::map<std::string, std::map<scram_mechanism, scram_credential>> scram;
    acl_set acls;
    std::map<quota_entity, std::map<std::string, double>> quotas;
    // Dynamic broker configs (AlterConfigs on a BROKER resource), kept here because they need
    // the same persistence and cluster-wide sharing: by entity ("" = every broker, Kafka's
    // <default>; "<broker id>" = one broker), key -> value.
    std::map<std::string, std::map<std::string, std::string>> broker_configs;

    // The quota `key` for a client, with Kafka's precedence (user+client, user+default client,
    // user, default user+client, default user+default client, default user, client, default
    // client); nullopt when none applies.
    std::optional<double> quota_for(const std::string& user, const std::string& client_id,
                                    const std::string& key) const;
};

std::string encode_state(const security_state& s);
result<security_state> decode_state(std::string_view text);

// Where the encoded state lives. load() returns "" when nothing was stored yet.
class store_backend {
  public:
    virtual ~store_backend() = default;
    virtual result<std::string> load() = 0;
    virtual result<void> save(const std::string& text) = 0;
    // False while the backend cannot be read (a ZooKeeper session not established yet or
    // without a lease): reload() then keeps the state it has instead of reading "nothing".
    virtual bool ready() const { return true; }
};
std::unique_ptr<store_backend> file_backend(std::string path);

class security_store {
  public:
    static result<std::unique_ptr<security_store>> open(std::unique_ptr<store_backend> backend);

    std::shared_ptr<const security_state> snapshot() const { return _current.load(); }
    // Whether any quota is set: a plain flag, so the produce and fetch paths of a broker
    // without quotas never touch the shared snapshot's reference count.
    bool has_quotas() const { return _has_quotas.load(std::memory_order_relaxed); }
    // Applies `change` to a copy of the current state, persists it and publishes it. `change`
    // may refuse (an error value): nothing is then written.
    result<void> update(const std::function<result<void>(security_state&)>& change);
    // Re-reads the backend (another broker changed it).
    result<void> reload();

  private:
    explicit security_store(std::unique_ptr<store_backend> b) : _backend(std::move(b)) {}
    std::unique_ptr<store_backend> _backend;
    std::mutex _write_mu;
    void publish(std::shared_ptr<const security_state> next);

    std::atomic<std::shared_ptr<const security_state>> _current;
    std::atomic<bool> _has_quotas{false};
};

}  // namespace sluice::security
