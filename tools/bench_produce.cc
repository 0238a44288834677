// The producers of `sluice bench`: pre-encoded Produce frames, pipelined per connection.

#include <poll.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include "base/bytes.h"
#include "model/records.h"
#include "tools/bench.h"
#include "tools/group_client.h"

namespace sluice::tools::bench {

void run_control::fail(const std::string& why) {
    {
        std::lock_guard<std::mutex> g(error_mu);
        if (first_error.empty()) first_error = why;
    }
    failed_workers.fetch_add(1);
    stop.store(true);
}

namespace {

// Frame position of the correlation id: size (4), api key (2), api version (2).
constexpr size_t correlation_id_pos = 8;

// One Produce request, encoded once and sent many times.
struct encoded_request {
    std::vector<std::byte> frame;
    std::vector<std::pair<size_t, size_t>> batches;  // (position in frame, length)
    std::vector<std::pair<int32_t, int32_t>> batch_parts;  // (partition, records) per batch
    uint64_t records = 0;
    uint64_t payload_bytes = 0;
    uint64_t wire_bytes = 0;
};

// Record values: letters from a 32-symbol alphabet, so compressed runs have something to do
// (about 5 bits of entropy per byte) without being trivially compressible.
std::vector<std::byte> make_payload(size_t n, std::mt19937_64& rng) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz012345";
    std::vector<std::byte> out(n);
    for (auto& b : out) b = std::byte(alphabet[rng() & 31]);
    return out;
}

result<encoded_request> encode_request(int16_t version, const settings& s,
                                       const std::vector<int32_t>& partitions, uint64_t records_max,
                                       std::mt19937_64& rng,
                                       const std::optional<std::string>& txn_id = std::nullopt) {
    encoded_request out;
    std::vector<std::vector<std::byte>> built;
    int64_t ts = now_ms();
    for (size_t i = 0; i < partitions.size() && out.records < records_max; ++i) {
        // Idempotent batches carry a producer id and sequence (stamped before each send).
        model::batch_builder b({.producer_id = s.idempotent ? 0 : -1,
                                .producer_epoch = s.idempotent ? int16_t{0} : int16_t{-1},
                                .base_sequence = s.idempotent ? 0 : -1,
                                .transactional = txn_id.has_value(),
                                .codec = s.codec});
        // Fill up to batch_bytes (at least one record), spreading what is left evenly.
        uint64_t left = records_max - out.records;
        uint64_t share = (left + (partitions.size() - i) - 1) / (partitions.size() - i);
        while (b.empty() || (b.uncompressed_batch_bytes() + s.record_bytes + 16 <= s.batch_bytes &&
                             static_cast<uint64_t>(b.record_count()) < share)) {
            auto value = make_payload(s.record_bytes, rng);
            b.add(std::nullopt, value, ts);
        }
        auto bytes = b.build();
        if (!bytes) return bytes.error();
        out.records += static_cast<uint64_t>(b.record_count());
        out.payload_bytes += static_cast<uint64_t>(b.record_count()) * s.record_bytes;
        out.wire_bytes += bytes->size();
        out.batch_parts.emplace_back(partitions[i], b.record_count());
        built.push_back(std::move(*bytes));
    }
    protocol::produce_request req;
    req.transactional_id = txn_id;
    req.acks = s.acks;
    req.timeout_ms = 30000;
    auto& td = req.topic_data.emplace_back();
    td.name = s.topic;
    for (size_t i = 0; i < built.size(); ++i) {
        auto& pd = td.partition_data.emplace_back();
        pd.index = partitions[i];
        pd.records = protocol::records::from_memory(built[i]);
    }
    protocol::writer w(out.wire_bytes + 256);
    size_t size_at = w.reserve(4);
    protocol::request_header h;
    h.api_key = protocol::produce_api::key;
    h.api_version = version;
    h.client_id = "sluice-bench";
    protocol::encode_request_header(w, h);
    req.encode(w, version);
    w.patch_int32(size_at, static_cast<int32_t>(w.size_bytes() - 4));
    out.frame = w.take_bytes();
    // Find each batch in the frame (they are copied in order), to restamp them before sends.
    auto from = out.frame.begin();
    for (const auto& b : built) {
        auto at = std::search(from, out.frame.end(), b.begin(), b.end());
        if (at == out.frame.end()) return error(errc::protocol, "batch not found in its frame");
        out.batches.emplace_back(static_cast<size_t>(at - out.frame.begin()), b.size());
        from = at + static_cast<std::ptrdiff_t>(b.size());
    }
    return out;
}

// An idempotent producer's identity and next sequence per partition.
struct producer_ident {
    int64_t id = -1;
    int16_t epoch = -1;
    std::map<int32_t, int32_t> next_seq;
};

// Fresh correlation id, timestamps (and, for an idempotent producer, its id, epoch and the
// partitions' next sequences) and CRCs: the broker sees a new, valid request.
void stamp(encoded_request& r, int32_t correlation_id, int64_t ts, producer_ident* ident) {
    bytes::store_be32(r.frame.data() + correlation_id_pos, static_cast<uint32_t>(correlation_id));
    for (size_t i = 0; i < r.batches.size(); ++i) {
        const auto& [at, len] = r.batches[i];
        std::byte* b = r.frame.data() + at;
        bytes::store_be64(b + model::batch_format::base_timestamp_pos, static_cast<uint64_t>(ts));
        bytes::store_be64(b + model::batch_format::max_timestamp_pos, static_cast<uint64_t>(ts));
        if (ident != nullptr) {
            auto [partition, count] = r.batch_parts[i];
            int32_t& seq = ident->next_seq[partition];
            bytes::store_be64(b + model::batch_format::producer_id_pos,
                              static_cast<uint64_t>(ident->id));
            bytes::store_be16(b + model::batch_format::producer_epoch_pos,
                              static_cast<uint16_t>(ident->epoch));
            bytes::store_be32(b + model::batch_format::base_sequence_pos,
                              static_cast<uint32_t>(seq));
            seq += count;
        }
        uint32_t crc = model::compute_crc({b, len});
        bytes::store_be32(b + model::batch_format::crc_pos, crc);
    }
}

// The partitions worker `w` of `n` writes to.
std::vector<int32_t> partitions_of(int w, int n, int32_t partitions) {
    std::vector<int32_t> out;
    if (n >= partitions) {
        out.push_back(w % partitions);
        return out;
    }
    for (int32_t p = w; p < partitions; p += n) out.push_back(p);
    return out;
}

struct leader_lane {
    connection* conn = nullptr;
    int16_t version = -1;
    std::vector<int32_t> partitions;
    encoded_request full;
    // Shorter requests (a transaction's remainder, the run's last records), encoded once per
    // size: generating their payloads again for every send would bill the bench's CPU, which
    // shares the host with the broker, to the mode that sends them.
    std::map<uint64_t, encoded_request> partial;
};

struct sent_request {
    size_t lane;
    clock::time_point t0;
    uint64_t records;
    uint64_t payload_bytes;
    uint64_t wire_bytes;
};

class producer_worker {
  public:
    producer_worker(const settings& s, int index, int32_t partitions, run_control& ctl,
                    side_stats& stats)
        : _s(s),
          _index(index),
          _partitions(partitions),
          _ctl(ctl),
          _stats(stats),
          _rng(0x5eed0000u + static_cast<unsigned>(index)) {}

