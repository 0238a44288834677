#include "tools/bypass_stream.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "net/network_stack.h"
#include "runtime/reactor.h"
#include "tools/errc.h"

namespace sluice::tools {

namespace {

using namespace std::chrono_literals;

// What one stream's worker thread and the reactor thread share. Everything but `conn` is
// guarded by `m`; `conn` is touched on the reactor thread only.
struct stream_state {
    std::mutex m;
    std::condition_variable cv;
    // Received frames (the connection's own buffers, not copied), not read yet. The reader
    // wakes once per frame: one task switch and lock hand-off per answer, however many bursts
    // the reactor received it in.
    std::deque<net::shared_buffer> rx;
    bool connected = false;
    bool ended = false;
    std::string why;  // why it ended, or why the connect failed
    net::connection_ptr conn;

    void end(std::string reason) {
        std::lock_guard<std::mutex> g(m);
        if (!ended) why = std::move(reason);
        ended = true;
        cv.notify_all();
    }
};

// The process's dpdk stack and the reactor thread that drives it.
class bypass_runtime {
  public:
    // Streams hold the runtime too, so it stops (after running their closes) only once the
    // last of them and the process's own reference are gone, whichever order exit takes.
    static result<std::shared_ptr<bypass_runtime>> get(const bypass_options& opts) {
        static std::mutex m;
        static std::shared_ptr<bypass_runtime> rt;
        static std::optional<error> start_failure;  // DPDK's EAL starts once per process
        std::lock_guard<std::mutex> g(m);
        if (start_failure) return *start_failure;
        if (rt) {
            if (!(rt->_opts == opts)) {
                return error(errc::bad_argument,
                             "the dpdk stack of this process was started with other options");
            }
            return rt;
        }
        auto fresh = std::shared_ptr<bypass_runtime>(new bypass_runtime(opts));
        if (auto r = fresh->start(); !r) {
            start_failure = r.error();
            return r.error();
        }
        rt = std::move(fresh);
        return rt;
    }

    ~bypass_runtime() {
        _stop = true;
        if (_thread.joinable()) _thread.join();
    }

    // Runs `fn` on the reactor thread.
    void post(std::function<void()> fn) { _reactor->post(std::move(fn)); }
    runtime::reactor& reactor() { return *_reactor; }
    net::network_stack& stack() { return *_stack; }

  private:
    explicit bypass_runtime(bypass_options opts) : _opts(std::move(opts)) {}

    result<void> start() {
        // DPDK's EAL is initialised on the thread that will poll the port, which makes it
        // DPDK's main lcore.
        std::mutex m;
        std::condition_variable cv;
        std::optional<result<void>> started;
        _thread = std::thread([&, this] {
            net::stack_options so;
            so.cores = 1;
            so.dpdk_args = _opts.dpdk_args;
            so.ip = _opts.ip;
            so.netmask = _opts.netmask;
            so.gateway = _opts.gateway;
            so.mtu = _opts.mtu;
            so.trusted_link = _opts.trusted_link;
            auto stack = net::make_network_stack("dpdk", so);
            std::optional<error> failed;
            if (!stack) {
                failed = stack.error();
            } else if (auto r = runtime::reactor::create({}); !r) {
                failed = r.error();
            } else {
                _stack = std::move(*stack);
                _reactor = std::move(*r);
            }
            {
                std::lock_guard<std::mutex> g(m);
                if (failed) {
                    started.emplace(
                        error(errc::connect_failed, "dpdk stack: " + failed->describe()));
                } else {
                    started.emplace(ok());
                }
                cv.notify_all();
            }
            if (!_reactor) return;
            while (!_stop.load(std::memory_order_relaxed)) _reactor->run_once(1ms);
            for (int i = 0; i < 50; ++i) _reactor->run_once(1ms);  // closes finish
            _reactor.reset();
            _stack.reset();
        });
        std::unique_lock<std::mutex> g(m);
        cv.wait(g, [&] { return started.has_value(); });
        if (!*started) {
            g.unlock();
            _thread.join();
            return started->error();
        }
        return ok();
    }

    bypass_options _opts;
    std::thread _thread;
    std::atomic<bool> _stop{false};
    std::unique_ptr<net::network_stack> _stack;
    std::unique_ptr<runtime::reactor> _reactor;
};

class dpdk_stream final : public bypass_stream {
  public:
    dpdk_stream(std::shared_ptr<bypass_runtime> rt, std::shared_ptr<stream_state> st)
        : _rt(std::move(rt)), _st(std::move(st)) {}

