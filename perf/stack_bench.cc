// The network stacks themselves, both ends on one stack: a server and a client process speak
// Kafka-framed messages over net::network_stack ("posix" on loopback, or "dpdk" with a
// net_memif pair: shared memory between the two processes, no kernel on the packet path).
// perf/stack_bench.py runs both sides of both stacks in one run and compares them.
//
//   stack_bench --role server --stack posix|dpdk --listen HOST:PORT [--dpdk-args A --ip IP]
//   stack_bench --role client --stack posix|dpdk --connect HOST:PORT [--dpdk-args A --ip IP]
//               [--seconds 5] [--frame-bytes 65536] [--pings 20000]
//
// Server: a frame of at most 1 KiB is echoed; a larger one is answered with an 8-byte frame.
// Client: a stream phase (keeps up to 4 MiB of large frames in flight for --seconds; counts what
// the server acknowledged) then a ping-pong phase (1 KiB frames, one at a time, round trips
// recorded). Prints one JSON line: stream MiB/s, round-trip percentiles, its own CPU seconds.
// Asserts nothing.

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "net/network_stack.h"
#include "runtime/reactor.h"
#include "tools/histogram.h"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

struct options {
    std::string role, stack = "posix", address, dpdk_args, ip;
    unsigned mtu = 1500;  // of the dpdk port
    int seconds = 5;
    size_t frame_bytes = 65536;
    int pings = 20000;
};

volatile std::sig_atomic_t g_stop = 0;

net::output frame_of(size_t n, std::byte fill) {
    std::vector<std::byte> v(4 + n, fill);
    bytes::store_be32(v.data(), static_cast<uint32_t>(n));
    net::output o;
    o.append(std::move(v));
    return o;
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int serve(runtime::reactor& r, net::network_stack& stack, const net::socket_address& at) {
    std::vector<net::connection_ptr> conns;
    auto l = stack.listen(r, at, {}, [&](net::connection_ptr c) {
        conns.push_back(c);
        c->start({.on_frames =
                      [c](std::span<net::frame> frames) {
                          for (auto& f : frames) {
                              c->send(f.size() <= 1024 ? frame_of(f.size(), std::byte{'e'})
                                                       : frame_of(8, std::byte{'a'}));
                          }
                      },
                  .on_close = [](const error&) {}});
    });
    if (!l) {
        std::fprintf(stderr, "stack_bench: %s\n", l.error().describe().c_str());
        return 1;
    }
    std::printf("listening\n");
    std::fflush(stdout);
    while (!g_stop) r.run_once(10ms);
    for (auto& c : conns) c->close();
    (*l)->close();
    for (int i = 0; i < 50; ++i) r.run_once(1ms);
    return 0;
}

int run_client(runtime::reactor& r, net::network_stack& stack, const net::socket_address& to,
               const options& o) {
    net::connection_ptr conn;
    std::string failure;
    stack.connect(r, to, {}, [&](result<net::connection_ptr> c) {
        if (c) {
            conn = *c;
        } else {
            failure = c.error().describe();
        }
    });
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!conn && failure.empty() && std::chrono::steady_clock::now() < deadline) {
        r.run_once(1ms);
    }
    if (!conn) {
        std::fprintf(stderr, "stack_bench: connect: %s\n", failure.c_str());
        return 1;
    }
    uint64_t acked = 0;
    size_t in_flight = 0;
    bool stream = true;
    bool pong = false;
    bool closed = false;
    conn->start({.on_frames =
                     [&](std::span<net::frame> frames) {
                         for (auto& f : frames) {
                             if (stream && f.size() == 8) {
                                 acked += o.frame_bytes;
                                 --in_flight;
                             } else {
                                 pong = true;
                             }
                         }
                     },
                 .on_close = [&](const error&) { closed = true; }});
    double cpu0 = cpu_seconds();
    auto start = std::chrono::steady_clock::now();
    auto end = start + std::chrono::seconds(o.seconds);
    const size_t window = std::max<size_t>(1, (4u << 20) / o.frame_bytes);
    while (std::chrono::steady_clock::now() < end && !closed) {
        while (in_flight < window) {
            conn->send(frame_of(o.frame_bytes, std::byte{'s'}));
            ++in_flight;
        }
        r.run_once(1ms);
    }
    double stream_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    while (in_flight > 0 && !closed) r.run_once(1ms);
    stream = false;
    double cpu_stream = cpu_seconds() - cpu0;
    tools::histogram rtt;
    double cpu1 = cpu_seconds();
    for (int i = 0; i < o.pings && !closed; ++i) {
        pong = false;
        auto t0 = std::chrono::steady_clock::now();
        conn->send(frame_of(1024, std::byte{'p'}));
        while (!pong && !closed) r.run_once(1ms);
        rtt.record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
                .count()));
    }
    double cpu_ping = cpu_seconds() - cpu1;
    std::printf(
        "{\"stream_bytes\": %llu, \"stream_s\": %.3f, \"stream_mib_s\": %.1f, "
        "\"client_cpu_stream_s\": %.3f, \"pings\": %llu, \"rtt_p50_us\": %.1f, "
        "\"rtt_p99_us\": %.1f, \"rtt_p999_us\": %.1f, \"client_cpu_ping_s\": %.3f}\n",
        static_cast<unsigned long long>(acked), stream_s, acked / stream_s / (1 << 20), cpu_stream,
        static_cast<unsigned long long>(rtt.count()), rtt.percentile(50) / 1e3,
        rtt.percentile(99) / 1e3, rtt.percentile(99.9) / 1e3, cpu_ping);
    bool failed = closed;  // the connection ended before the runs did
    conn->close();
    for (int i = 0; i < 50; ++i) r.run_once(1ms);
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--role") o.role = v;
        else if (k == "--stack") o.stack = v;
        else if (k == "--listen" || k == "--connect") o.address = v;
        else if (k == "--dpdk-args") o.dpdk_args = v;
        else if (k == "--ip") o.ip = v;
        else if (k == "--seconds") o.seconds = std::stoi(v);
        else if (k == "--frame-bytes") o.frame_bytes = std::stoul(v);
        else if (k == "--pings") o.pings = std::stoi(v);
        else if (k == "--mtu") o.mtu = static_cast<unsigned>(std::stoul(v));
        else {
            std::fprintf(stderr, "stack_bench: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    std::signal(SIGINT, [](int) { g_stop = 1; });
    net::stack_options so;
    so.cores = 1;
    so.dpdk_args = o.dpdk_args;
    so.ip = o.ip;
    so.mtu = o.mtu;
    auto stack = net::make_network_stack(o.stack, so);
    if (!stack) {
        std::fprintf(stderr, "stack_bench: %s\n", stack.error().describe().c_str());
        return 1;
    }
    auto r = runtime::reactor::create({});
    if (!r) return 1;
    auto addr = net::parse_address(o.address);
    if (!addr) {
        std::fprintf(stderr, "stack_bench: %s\n", addr.error().describe().c_str());
        return 2;
    }
    int rc = o.role == "server" ? serve(**r, **stack, *addr) : run_client(**r, **stack, *addr, o);
    r->reset();
    stack->reset();
    return rc;
}