    void run() {
        if (auto r = setup(); !r) {
            _ctl.fail("producer " + std::to_string(_index) + ": " + user_message(r.error()));
            return;
        }
        if (auto r = loop(); !r) {
            _ctl.fail("producer " + std::to_string(_index) + ": " + user_message(r.error()));
        }
    }

  private:
    result<void> setup();
    // InitProducerId (with this worker's transactional id, at its coordinator, when there is one).
    result<void> init_producer();
    // A call to the transaction coordinator, retried while it answers a retriable error
    // (CONCURRENT_TRANSACTIONS while the previous transaction completes, a load in progress).
    result<void> add_partitions();
    result<void> end_txn();
    result<void> loop();
    // Transactional: waits for every produce in flight, then commits (EndTxn).
    result<void> commit();
    // Claims up to `want` records of the budget; 0 when the run is over.
    uint64_t claim(uint64_t want);
    result<void> send_one(size_t lane, uint64_t records);
    result<void> receive_one();
    result<void> pace(uint64_t records);

    const settings& _s;
    int _index;
    int32_t _partitions;
    run_control& _ctl;
    side_stats& _stats;
    std::mt19937_64 _rng;
    std::unique_ptr<client> _client;
    std::vector<leader_lane> _lanes;
    std::deque<sent_request> _in_flight;  // in send order across lanes
    size_t _next_lane = 0;
    double _rate_per_worker = 0;
    clock::time_point _next_send;
    bool _first_error_printed = false;
    producer_ident _ident;
    std::optional<std::string> _txn_id;  // this worker's, when transactional
    connection* _coordinator = nullptr;
    uint64_t _txn_left = 0;  // records the open transaction still takes; 0: none open
};

constexpr int16_t err_concurrent_transactions = 51;
constexpr int16_t err_coordinator_load_in_progress = 14;
constexpr int16_t err_coordinator_not_available = 15;
constexpr int16_t err_not_coordinator = 16;
constexpr int retriable_attempts = 20000;  // of 0.5 ms each: 10 s

// Transient answers while a transaction completes or a coordinator (just created, or moving)
// loads its partition of __transaction_state.
bool retriable_txn_error(int16_t e) {
    return e == err_concurrent_transactions || e == err_coordinator_load_in_progress ||
           e == err_coordinator_not_available;
}

result<void> producer_worker::init_producer() {
    protocol::init_producer_id_request req;
    req.transactional_id = _txn_id;
    req.transaction_timeout_ms = 60000;
    connection* conn = &_client->any();
    // The first FindCoordinator may create __transaction_state: until its partitions are open
    // the answer is COORDINATOR_NOT_AVAILABLE (or a load in progress), and a coordinator found
    // while they open may still answer NOT_COORDINATOR. Retry for 10 s.
    auto locate = [&]() -> result<void> {
        auto found = find_group_coordinator(_client->any(), *_txn_id, 1);
        for (int attempt = 0; !found && found.error().is(errc::kafka) && attempt < 1000; ++attempt) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            found = find_group_coordinator(_client->any(), *_txn_id, 1);
        }
        if (!found) return found.error();
        auto c = _client->broker(found->node_id);
        if (!c) return c.error();
        _coordinator = *c;
        conn = _coordinator;
        return ok();
    };
    if (_txn_id) {
        if (auto r = locate(); !r) return r;
    }
    for (int attempt = 0;; ++attempt) {
        auto resp = conn->call<protocol::init_producer_id_api>(req);
        if (!resp) return resp.error();
        if (resp->error_code == 0) {
            _ident.id = resp->producer_id;
            _ident.epoch = resp->producer_epoch;
            return ok();
        }
        const bool moved = _txn_id && resp->error_code == err_not_coordinator;
        if ((!moved && !retriable_txn_error(resp->error_code)) || attempt == retriable_attempts) {
            return kafka_failure(resp->error_code, "InitProducerId");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        if (moved) {
            if (auto r = locate(); !r) return r;
        }
    }
}

result<void> producer_worker::add_partitions() {
    protocol::add_partitions_to_txn_request req;
    req.v3_and_below_transactional_id = *_txn_id;
    req.v3_and_below_producer_id = _ident.id;
    req.v3_and_below_producer_epoch = _ident.epoch;
    auto& t = req.v3_and_below_topics.emplace_back();
    t.name = _s.topic;
    for (const auto& lane : _lanes) t.partitions.insert(t.partitions.end(), lane.partitions.begin(),
                                                        lane.partitions.end());
    for (int attempt = 0;; ++attempt) {
        auto resp = _coordinator->call<protocol::add_partitions_to_txn_api>(req);
        if (!resp) return resp.error();
        int16_t err = 0;
        for (const auto& tr : resp->results_by_topic_v3_and_below) {
            for (const auto& pr : tr.results_by_partition) {
                if (pr.partition_error_code != 0) err = pr.partition_error_code;
            }
        }
        if (err == 0) return ok();
        if (!retriable_txn_error(err) || attempt == retriable_attempts) {
            return kafka_failure(err, "AddPartitionsToTxn");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
}

result<void> producer_worker::end_txn() {
    protocol::end_txn_request req;
    req.transactional_id = *_txn_id;
    req.producer_id = _ident.id;
    req.producer_epoch = _ident.epoch;
    req.committed = true;
    for (int attempt = 0;; ++attempt) {
        auto resp = _coordinator->call<protocol::end_txn_api>(req);
        if (!resp) return resp.error();
        if (resp->error_code == 0) return ok();
        if (!retriable_txn_error(resp->error_code) || attempt == retriable_attempts) {
            return kafka_failure(resp->error_code, "EndTxn");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
}

result<void> producer_worker::commit() {
    while (!_in_flight.empty()) {
        if (auto r = receive_one(); !r) return r;
    }
    if (auto r = end_txn(); !r) return r;
    _stats.transactions.fetch_add(1, std::memory_order_relaxed);
    _txn_left = 0;
    return ok();
}

result<void> producer_worker::setup() {
    auto c = client::connect(_s.client);
    if (!c) return c.error();
    _client = std::move(*c);
    if (_s.transactional_id) _txn_id = *_s.transactional_id + "-" + std::to_string(_index);
    auto t = _client->topic(_s.topic, true);
    if (!t) return t.error();
    std::map<int32_t, std::vector<int32_t>> by_leader;
    for (int32_t p : partitions_of(_index, _s.producers, _partitions)) {
        by_leader[(*t)->partitions.at(static_cast<size_t>(p)).leader].push_back(p);
    }
    for (auto& [leader, ps] : by_leader) {
        auto conn = _client->broker(leader);
        if (!conn) return conn.error();
        leader_lane lane;
        lane.conn = *conn;
        lane.version = lane.conn->version<protocol::produce_api>();
        if (lane.version < 0) return error(errc::no_common_version, "Produce v3+");
        lane.partitions = ps;
        auto r = encode_request(lane.version, _s, ps, UINT64_MAX, _rng, _txn_id);
        if (!r) return r.error();
        lane.full = std::move(*r);
        _lanes.push_back(std::move(lane));
    }
    if (_s.idempotent) {
        if (auto r = init_producer(); !r) return r;
    }
    if (_s.rate > 0) _rate_per_worker = _s.rate / _s.producers;
    _next_send = clock::now();
    return ok();
}

uint64_t producer_worker::claim(uint64_t want) {
    if (_ctl.stop.load(std::memory_order_relaxed) || _ctl.past_deadline()) return 0;
    if (!_ctl.by_records) return want;
    int64_t left = _ctl.produce_left.load();
    while (left > 0) {
        int64_t take = std::min<int64_t>(left, static_cast<int64_t>(want));
        if (_ctl.produce_left.compare_exchange_weak(left, left - take)) {
            return static_cast<uint64_t>(take);
        }
    }
    return 0;
}

result<void> producer_worker::pace(uint64_t records) {
    if (_rate_per_worker <= 0) return ok();
    // Answers that arrive while waiting for the next send time are read as they come, so a
    // request's latency ends when its answer arrives, not after the pacing sleep.
    while (!_in_flight.empty() && clock::now() < _next_send) {
        auto* conn = _lanes[_in_flight.front().lane].conn;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(_next_send - clock::now());
        if (!conn->wait_readable(static_cast<int>(std::max<int64_t>(left.count(), 0)))) break;
        if (auto r = receive_one(); !r) return r;
    }
    std::this_thread::sleep_until(_next_send);
    _next_send += std::chrono::nanoseconds(
        static_cast<int64_t>(1e9 * static_cast<double>(records) / _rate_per_worker));
    return ok();
}

result<void> producer_worker::send_one(size_t lane_index, uint64_t records) {
    leader_lane& lane = _lanes[lane_index];
    encoded_request* req = &lane.full;
    if (records < lane.full.records) {
        auto at = lane.partial.find(records);
        if (at == lane.partial.end()) {
            auto r = encode_request(lane.version, _s, lane.partitions, records, _rng, _txn_id);
            if (!r) return r.error();
            at = lane.partial.emplace(records, std::move(*r)).first;
        }
        req = &at->second;
    }
    if (auto p = pace(req->records); !p) return p;
    // With a rate, latency counts from when the request was due, so a stall is not hidden
    // (coordinated omission).
    clock::time_point t0 = _rate_per_worker > 0 ? std::min(clock::now(), _next_send) : clock::now();
    int32_t corr = lane.conn->next_correlation_id();
    stamp(*req, corr, now_ms(), _s.idempotent ? &_ident : nullptr);
    connection::in_flight f{corr, protocol::produce_api::key, lane.version, t0, lane_index};
    bool answered = _s.acks != 0;
    if (auto w = lane.conn->send_encoded(req->frame, f, answered); !w) return w;
    _stats.requests.fetch_add(1, std::memory_order_relaxed);
    if (answered) {
        _in_flight.push_back({lane_index, t0, req->records, req->payload_bytes, req->wire_bytes});
    } else {
        _stats.records.fetch_add(req->records, std::memory_order_relaxed);
        _stats.payload_bytes.fetch_add(req->payload_bytes, std::memory_order_relaxed);
        _stats.wire_bytes.fetch_add(req->wire_bytes, std::memory_order_relaxed);
    }
    return ok();
}

result<void> producer_worker::receive_one() {
    sent_request sent = _in_flight.front();
    _in_flight.pop_front();
    leader_lane& lane = _lanes[sent.lane];
    auto r = lane.conn->receive();
    if (!r) return r.error();
    auto now = clock::now();
    _stats.record_latency(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent.t0).count()));
    protocol::produce_response resp;
    protocol::reader rd(r->body, connection::response_limits());
    if (auto d = resp.decode(rd, lane.version); !d) {
        return error(errc::protocol, "Produce response: " + d.error().describe());
    }
    bool failed = false;
    for (const auto& t : resp.responses) {
        for (const auto& p : t.partition_responses) {
            if (p.error_code == 0) continue;
            failed = true;
            if (!_first_error_printed) {
                _first_error_printed = true;
                std::fprintf(stderr, "sluice bench: produce to %s-%d failed: %s%s%s\n",
                             _s.topic.c_str(), p.index, kafka_error_name(p.error_code).c_str(),
                             p.error_message ? ": " : "", p.error_message.value_or("").c_str());
            }
        }
    }
    if (failed) {
        _stats.errors.fetch_add(1, std::memory_order_relaxed);
        return ok();
    }
    _stats.records.fetch_add(sent.records, std::memory_order_relaxed);
    _stats.payload_bytes.fetch_add(sent.payload_bytes, std::memory_order_relaxed);
    _stats.wire_bytes.fetch_add(sent.wire_bytes, std::memory_order_relaxed);
    return ok();
}

result<void> producer_worker::loop() {
    bool sending = true;
    while (true) {
        if (sending) {
            // The next lane with room in its window, round robin.
            size_t lane = _lanes.size();
            for (size_t i = 0; i < _lanes.size(); ++i) {
                size_t l = (_next_lane + i) % _lanes.size();
                if (_lanes[l].conn->in_flight_count() < static_cast<size_t>(_s.in_flight)) {
                    lane = l;
                    break;
                }
            }
            if (lane < _lanes.size()) {
                uint64_t want = _lanes[lane].full.records;
                if (_txn_id) {
                    if (_txn_left == 0) {
                        // A new transaction: its partitions first.
                        if (auto r = add_partitions(); !r) return r;
                        _txn_left = static_cast<uint64_t>(_s.txn_records);
                    }
                    want = std::min(want, _txn_left);
                }
                uint64_t n = claim(want);
                if (n == 0) {
                    sending = false;
                } else {
                    _next_lane = lane + 1;
                    if (auto r = send_one(lane, n); !r) return r;
                    if (_txn_id && (_txn_left -= n) == 0) {
                        if (auto r = commit(); !r) return r;
                    }
                    continue;
                }
            }
        }
        if (_in_flight.empty()) {
            // The run ended inside a transaction: commit what it wrote.
            if (_txn_id && _txn_left > 0) {
                if (auto r = commit(); !r) return r;
            }
            return ok();
        }
        if (auto r = receive_one(); !r) return r;
    }
}

}  // namespace

void run_producers(const settings& s, int32_t partitions, run_control& ctl, side_stats& stats) {
    std::vector<std::thread> threads;
    for (int i = 0; i < s.producers; ++i) {
        threads.emplace_back([&, i] { producer_worker(s, i, partitions, ctl, stats).run(); });
    }
    for (auto& t : threads) t.join();
}

result<offsets> list_offsets(client& c, const std::string& topic, int32_t partitions,
                             int64_t timestamp) {
    offsets out(static_cast<size_t>(partitions), -1);
    std::map<int32_t, std::vector<int32_t>> by_leader;
    auto t = c.topic(topic, true);
    if (!t) return t.error();
    for (const auto& p : (*t)->partitions) {
        if (p.partition < partitions) by_leader[p.leader].push_back(p.partition);
    }
    for (const auto& [leader, ps] : by_leader) {
        auto conn = c.broker(leader);
        if (!conn) return conn.error();
        protocol::list_offsets_request req;
        req.replica_id = -1;
        auto& rt = req.topics.emplace_back();
        rt.name = topic;
        for (int32_t p : ps)
            rt.partitions.push_back({.partition_index = p, .timestamp = timestamp});
        auto resp = (*conn)->call<protocol::list_offsets_api>(req);
        if (!resp) return resp.error();
        for (const auto& tr : resp->topics) {
            for (const auto& pr : tr.partitions) {
                if (pr.error_code != 0) return kafka_failure(pr.error_code, "ListOffsets");
                if (pr.partition_index >= 0 && pr.partition_index < partitions) {
                    out[static_cast<size_t>(pr.partition_index)] = pr.offset;
                }
            }
        }
    }
    return out;
}

}  // namespace sluice::tools::bench
