// The group membership of `sluice bench --group` consumers: joining, starting from the committed
// offsets, heartbeats and periodic commits between fetches, rejoining on a rebalance, and the
// final commit and LeaveGroup.

#include <cstdio>
#include <thread>

#include "tools/bench_consumer.h"

namespace sluice::tools::bench {

namespace {

// A final commit the coordinator could not take (it moved, or was loading) is tried again this
// many times, this far apart.
constexpr int final_commit_attempts = 5;
constexpr auto final_commit_backoff = std::chrono::milliseconds(200);
// How often an assigned member waiting for the run to start looks at the run.
constexpr auto start_poll = std::chrono::milliseconds(10);

uint64_t ns_since(clock::time_point t0) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
}

}  // namespace

result<void> consumer_worker::join_group() {
    if (!_member) {
        _member = std::make_unique<group_member>(
            *_client, group_member_options{.group = _group->name, .topics = {_s.topic}});
    }
    if (auto j = _member->join(); !j) return j;
    std::vector<topic_partition> mine;
    std::vector<int32_t> partitions;
    for (const auto& tp : _member->assignment()) {
        if (tp.first != _s.topic || tp.second < 0 || tp.second >= _partitions) continue;
        mine.push_back(tp);
        partitions.push_back(tp.second);
    }
    // Start where the group committed; without a commit, where the run says (--offset-reset).
    std::map<int32_t, int64_t> start;
    _committed.clear();
    if (!mine.empty()) {
        auto committed = _member->committed(mine);
        if (!committed) return committed.error();
        for (const auto& [tp, offset] : *committed) {
            if (offset >= 0) _committed[tp.second] = offset;
        }
    }
    for (int32_t p : partitions) {
        auto c = _committed.find(p);
        start[p] = c != _committed.end() ? c->second : _plan.start.at(static_cast<size_t>(p));
        _group->positions[static_cast<size_t>(p)] = start[p];
    }
    if (auto b = build_lanes(partitions, start); !b) return b;
    {
        std::lock_guard<std::mutex> g(_group->mu);
        auto& me = _group->members.at(static_cast<size_t>(_index));
        me.member_id = _member->member_id();
        me.leader = _member->leader();
        me.partitions = partitions;
        ++me.joins;
        if (me.first_assignment_s < 0) {
            me.first_assignment_s = std::chrono::duration<double>(clock::now() - _started).count();
        }
        _group->generations.insert(_member->generation());
    }
    _next_commit = clock::now() + std::chrono::milliseconds(_s.commit_interval_ms);
    return ok();
}

result<void> consumer_worker::await_start() {
    _ctl.consumers_assigned.fetch_add(1);
    // Until the run starts this member only heartbeats (joining again if the group rebalances);
    // it must not read the run's clock before `started`.
    while (!_ctl.started.load() && !_ctl.stop.load()) {
        std::this_thread::sleep_for(start_poll);
        if (!_member->heartbeat_due(clock::now())) continue;
        auto st = _member->heartbeat();
        if (!st) return st.error();
        if (*st != group_member::status::rejoin) continue;
        if (auto j = join_group(); !j) return j;
    }
    return ok();
}

bool consumer_worker::group_done() const {
    if (stopping()) return true;
    if (_plan.end == nullptr || !end_known()) return false;
    for (int32_t p = 0; p < _partitions; ++p) {
        if (_group->positions[static_cast<size_t>(p)].load() <
            (*_plan.end)[static_cast<size_t>(p)].load()) {
            return false;
        }
    }
    return true;
}

result<group_member::status> consumer_worker::commit_positions() {
    std::map<topic_partition, int64_t> offsets;
    for (const auto& [p, offset] : _offsets) {
        auto c = _committed.find(p);
        if (c == _committed.end() || c->second != offset) offsets[{_s.topic, p}] = offset;
    }
    if (offsets.empty()) return group_member::status::ok;
    auto t0 = clock::now();
    auto st = _member->commit(offsets);
    if (!st) return st.error();
    if (*st != group_member::status::ok) {
        _group->commit_errors.fetch_add(1);
        return *st;
    }
    uint64_t ns = ns_since(t0);
    _group->commits.fetch_add(1);
    {
        std::lock_guard<std::mutex> g(_group->mu);
        _group->commit_latency.record(ns);
    }
    for (const auto& [tp, offset] : offsets) _committed[tp.second] = offset;
    return group_member::status::ok;
}

result<void> consumer_worker::group_tick() {
    auto now = clock::now();
    if (_member->heartbeat_due(now)) {
        auto st = _member->heartbeat();
        if (!st) return st.error();
        // Once the group has read everything, its members only commit and leave; the first to
        // leave starts a rebalance the others need not join.
        if (*st == group_member::status::rejoin && !group_done()) return rebalance();
    }
    if (_s.commit_interval_ms > 0 && now >= _next_commit) {
        _next_commit = now + std::chrono::milliseconds(_s.commit_interval_ms);
        auto st = commit_positions();
        if (!st) return st.error();
        if (*st == group_member::status::rejoin && !group_done()) return rebalance();
    }
    return ok();
}

result<void> consumer_worker::rebalance() {
    // Eager rebalance: every partition is given up. The answers in flight still belong to this
    // member; it counts them and commits, so the next owner starts exactly where it stopped.
    if (auto d = drain(); !d) return d;
    auto st = commit_positions();
    if (!st) return st.error();
    if (auto j = join_group(); !j) return j;
    return pump_all();
}

void consumer_worker::finish_group() {
    auto d = drain();
    for (int attempt = 0; d && attempt < final_commit_attempts; ++attempt) {
        auto st = commit_positions();
        if (!st) {
            d = st.error();
            break;
        }
        if (*st != group_member::status::retry) break;
        std::this_thread::sleep_for(final_commit_backoff);
    }
    if (!d) {
        _ctl.fail("consumer " + std::to_string(_index) + " of group " + _group->name +
                  ": final commit: " + user_message(d.error()));
        return;
    }
    if (auto l = _member->leave(); !l) {
        // The run's figures stand; the group merely rebalances after the session timeout.
        std::fprintf(stderr, "sluice bench: consumer %d of group %s: LeaveGroup: %s\n", _index,
                     _group->name.c_str(), user_message(l.error()).c_str());
    }
}

}  // namespace sluice::tools::bench
