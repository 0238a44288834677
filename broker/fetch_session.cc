#include "broker/fetch_session.h"

#include <algorithm>
#include <cstring>

namespace sluice::broker {

namespace {

// KIP-227's epochs: 0 opens a session, -1 closes it (or asks for none); incremental fetches
// count up from 1 and wrap back to 1.
constexpr int32_t initial_epoch = 0;
constexpr int32_t final_epoch = -1;

int32_t next_epoch(int32_t epoch) { return epoch == INT32_MAX ? 1 : epoch + 1; }

bool same_id(const protocol::uuid& a, const protocol::uuid& b) {
    return std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) == 0;
}

}  // namespace

fetch_session_cache::fetch_session_cache(size_t slots, std::chrono::milliseconds eviction_idle)
    : _slots(slots), _eviction_idle(eviction_idle), _rng(std::random_device{}()) {}

fetch_session_cache::resolved fetch_session_cache::resolve(protocol::fetch_request& req,
                                                           bool topic_ids,
                                                           clock::time_point now) {
    if (req.session_epoch == final_epoch || req.session_epoch == initial_epoch) {
        // A full fetch. It closes the session it names; epoch 0 opens a new one.
        if (req.session_id != 0) _sessions.erase(req.session_id);
        if (req.session_epoch == final_epoch) return {};
        return {kafka_error::none, create(req, topic_ids, now), false};
    }
    if (req.session_id == 0) return {kafka_error::invalid_fetch_session_epoch, 0, false};
    auto it = _sessions.find(req.session_id);
    if (it == _sessions.end()) return {kafka_error::fetch_session_id_not_found, 0, false};
    session& s = it->second;
    if (s.topic_ids != topic_ids) return {kafka_error::fetch_session_topic_id_error, 0, false};
    if (req.session_epoch != s.next_epoch) {
        return {kafka_error::invalid_fetch_session_epoch, 0, false};
    }
    s.next_epoch = next_epoch(s.next_epoch);
    s.last_used = now;
    update(s, req);
    expand(s, req);
    return {kafka_error::none, req.session_id, true};
}

int32_t fetch_session_cache::create(const protocol::fetch_request& req, bool topic_ids,
                                    clock::time_point now) {
    if (_slots == 0 || !make_room(now)) return 0;
    int32_t id = 0;
    std::uniform_int_distribution<int32_t> pick(1, INT32_MAX);
    while (id == 0 || _sessions.contains(id)) id = pick(_rng);
    session& s = _sessions[id];
    s.topic_ids = topic_ids;
    s.last_used = now;
    update(s, req);
    return id;
}

bool fetch_session_cache::make_room(clock::time_point now) {
    if (_sessions.size() < _slots) return true;
    auto oldest = std::min_element(_sessions.begin(), _sessions.end(), [](const auto& a, const auto& b) {
        return a.second.last_used < b.second.last_used;
    });
    if (now - oldest->second.last_used < _eviction_idle) return false;
    _sessions.erase(oldest);
    return true;
}

fetch_session_cache::partition_state* fetch_session_cache::find(session& s,
                                                                const std::string& topic,
                                                                const protocol::uuid& id,
                                                                int32_t partition) {
    for (auto& p : s.partitions) {
        if (p.partition != partition) continue;
        if (s.topic_ids ? same_id(p.topic_id, id) : p.topic == topic) return &p;
    }
    return nullptr;
}

// The request's partitions join the session or update their position; forgotten ones leave.
void fetch_session_cache::update(session& s, const protocol::fetch_request& req) {
    for (const auto& t : req.topics) {
        for (const auto& fp : t.partitions) {
            partition_state* p = find(s, t.topic, t.topic_id, fp.partition);
            if (p == nullptr) {
                p = &s.partitions.emplace_back();
                p->topic = t.topic;
                p->topic_id = t.topic_id;
                p->partition = fp.partition;
            }
            p->request = fp;
        }
    }
    for (const auto& f : req.forgotten_topics_data) {
        std::erase_if(s.partitions, [&](const partition_state& p) {
            bool topic = s.topic_ids ? same_id(p.topic_id, f.topic_id) : p.topic == f.topic;
            return topic && std::find(f.partitions.begin(), f.partitions.end(), p.partition) !=
                                f.partitions.end();
        });
    }
}

// The request as if it listed every partition of the session, grouped by topic.
void fetch_session_cache::expand(const session& s, protocol::fetch_request& req) {
    req.topics.clear();
    req.forgotten_topics_data.clear();
    for (const auto& p : s.partitions) {
        auto same = [&](const protocol::fetch_request::fetch_topic& t) {
            return s.topic_ids ? same_id(t.topic_id, p.topic_id) : t.topic == p.topic;
        };
        auto it = std::find_if(req.topics.begin(), req.topics.end(), same);
        if (it == req.topics.end()) {
            it = req.topics.emplace(req.topics.end());
            it->topic = p.topic;
            it->topic_id = p.topic_id;
        }
        it->partitions.push_back(p.request);
    }
}

void fetch_session_cache::finish(const resolved& r, protocol::fetch_response& resp) {
    if (r.session_id == 0) return;
    auto it = _sessions.find(r.session_id);
    if (it == _sessions.end()) return;  // evicted meanwhile: the response goes out whole
    session& s = it->second;
    for (auto& t : resp.responses) {
        std::erase_if(t.partitions, [&](const protocol::fetch_response::partition_data& pd) {
            partition_state* p = find(s, t.topic, t.topic_id, pd.partition_index);
            if (p == nullptr) return false;
            bool news = pd.error_code != 0 || (!pd.records.is_null() && pd.records.size_bytes() > 0) ||
                        pd.high_watermark != p->sent_high_watermark ||
                        pd.last_stable_offset != p->sent_last_stable ||
                        pd.log_start_offset != p->sent_log_start;
            p->sent_high_watermark = pd.high_watermark;
            p->sent_last_stable = pd.last_stable_offset;
            p->sent_log_start = pd.log_start_offset;
            return r.incremental && !news;
        });
    }
    if (r.incremental) {
        std::erase_if(resp.responses, [](const auto& t) { return t.partitions.empty(); });
    }
}

}  // namespace sluice::broker
