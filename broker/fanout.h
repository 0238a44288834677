#pragma once
// Runs one operation per partition on the partitions' owning cores and gathers the results on
// the calling core. Partitions are grouped so each core gets one message; each result comes
// back as its own message, and `done` runs on the calling core once all have arrived.

#include <functional>
#include <memory>
#include <vector>

#include "broker/server.h"
#include "broker/shard.h"
#include "runtime/reactor.h"

namespace sluice::broker {

template <class R>
void fan_out(server& srv, std::vector<model::tp> tps,
             std::function<void(shard&, size_t index, std::function<void(R)> reply)> op,
             std::function<void(std::vector<R>)> done) {
    struct state {
        std::vector<R> results;
        size_t pending = 0;
        std::function<void(std::vector<R>)> done;
    };
    auto st = std::make_shared<state>();
    st->results.resize(tps.size());
    st->pending = tps.size();
    st->done = std::move(done);
    if (tps.empty()) {
        st->done(std::move(st->results));
        return;
    }
    runtime::reactor* origin = runtime::reactor::local();
    std::vector<std::vector<size_t>> by_core(srv.cores());
    for (size_t i = 0; i < tps.size(); ++i) by_core[srv.owner_of(tps[i])].push_back(i);
    auto shared_op = std::make_shared<decltype(op)>(std::move(op));
    for (unsigned c = 0; c < by_core.size(); ++c) {
        if (by_core[c].empty()) continue;
        srv.run_on(c, [st, origin, shared_op, idx = std::move(by_core[c])](shard& s) {
            for (size_t i : idx) {
                (*shared_op)(s, i, [st, origin, i](R r) {
                    auto deliver = [st, i, r = std::move(r)]() mutable {
                        st->results[i] = std::move(r);
                        if (--st->pending == 0) st->done(std::move(st->results));
                    };
                    if (runtime::reactor::local() == origin) {
                        deliver();
                    } else {
                        origin->post(std::move(deliver));
                    }
                });
            }
        });
    }
}

}  // namespace sluice::broker
