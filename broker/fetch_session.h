#pragma once
// Incremental fetch sessions (KIP-227). A client that fetches the same partitions over and over
// (the Java consumer does by default) opens a session with a full fetch (session id 0, epoch 0)
// and is given an id; later fetches name the id and the next epoch and list only the
// partitions whose fetch position changed, plus the ones to forget. The broker answers such an
// incremental fetch with only the partitions that have something new: records, an error, or a
// high watermark / last stable offset / log start offset other than the one last sent.
//
// Ownership and threading: one cache per shard (the connection's core), used only there; a
// session is found only by requests arriving on that core, which is where a client's
// connection to this broker stays. A request on another core, or after eviction, gets
// FETCH_SESSION_ID_NOT_FOUND, on which clients fall back to a full fetch, as KIP-227 intends.
// The cache holds at most `slots` sessions (max.incremental.fetch.session.cache.slots divided
// among the cores); when it is full a new session takes the place of the least recently used
// one only if that one has been idle for `eviction_idle`, else the fetch is served without a
// session (id 0).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/kafka_error.h"
#include "protocol/request.h"

namespace sluice::broker {

class fetch_session_cache {
public:
    using clock = std::chrono::steady_clock;
    // Kafka's minimum idle time before a session may be evicted for a new one.
    static constexpr std::chrono::milliseconds default_eviction_idle{120'000};

    explicit fetch_session_cache(size_t slots,
                                 std::chrono::milliseconds eviction_idle = default_eviction_idle);

    // What a request's session fields resolved to.
    struct resolved {
        kafka_error error = kafka_error::none;  // set: answer with this error and no partitions
        int32_t session_id = 0;                  // the id to return (0: no session)
        bool incremental = false;                // filter the response through the session
    };

    // Applies the session fields of a Fetch v7+ request. For an incremental fetch, `req.topics`
    // is rewritten to every partition of the session (with their cached positions), so the rest
    // of the fetch runs as if the client had listed them all. `topic_ids`: v13+, where
    // partitions are named by topic id.
    resolved resolve(protocol::fetch_request& req, bool topic_ids, clock::time_point now);

    // Called with the finished response: records what is being sent for each partition and, in
    // an incremental response, leaves out the partitions with nothing new.
    void finish(const resolved& r, protocol::fetch_response& resp);

    size_t size() const { return _sessions.size(); }

private:
    struct partition_state {
        std::string topic;
        protocol::uuid topic_id;
        int32_t partition = 0;
        protocol::fetch_request::fetch_partition request;  // the latest position asked for
        // What the last response carried for it; -2 until a response has.
        int64_t sent_high_watermark = -2;
        int64_t sent_last_stable = -2;
        int64_t sent_log_start = -2;
    };
    struct session {
        int32_t next_epoch = 1;
        bool topic_ids = false;
        std::vector<partition_state> partitions;
        clock::time_point last_used;
    };

    int32_t create(const protocol::fetch_request& req, bool topic_ids, clock::time_point now);
    bool make_room(clock::time_point now);
    static void update(session& s, const protocol::fetch_request& req);
    static void expand(const session& s, protocol::fetch_request& req);
    static partition_state* find(session& s, const std::string& topic,
                                 const protocol::uuid& id, int32_t partition);

    size_t _slots;
    std::chrono::milliseconds _eviction_idle;
    std::mt19937 _rng;
    std::unordered_map<int32_t, session> _sessions;
};

}  // namespace sluice::broker
