#pragma once
// Cluster membership in ZooKeeper, in Kafka's layout (docs/formats/zookeeper.md): brokers
// register as ephemeral `/brokers/ids/<id>` znodes holding their endpoints and rack, and one of
// them is the controller, whoever holds the ephemeral `/controller`; every new controller bumps
// `/controller_epoch` with a conditional write, so an old controller's writes can be fenced.
//
// Threading: blocking calls on a zk_client; run them on a control thread, never on a reactor.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "replication/zk_client.h"

namespace sluice::replication {

struct broker_endpoint {
    std::string listener = "PLAINTEXT";  // listener name (= security protocol here)
    std::string host;
    int32_t port = 0;
};

struct broker_registration {
    int32_t id = -1;
    std::vector<broker_endpoint> endpoints;  // the first is the one clients are given
    std::optional<std::string> rack;
    int64_t timestamp_ms = 0;
};

// The znode body: Kafka's version-5 broker registration JSON.
std::string encode_registration(const broker_registration& b);
result<broker_registration> decode_registration(int32_t id, std::string_view json);

// Creates `/brokers/ids/<id>` (ephemeral, owned by this client's session). When the id is
// already registered by another live session, fails with errc::broker_id_in_use and a message
// naming the id and the other session, as Kafka refuses a second broker with the same id.
result<void> register_broker(zk_client& zk, const broker_registration& b);

// The registered brokers, by id (sorted). Znodes that do not decode are skipped and counted.
struct live_brokers {
    std::vector<broker_registration> brokers;
    size_t unreadable = 0;
};
result<live_brokers> read_live_brokers(zk_client& zk);

// The outcome of a bid for the controller role.
struct controller_claim {
    bool won = false;
    int32_t controller_id = -1;  // who is controller now (-1 if nobody could be read)
    int32_t epoch = 0;           // the controller epoch; this broker's when it won
};

// Tries to create `/controller` for `broker_id`. The winner bumps `/controller_epoch` with a
// conditional write (created as 1 the first time). Anyone else learns who holds the role.
result<controller_claim> claim_controller(zk_client& zk, int32_t broker_id);

}  // namespace sluice::replication
