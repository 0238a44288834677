#pragma once
// Followers copy their leaders' logs (cluster mode, DESIGN.md section 7). One fetcher thread per
// leader broker this broker follows partitions of, each with its own blocking connection:
//  1. a partition followed in a new leader epoch first finds where its log diverges from the
//     leader's (OffsetForLeaderEpoch for its newest epoch, replication::truncation_point(),
//     KIP-101/279) and truncates there;
//  2. then Fetch (with this broker's replica id and the leader epoch it follows) from its log
//     end, appends what comes (offsets and epochs kept), and takes the leader's high watermark.
// Everything on a partition is done on its core (shard::position / replica_append /
// replica_truncate); the fetcher waits for each answer, so one partition's appends are in order.
//
// Threading: follow()/unfollow() from any thread (the shards call them); the fetcher threads
// own their connections.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "model/fundamental.h"

namespace sluice::broker {

class server;

class replica_fetchers {
public:
    explicit replica_fetchers(server& srv) : _srv(srv) {}
    ~replica_fetchers();

    // Follow `leader` for `tp` in `epoch` (replacing what was followed before).
    void follow(const model::tp& tp, int32_t leader, int32_t epoch);
    void unfollow(const model::tp& tp);
    // Ends every fetcher thread (shutdown).
    void stop();

private:
    struct followed {
        int32_t epoch = -1;
        bool truncated = false;  // the divergence check of this epoch is done
        int64_t retry_after_ms = 0;
    };
    struct fetcher {
        int32_t leader = -1;
        std::thread thread;
        std::map<model::tp, followed> parts;  // guarded by replica_fetchers::_mu
    };
    void run(fetcher* f);

    server& _srv;
    std::mutex _mu;
    std::condition_variable _cv;
    std::map<int32_t, std::unique_ptr<fetcher>> _fetchers;
    std::atomic<bool> _stopping{false};
};

}  // namespace sluice::broker
