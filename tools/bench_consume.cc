// The consumers of `sluice bench`: one Fetch in flight per leader connection, records counted
// from the batch headers (no decompression: the generator measures the broker, not the codec).

#include <chrono>
#include <thread>

#include "model/record_batch.h"
#include "tools/bench_consumer.h"

namespace sluice::tools::bench {

namespace {

constexpr int32_t fetch_max_wait_ms = 100;
// Mode both: how long consumers may trail the producers' deadline to read what they wrote.
constexpr auto end_grace = std::chrono::seconds(30);
// A group member with nothing to fetch checks on its group this often.
constexpr auto idle_wait = std::chrono::milliseconds(20);

}  // namespace

void consumer_worker::run() {
    _started = clock::now();
    auto r = connect();
    if (r && _group) {
        r = join_group();
        if (r) r = await_start();
    } else if (r) {
        std::vector<int32_t> mine;
        std::map<int32_t, int64_t> start;
        for (int32_t p = _index; p < _partitions; p += _s.consumers) {
            mine.push_back(p);
            start[p] = _plan.start.at(static_cast<size_t>(p));
        }
        r = build_lanes(mine, start);
    }
    if (r) r = loop();
    if (r && _group) finish_group();
    if (!r) _ctl.fail("consumer " + std::to_string(_index) + ": " + user_message(r.error()));
}

result<void> consumer_worker::connect() {
    auto c = client::connect(_s.client);
    if (!c) return c.error();
    _client = std::move(*c);
    auto t = _client->topic(_s.topic, true);
    if (!t) return t.error();
    _topic_id = (*t)->id;
    return ok();
}

result<void> consumer_worker::build_lanes(const std::vector<int32_t>& partitions,
                                          const std::map<int32_t, int64_t>& start) {
    SLUICE_ASSERT(_in_flight.empty(), "lanes rebuilt with fetches in flight");
    _lanes.clear();
    _offsets.clear();
    auto t = _client->topic(_s.topic);
    if (!t) return t.error();
    std::map<int32_t, std::vector<int32_t>> by_leader;
    for (int32_t p : partitions) {
        by_leader[(*t)->partitions.at(static_cast<size_t>(p)).leader].push_back(p);
        _offsets[p] = start.at(p);
    }
    for (auto& [leader, ps] : by_leader) {
        auto conn = _client->broker(leader);
        if (!conn) return conn.error();
        fetch_lane lane;
        lane.conn = *conn;
        lane.version = lane.conn->version<protocol::fetch_api>();
        if (_topic_id.is_zero()) lane.version = std::min<int16_t>(lane.version, 12);
        if (lane.version < 0) return error(errc::no_common_version, "Fetch v4+");
        lane.partitions = ps;
        lane.pipelined = _s.fetch_in_flight > 1 && ps.size() == 1 && !_plan.wrap_at.empty();
        lane.issue = _offsets[ps.front()];
        _lanes.push_back(std::move(lane));
    }
    if (_lanes.size() > 1 && _s.fetch_in_flight > 1) {
        // One map of fetch boundaries serves one partition.
        for (auto& lane : _lanes) lane.pipelined = false;
    }
    return ok();
}

std::atomic<int64_t>* consumer_worker::budget() const {
    if (!_ctl.by_records) return nullptr;
    // A group in mode both reads to the end the producers left and counts every record, so a
    // record read twice shows; in consume mode each group reads `records` of the pre-filled log.
    if (_group) return _s.run_mode == mode::consume ? &_group->consume_left : nullptr;
    return &_ctl.consume_left;
}

bool consumer_worker::end_known() const {
    return _s.run_mode == mode::consume || _ctl.producers_done.load();
}

bool consumer_worker::stopping() const {
    if (_ctl.stop.load(std::memory_order_relaxed)) return true;
    if (auto* left = budget(); left && left->load(std::memory_order_relaxed) <= 0) return true;
    if (_s.run_mode == mode::consume) return _ctl.past_deadline();
    // Mode both: read until the end the producers left, however long after the deadline that
    // is (within a grace period, in case records went missing).
    return _ctl.past_deadline() && clock::now() > _ctl.deadline + end_grace;
}

bool consumer_worker::lane_done(const fetch_lane& lane) const {
    if (stopping()) return true;
    if (_plan.end == nullptr || !end_known()) return false;
    for (int32_t p : lane.partitions) {
        if (_offsets.at(p) < (*_plan.end)[static_cast<size_t>(p)].load()) return false;
    }
    return true;
}

result<void> consumer_worker::send_fetch(size_t lane_index, int64_t pipelined_offset) {
    fetch_lane& lane = _lanes[lane_index];
    protocol::fetch_request req;
    req.replica_id = -1;
    req.max_wait_ms = fetch_max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = std::max<int32_t>(_s.fetch_bytes, 1 << 20) * 2;
    req.session_epoch = -1;
    auto& ft = req.topics.emplace_back();
    ft.topic = _s.topic;
    ft.topic_id = _topic_id;
    for (int32_t p : lane.partitions) {
        auto& fp = ft.partitions.emplace_back();
        fp.partition = p;
        fp.fetch_offset = lane.pipelined ? pipelined_offset : _offsets[p];
        fp.partition_max_bytes = _s.fetch_bytes;
    }
    // Read before the send: the producers may finish between the broker's answer and any
    // later look, and this fetch must still count as sent while they wrote.
    bool producers_writing = _s.run_mode == mode::both && !_ctl.producers_done.load();
    auto s = lane.conn->send(protocol::fetch_api::key, lane.version, req);
    if (!s) return s.error();
    _stats.requests.fetch_add(1, std::memory_order_relaxed);
    _in_flight.push_back({lane_index, clock::now(), pipelined_offset, producers_writing});
    ++lane.in_flight;
    return ok();
}

// Sends what a lane may send now: one fetch for a normal lane with none in flight; for a
// pipelined lane, fetches at known offsets up to the window.
result<void> consumer_worker::pump(size_t lane_index) {
    fetch_lane& lane = _lanes[lane_index];
    if (!lane.pipelined) {
        if (lane.in_flight == 0 && !lane_done(lane)) return send_fetch(lane_index, -1);
        return ok();
    }
    while (lane.issue_known && lane.in_flight < _s.fetch_in_flight && !lane_done(lane)) {
        int64_t at = lane.issue;
        if (auto s = send_fetch(lane_index, at); !s) return s;
        auto next = _next_of.find(at);
        lane.issue_known = next != _next_of.end();
        if (lane.issue_known) lane.issue = wrapped(lane.partitions.front(), next->second);
    }
    return ok();
}

int64_t consumer_worker::wrapped(int32_t partition, int64_t offset) const {
    if (!_plan.wrap_at.empty() && offset >= _plan.wrap_at.at(static_cast<size_t>(partition))) {
        return _plan.wrap_to.at(static_cast<size_t>(partition));
    }
    return offset;
}

int64_t consumer_worker::count(std::span<const std::byte> records, int64_t from) {
    int64_t offset = from;
    model::batch_iterator it(records);
    model::batch_header h;
    std::span<const std::byte> batch;
    uint64_t n = 0;
    uint64_t bytes = 0;
    while (it.next(h, batch)) {
        if (h.last_offset() < offset) continue;
        int64_t first = std::max(h.base_offset, offset);
        n += h.control() ? 0 : static_cast<uint64_t>(h.last_offset() - first + 1);
        bytes += batch.size();
        offset = h.last_offset() + 1;
    }
    if (auto* left_of = budget(); left_of && n > 0) {
        int64_t left = left_of->fetch_sub(static_cast<int64_t>(n));
        n = static_cast<uint64_t>(std::clamp<int64_t>(left, 0, static_cast<int64_t>(n)));
    }
    _stats.records.fetch_add(n, std::memory_order_relaxed);
    _stats.wire_bytes.fetch_add(bytes, std::memory_order_relaxed);
    _stats.payload_bytes.fetch_add(n * _s.record_bytes, std::memory_order_relaxed);
    if (_group) {
        _group->records.fetch_add(n, std::memory_order_relaxed);
        _group->wire_bytes.fetch_add(bytes, std::memory_order_relaxed);
        _group->payload_bytes.fetch_add(n * _s.record_bytes, std::memory_order_relaxed);
    }
    return offset;
}

result<void> consumer_worker::receive_one(const sent_fetch& f) {
    fetch_lane& lane = _lanes[f.lane];
    auto r = lane.conn->receive();
    --lane.in_flight;
    if (!r) return r.error();
    protocol::fetch_response resp;
    protocol::reader rd(r->body, connection::response_limits());
    if (auto d = resp.decode(rd, lane.version); !d) {
        return error(errc::protocol, "Fetch response: " + d.error().describe());
    }
    if (resp.error_code != 0) return kafka_failure(resp.error_code, "Fetch");
    for (const auto& t : resp.responses) {
        for (const auto& p : t.partitions) {
            int32_t part = p.partition_index;
            if (p.error_code != 0) {
                _stats.errors.fetch_add(1, std::memory_order_relaxed);
                // A start past the log end (a group's committed offset ahead of what was
                // written) becomes readable once the producers of a both-mode run reach it:
                // keep asking while they write, rather than failing on the first early fetch.
                // A fetch sent while they wrote is asked again even if they have finished
                // since: its answer is older than their last records (a CI run met that).
                constexpr int16_t offset_out_of_range = 1;
                bool ahead_of_log = p.error_code == offset_out_of_range &&
                                    _offsets.contains(part) && p.high_watermark >= 0 &&
                                    _offsets[part] > p.high_watermark && f.producers_writing;
                if (!ahead_of_log && !kafka_error_retriable(p.error_code)) {
                    return kafka_failure(p.error_code, _s.topic + "-" + std::to_string(part));
                }
                if (ahead_of_log) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            if (!_offsets.contains(part)) continue;
            int64_t from = lane.pipelined ? f.offset : _offsets[part];
            int64_t end = count(p.records.memory(), from);
            if (lane.pipelined && end > from) _next_of[from] = end;
            _offsets[part] = wrapped(part, end);
            if (_group) _group->positions[static_cast<size_t>(part)] = _offsets[part];
        }
    }
    if (lane.pipelined && !lane.issue_known && lane.in_flight == 0) {
        // The answer that was awaited: continue from where it ended.
        lane.issue = _offsets[lane.partitions.front()];
        lane.issue_known = true;
    }
    return ok();
}

result<void> consumer_worker::pump_all() {
    for (size_t l = 0; l < _lanes.size(); ++l) {
        if (auto s = pump(l); !s) return s;
    }
    return ok();
}

result<void> consumer_worker::drain() {
    while (!_in_flight.empty()) {
        sent_fetch f = _in_flight.front();
        _in_flight.pop_front();
        if (auto r = receive_one(f); !r) return r;
    }
    return ok();
}

result<void> consumer_worker::loop() {
    if (auto s = pump_all(); !s) return s;
    while (true) {
        if (!_in_flight.empty()) {
            sent_fetch f = _in_flight.front();
            _in_flight.pop_front();
            if (auto r = receive_one(f); !r) return r;
            _stats.record_latency(static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - f.t0).count()));
            if (auto s = pump(f.lane); !s) return s;
        } else if (_group == nullptr || group_done()) {
            return ok();
        } else {
            // This member's partitions are done (or it has none): it stays in the group,
            // heartbeating, until the whole group is done.
            std::this_thread::sleep_for(idle_wait);
        }
        if (_group) {
            if (auto g = group_tick(); !g) return g;
        }
    }
}

void run_consumers(const settings& s, int32_t partitions, const consume_plan& plan,
                   run_control& ctl, side_stats& stats, group_stats* group) {
    std::vector<std::thread> threads;
    // Independent readers share the partitions out; every group member joins (one with nothing
    // assigned is still a member, as in Kafka).
    int n = group ? s.consumers : std::min<int>(s.consumers, partitions);
    for (int i = 0; i < n; ++i) {
        threads.emplace_back(
            [&, i] { consumer_worker(s, i, partitions, plan, ctl, stats, group).run(); });
    }
    for (auto& t : threads) t.join();
}

}  // namespace sluice::tools::bench
