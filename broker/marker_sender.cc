#include "broker/marker_sender.h"

#include "base/log.h"
#include "runtime/reactor.h"
#include "tools/kafka_client.h"

namespace sluice::broker {

struct marker_sender::peer {
    std::string host;
    int32_t port = 0;
    std::unique_ptr<tools::connection> conn;
};

void marker_sender::send(int32_t id, std::string host, int32_t port,
                         protocol::write_txn_markers_request req, runtime::reactor* origin,
                         reply done) {
    {
        std::lock_guard lock(_mu);
        if (!_stopping && _jobs.size() < max_queued) {
            if (!_thread.joinable()) _thread = std::thread([this] { run(); });
            _jobs.push_back({id, std::move(host), port, std::move(req), origin, std::move(done)});
            _cv.notify_one();
            return;
        }
    }
    // Full or stopping: the coordinator retries later.
    origin->post([done = std::move(done)] { done(std::nullopt); });
}

void marker_sender::stop() {
    std::deque<job> left;
    {
        std::lock_guard lock(_mu);
        _stopping = true;
        left.swap(_jobs);
        _cv.notify_all();
    }
    if (_thread.joinable()) _thread.join();
    for (auto& j : left) j.origin->post([done = std::move(j.done)] { done(std::nullopt); });
}

void marker_sender::run() {
    while (true) {
        job j;
        {
            std::unique_lock lock(_mu);
            _cv.wait(lock, [this] { return _stopping || !_jobs.empty(); });
            if (_stopping) return;
            j = std::move(_jobs.front());
            _jobs.pop_front();
        }
        auto answer = deliver(j);
        j.origin->post([done = std::move(j.done), answer = std::move(answer)]() mutable {
            done(std::move(answer));
        });
    }
}

std::optional<protocol::write_txn_markers_response> marker_sender::deliver(job& j) {
    auto& p = _peers[j.id];
    if (!p || p->host != j.host || p->port != j.port) {
        p = std::make_shared<peer>();
        p->host = j.host;
        p->port = j.port;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!p->conn) {
            tools::connection_options o = _client;
            o.client_id = "sluice-txn-markers-" + std::to_string(_self);
            o.timeout_ms = timeout_ms;
            auto c = tools::connection::open(
                tools::broker_address{j.host, static_cast<uint16_t>(j.port)}, o);
            if (!c) {
                log::warn("broker", "cannot reach broker ", j.id, " at ", j.host, ":", j.port,
                          " to write transaction markers: ", c.error().describe());
                return std::nullopt;
            }
            p->conn = std::move(*c);
        }
        auto r = p->conn->call<protocol::write_txn_markers_api>(j.req);
        if (r) return std::move(*r);
        // A connection that broke since its last use: reconnect once.
        log::debug("broker", "WriteTxnMarkers to broker ", j.id, ": ", r.error().describe());
        p->conn.reset();
    }
    return std::nullopt;
}

}  // namespace sluice::broker
