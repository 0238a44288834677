#pragma once
// The consumer thread of `sluice bench` (private to bench_consume.cc, which has the fetching,
// and bench_group.cc, which has the group membership of `--group` runs).

#include <deque>
#include <map>
#include <memory>

#include "tools/bench.h"
#include "tools/group_client.h"

namespace sluice::tools::bench {

struct fetch_lane {
    connection* conn = nullptr;
    int16_t version = -1;
    std::vector<int32_t> partitions;
    // Pipelined lanes (one partition, a pre-filled log): the offset of the next fetch to send,
    // when known without waiting for an answer.
    bool pipelined = false;
    bool issue_known = true;
    int64_t issue = 0;
    int in_flight = 0;
};

struct sent_fetch {
    size_t lane;
    clock::time_point t0;
    int64_t offset;  // pipelined lanes: the fetch offset of this request
    // Sent while a both-mode run's producers still wrote: its answer may predate records
    // that have arrived since (tools/bench_consume.cc, receive_one).
    bool producers_writing = false;
};

// A consumer thread; created, run and destroyed by one thread of run_consumers(). Lanes are its
// connections to leaders, each with the partitions it reads there. A normal lane has one Fetch in
// flight (the next offset is known only from the answer). With `fetch_in_flight` > 1 in consume
// mode, a lane of one partition learns on its first pass over the (unchanging) pre-filled log
// where each fetch ends, and on later passes keeps that many fetches in flight, asking for
// offsets it has seen answered before.
//
// Without a group it reads the partitions p with p % consumers == index. As a group member it
// reads what the group assigns it, from the committed offsets, heartbeats and commits between
// fetches, and on a rebalance finishes the fetches in flight, commits and joins again.
class consumer_worker {
  public:
    consumer_worker(const settings& s, int index, int32_t partitions, const consume_plan& plan,
                    run_control& ctl, side_stats& stats, group_stats* group)
        : _s(s),
          _index(index),
          _partitions(partitions),
          _plan(plan),
          _ctl(ctl),
          _stats(stats),
          _group(group) {}

    void run();

  private:
    // Fetching (bench_consume.cc).
    result<void> connect();
    // Lanes for `partitions` (by leader), starting at `start`; nothing may be in flight.
    result<void> build_lanes(const std::vector<int32_t>& partitions,
                             const std::map<int32_t, int64_t>& start);
    result<void> loop();
    result<void> send_fetch(size_t lane, int64_t pipelined_offset);
    result<void> pump(size_t lane);
    result<void> pump_all();
    result<void> receive_one(const sent_fetch& f);
    // Receives every answer in flight (counting it) without sending more.
    result<void> drain();
    // Counts the records of one partition's answer; returns the offset after its last batch.
    int64_t count(std::span<const std::byte> records, int64_t from);
    int64_t wrapped(int32_t partition, int64_t offset) const;
    // The record budget this worker counts against, or nullptr when it has none.
    std::atomic<int64_t>* budget() const;
    bool end_known() const;
    bool stopping() const;
    bool lane_done(const fetch_lane& lane) const;

    // Group membership (bench_group.cc).
    result<void> join_group();
    result<void> await_start();
    result<void> group_tick();
    result<void> rebalance();
    result<group_member::status> commit_positions();
    void finish_group();
    bool group_done() const;

    const settings& _s;
    int _index;
    int32_t _partitions;
    const consume_plan& _plan;
    run_control& _ctl;
    side_stats& _stats;
    group_stats* _group;  // nullptr: an independent reader
    std::unique_ptr<client> _client;
    protocol::uuid _topic_id;
    std::vector<fetch_lane> _lanes;
    std::map<int32_t, int64_t> _offsets;  // partition -> next offset to read
    std::map<int64_t, int64_t> _next_of;  // pipelined: fetch offset -> offset after its answer
    std::deque<sent_fetch> _in_flight;    // in send order across lanes

    std::unique_ptr<group_member> _member;
    std::map<int32_t, int64_t> _committed;  // what the group has committed for our partitions
    clock::time_point _started;
    clock::time_point _next_commit;
};

}  // namespace sluice::tools::bench
