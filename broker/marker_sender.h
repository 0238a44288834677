#pragma once
// Sends WriteTxnMarkers to other brokers for the transaction coordinators of this broker (a
// partition's leader writes the marker; when that leader is elsewhere in the cluster, the
// coordinator asks it over the wire as Kafka's TransactionMarkerChannelManager does).
//
// One background thread with a bounded queue and one connection per destination broker,
// because the client it talks with blocks. Jobs are answered on the reactor that queued them.
// Owned by the server; stop() ends the thread, answering what is still queued with an error.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "protocol/request.h"
#include "tools/kafka_client.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::broker {

class marker_sender {
public:
    // The per-partition answers, or nullopt when the broker could not be reached or answered
    // garbage (every partition is then retried).
    using reply = std::function<void(std::optional<protocol::write_txn_markers_response>)>;
    static constexpr size_t max_queued = 4096;
    static constexpr int timeout_ms = 10000;

    explicit marker_sender(int32_t self_id) : _self(self_id) {}
    // SASL for the connections to other brokers (server::inter_broker()); before start.
    // How to reach other brokers (server::inter_broker(): SASL, TLS); before start.
    void set_client_options(tools::connection_options o) { _client = std::move(o); }
    ~marker_sender() { stop(); }

    // Queues a request for broker `id` at host:port; `done` runs on `origin`.
    void send(int32_t id, std::string host, int32_t port,
              protocol::write_txn_markers_request req, runtime::reactor* origin, reply done);
    void stop();

private:
    struct job {
        int32_t id;
        std::string host;
        int32_t port;
        protocol::write_txn_markers_request req;
        runtime::reactor* origin;
        reply done;
    };
    void run();
    std::optional<protocol::write_txn_markers_response> deliver(job& j);

    int32_t _self;
    tools::connection_options _client;
    std::mutex _mu;
    std::condition_variable _cv;
    std::deque<job> _jobs;
    bool _stopping = false;
    std::thread _thread;
    struct peer;
    std::map<int32_t, std::shared_ptr<peer>> _peers;  // used by the thread only
};

}  // namespace sluice::broker