    ~dpdk_stream() override {
        _rt->post([st = _st] {
            if (st->conn) st->conn->close();
        });
    }

    result<void> write_all(std::span<const std::byte> bytes) override {
        {
            std::lock_guard<std::mutex> g(_st->m);
            if (_st->ended) return error(errc::io_failed, "writing: " + _st->why);
        }
        _rt->post([st = _st, v = std::vector<std::byte>(bytes.begin(), bytes.end())]() mutable {
            if (!st->conn) return;
            net::output out;
            out.append(std::move(v));
            st->conn->send(std::move(out));
        });
        return ok();
    }

    result<std::span<const std::byte>> read_frame(int timeout_ms) override {
        std::unique_lock<std::mutex> g(_st->m);
        _current = {};  // the previous frame's bytes go back to the connection's pool
        if (!wait(g, timeout_ms)) {
            return error(errc::timeout, "no answer within " + std::to_string(timeout_ms) + " ms");
        }
        if (_st->rx.empty()) return error(errc::io_failed, _st->why);
        _current = std::move(_st->rx.front());
        _st->rx.pop_front();
        return std::span<const std::byte>(_current.data(), _current.size());
    }

    bool wait_readable(int timeout_ms) override {
        std::unique_lock<std::mutex> g(_st->m);
        return wait(g, timeout_ms);
    }

    bool has_buffered() const override {
        std::lock_guard<std::mutex> g(_st->m);
        return !_st->rx.empty();
    }

  private:
    // Until a frame is there or the connection ended; false on timeout.
    bool wait(std::unique_lock<std::mutex>& g, int timeout_ms) {
        return _st->cv.wait_for(g, std::chrono::milliseconds(timeout_ms),
                                [&] { return !_st->rx.empty() || _st->ended; });
    }

    std::shared_ptr<bypass_runtime> _rt;
    std::shared_ptr<stream_state> _st;
    // The frame read_frame() last returned. Declared last, so destroyed first: its bytes go
    // back while the runtime (and the stack whose buffer it is) still lives.
    net::shared_buffer _current;
};

}  // namespace

result<std::unique_ptr<bypass_stream>> bypass_stream::connect(const bypass_options& opts,
                                                              const std::string& host,
                                                              uint16_t port, int timeout_ms) {
    auto addr = net::parse_address(host + ":" + std::to_string(port));
    if (!addr) {
        return error(errc::connect_failed,
                     host + ": the dpdk stack takes IPv4 addresses only (" +
                         addr.error().describe() + ")");
    }
    auto rt = bypass_runtime::get(opts);
    if (!rt) return rt.error();
    auto st = std::make_shared<stream_state>();
    net::connect_options co;
    co.timeout = std::chrono::milliseconds(timeout_ms);
    // Kafka framing by the connection itself: each answer arrives as one buffer, which the
    // reader then parses in place.
    co.connection.max_frame_bytes = max_frame_bytes;
    (*rt)->post([rt = rt->get(), st, at = *addr, co] {
        rt->stack().connect(rt->reactor(), at, co, [st](result<net::connection_ptr> c) {
            if (!c) return st->end("connect: " + c.error().describe());
            st->conn = *c;
            st->conn->start(
                {.on_frames =
                     [st](std::span<net::frame> pieces) {
                         std::lock_guard<std::mutex> g(st->m);
                         for (auto& p : pieces) st->rx.push_back(std::move(p));
                         st->cv.notify_all();
                     },
                 .on_close =
                     [st](const error& why) {
                         st->end("the connection ended: " + why.describe());
                         st->conn.reset();
                     }});
            std::lock_guard<std::mutex> g(st->m);
            st->connected = true;
            st->cv.notify_all();
        });
    });
    std::unique_lock<std::mutex> g(st->m);
    // The stack's own connect timeout answers first; this bounds a reactor that never runs it.
    bool answered = st->cv.wait_for(g, std::chrono::milliseconds(timeout_ms) + 5s,
                                    [&] { return st->connected || st->ended; });
    if (!answered || !st->connected) {
        return error(errc::connect_failed, host + ":" + std::to_string(port) + ": " +
                                               (answered ? st->why : "no answer from the stack"));
    }
    g.unlock();
    return std::unique_ptr<bypass_stream>(new dpdk_stream(std::move(*rt), std::move(st)));
}

}  // namespace sluice::tools
