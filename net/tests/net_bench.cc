// net_bench: a measuring helper, not a test. Prints throughput of the posix stack on loopback
// for framed echo of small requests, large memory sends, and file-region sends through splice
// versus the copy fallback, plus the splice/copy ratio (ratios within one run are what mean
// something on a shared machine). Nothing here asserts on speed.
//
//   net_bench [seconds_per_case=1]

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "base/bytes.h"
#include "base/log.h"
#include "net/network_stack.h"
#include "runtime/reactor.h"

using namespace sluice;
using namespace sluice::net;
using clock_type = std::chrono::steady_clock;

namespace {

output framed_output(size_t size) {
    std::vector<std::byte> v(4 + size, std::byte{0x5a});
    bytes::store_be32(v.data(), static_cast<uint32_t>(size));
    output o;
    o.append(std::move(v));
    return o;
}

struct bench_env {
    std::unique_ptr<runtime::reactor> reactor;
    std::unique_ptr<network_stack> stack;
    std::unique_ptr<listener> lis;
    connection_ptr server;
    connection_ptr client;
    int closed = 0;

    // `respond` runs on the server for each request frame.
    void setup(std::function<void(connection&, frame&)> respond) {
        reactor = runtime::reactor::create({}).value();
        stack = make_network_stack("posix").value();
        auto l = stack->listen(*reactor, socket_address::ipv4_loopback(0), {},
                               [this, respond](connection_ptr c) {
                                   server = c;
                                   connection* raw = c.get();
                                   c->start({.on_frames =
                                                 [raw, respond](std::span<frame> fs) {
                                                     for (auto& f : fs) respond(*raw, f);
                                                 },
                                             .on_close = [this](const error&) { ++closed; }});
                               });
        lis = std::move(*l);
        bool done = false;
        stack->connect(*reactor, lis->local_address(), {}, [&](result<connection_ptr> c) {
            client = *c;
            done = true;
        });
        reactor->run_until([&] { return done; });
    }

    void teardown() {
        client->close();
        bool lclosed = false;
        lis->close([&] { lclosed = true; });
        reactor->run_until([&] { return closed == 2 && lclosed; });
        server.reset();
        client.reset();
        lis.reset();
        reactor.reset();
    }
};

// Sends requests of `request_bytes`, keeping `window` in flight; returns response bytes/s.
double run_case(const char* name, double seconds, size_t request_bytes, size_t window,
                std::function<void(connection&, frame&)> respond) {
    bench_env env;
    env.setup(std::move(respond));
    uint64_t responses = 0, response_bytes = 0, sent = 0;
    env.client->start({.on_frames =
                           [&](std::span<frame> fs) {
                               for (auto& f : fs) response_bytes += f.size() + 4;
                               responses += fs.size();
                           },
                       .on_close = [&](const error&) { ++env.closed; }});
    auto start = clock_type::now();
    auto end = start + std::chrono::duration<double>(seconds);
    while (clock_type::now() < end) {
        while (sent - responses < window) {
            env.client->send(framed_output(request_bytes));
            ++sent;
        }
        env.reactor->run_once(std::chrono::milliseconds(1));
    }
    env.reactor->run_until([&] { return responses == sent; });
    double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    double bps = static_cast<double>(response_bytes) / elapsed;
    std::printf("%-34s %10.0f responses/s %10.1f MiB/s\n", name,
                static_cast<double>(responses) / elapsed, bps / (1 << 20));
    env.teardown();
    return bps;
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    log::set_level(log::level::warn);

    run_case("echo 100 B, window 64", seconds, 100, 64, [](connection& c, frame& f) {
        output o;
        std::vector<std::byte> p(4);
        bytes::store_be32(p.data(), static_cast<uint32_t>(f.size()));
        o.append(std::move(p));
        o.append(std::move(f));
        c.send(std::move(o));
    });
    run_case("memory response 1 MiB, window 4", seconds, 16, 4,
             [](connection& c, frame&) { c.send(framed_output(1 << 20)); });

    char path[] = "/tmp/sluice_net_bench_XXXXXX";
    int fd = ::mkstemp(path);
    ::unlink(path);
    std::vector<std::byte> block(1 << 20, std::byte{0x33});
    for (int i = 0; i < 16; ++i) (void)!::write(fd, block.data(), block.size());
    shared_fd file = make_shared_fd(fd);
    auto region_response = [file](connection& c, frame&) {
        output o;
        std::vector<std::byte> p(4);
        bytes::store_be32(p.data(), 1u << 20);
        o.append(std::move(p));
        o.append(file_region{file, 4096, 1u << 20});
        c.send(std::move(o));
    };
    double spliced = run_case("file region 1 MiB (splice)", seconds, 16, 4, region_response);
    // Baseline: the same file bytes read into user memory and sent from there.
    double copied =
        run_case("file bytes 1 MiB (pread + send)", seconds, 16, 4, [file](connection& c, frame&) {
            std::vector<std::byte> v(4 + (1 << 20));
            bytes::store_be32(v.data(), 1u << 20);
            (void)!::pread(file->get(), v.data() + 4, 1 << 20, 4096);
            output o;
            o.append(std::move(v));
            c.send(std::move(o));
        });
    std::printf("splice / copy throughput ratio: %.2f\n", spliced / copied);
    return 0;
}
