#pragma once
// One reactor per core: an io_uring ring, a timer heap, a queue of deferred tasks and an
// eventfd through which other threads hand it work. Every partition, group and connection is
// owned by exactly one reactor and touched only from its thread (DESIGN.md section 2).
//
// Hot paths submit SQEs with an intrusive `io_completion` (a function pointer, no allocation);
// control paths may use `submit(sqe, std::function)`. The reactor is created, run and destroyed
// on one thread; only `post()` and `stop()` may be called from other threads.

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "runtime/buffer_ring.h"
#include "runtime/spsc_ring.h"

namespace sluice::runtime {

class reactor;

// The reactors of one process that message each other (DESIGN.md section 2, Seastar's smp):
// a lock-free SPSC ring for every ordered pair of cores. Created before the reactors' threads
// start and destroyed after they all have finished; each reactor join()s it on its own thread
// before any other thread learns of it.
class reactor_group {
public:
    // Messages in flight per (sender, receiver) pair before the sender keeps the rest in its
    // own outbox (still lock-free; flushed on its next loop iteration). 1024 x 32 bytes.
    static constexpr size_t default_ring_entries = 1024;

    explicit reactor_group(unsigned cores, size_t ring_entries = default_ring_entries);
    unsigned size() const { return _cores; }
    spsc_ring<std::function<void()>>& ring(unsigned from, unsigned to) {
        return *_rings[from * _cores + to];
    }
    reactor* member(unsigned core) const { return _members[core].load(std::memory_order_acquire); }

private:
    friend class reactor;
    unsigned _cores;
    std::vector<std::unique_ptr<spsc_ring<std::function<void()>>>> _rings;
    std::unique_ptr<std::atomic<reactor*>[]> _members;
};

// Embedded in the object that owns an I/O; `on_complete` receives the CQE result (>= 0 or
// -errno) and flags. The object must outlive the operation.
struct io_completion {
    void (*on_complete)(io_completion* self, int res, uint32_t flags) = nullptr;
};

using timer_id = uint64_t;
using clock_type = std::chrono::steady_clock;

class reactor {
public:
    struct config {
        unsigned sq_entries = 1024;
        unsigned cq_entries = 8192;
        unsigned core = 0;  // the core this reactor serves (for logs and routing)
        // IORING_SETUP_SQPOLL: a kernel thread polls the submission queue, so submitting
        // costs no system call while it is awake; it sleeps after `sqpoll_idle_ms` without
        // work (the next submission wakes it with one). It takes a CPU of its own while busy.
        bool sqpoll = false;
        unsigned sqpoll_idle_ms = 10;
    };

    // Creates the ring. Fails (rather than aborting) if io_uring is unavailable.
    static result<std::unique_ptr<reactor>> create(config cfg);
    ~reactor();
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    // The reactor running on this thread, if any.
    static reactor* local();
    unsigned core() const { return _cfg.core; }

    // A free SQE; submits pending ones to make room when the queue is full. Never null.
    io_uring_sqe* get_sqe();
    // Attaches a completion to an SQE obtained from get_sqe(). The SQE is submitted with the
    // next batch (at the latest when the loop next waits), so SQEs prepared together go to the
    // kernel together.
    static void arm(io_uring_sqe* sqe, io_completion* c) { io_uring_sqe_set_data(sqe, c); }
    // Control-path convenience: the callback is heap-allocated and freed after it runs.
    void submit(io_uring_sqe* sqe, std::function<void(int res)> fn);
    // Submits prepared SQEs now.
    void flush();

    // Runs `fn` on this reactor's thread at the next loop iteration.
    void defer(std::function<void()> fn);
    // Thread-safe: runs `fn` on this reactor's thread soon (never inside this call). From
    // another reactor of the same group it goes through that pair's SPSC ring, and the eventfd
    // is written only when this reactor is asleep; from any other thread (admin, ZooKeeper,
    // metrics: control paths) through a mutex-guarded queue and the eventfd.
    void post(std::function<void()> fn);
    // Joins the group as member core() (< group.size()). On this reactor's thread, once, before
    // other threads may post to it.
    void join(reactor_group& group);
    // Cross-core messages this reactor sent through rings, and those that found the ring full
    // and waited in its outbox (tests, metrics).
    uint64_t ring_sent_total() const { return _ring_sent; }
    uint64_t outbox_waits_total() const { return _outbox_waits; }

    timer_id add_timer(std::chrono::microseconds delay, std::function<void()> fn);
    void cancel_timer(timer_id id);

    // A source of work that has no completion of its own (a DPDK queue pair): the loop calls
    // poll() on every iteration. While any poller is registered the loop does not block while
    // work keeps coming; after `poller_spin` without work it asks each poller to arm_wakeup()
    // (make a completion, an eventfd write or a post() arrive when work does) and then blocks as
    // usual. A poller that cannot arm one makes the loop nap for `poller_nap` at a time instead.
    class poller {
      public:
        virtual ~poller() = default;
        virtual bool poll() = 0;  // true: did some work
        virtual bool arm_wakeup() = 0;  // false: cannot be woken, keep polling
    };
    static constexpr std::chrono::microseconds poller_spin{200};
    static constexpr std::chrono::microseconds poller_nap{100};
    // How long a reactor whose outbox still holds messages (a receiver's ring was full) blocks.
    static constexpr std::chrono::microseconds outbox_nap{50};
    // The poller must outlive its registration; remove it on this thread.
    void add_poller(poller* p);
    void remove_poller(poller* p);

    // Runs until stop(). Must be called on the creating thread.
    void run();
    // Processes whatever is ready; waits up to `max_wait` for something if nothing is.
    // Returns the number of completions, tasks and timers handled.
    size_t run_once(std::chrono::microseconds max_wait);
    // Runs the loop until `done()` is true (tests and synchronous helpers).
    void run_until(const std::function<bool()>& done);
    // Thread-safe.
    void stop();
    bool stopping() const { return _stop; }

    io_uring* ring() { return &_ring; }
    // This reactor's provided-buffer ring for receives (runtime/buffer_ring.h), made on first
    // use; null if the kernel refuses it (callers then receive into their own buffers).
    buffer_ring* receive_buffers();
    uint64_t submitted_total() const { return _submitted_total; }
    // Completions handled, and the time the loop spent waiting in the kernel for work (its
    // busy ratio is 1 - idle / time since start). Read on the reactor's own thread.
    uint64_t completed_total() const { return _completed_total; }
    std::chrono::nanoseconds idle_time() const { return _idle; }
    std::chrono::steady_clock::time_point started_at() const { return _started_at; }

private:
    explicit reactor(config cfg) : _cfg(cfg) {}
    result<void> init();
    void arm_wakeup();
    size_t reap_completions();
    size_t run_tasks();
    size_t fire_timers();
    size_t run_pollers();
    void send(reactor& to, std::function<void()> fn);
    void wake(reactor& to);
    bool flush_outboxes();  // true when something is still waiting (a full ring)
    size_t run_inbound();
    bool inbound_ready();
    std::chrono::microseconds poller_wait(std::chrono::microseconds wait);
    std::chrono::microseconds next_timer_delay(std::chrono::microseconds cap) const;

    struct fn_completion;
    struct timer {
        clock_type::time_point when;
        timer_id id;
        bool operator>(const timer& o) const { return when > o.when; }
    };

    config _cfg;
    io_uring _ring{};
    bool _ring_ready = false;
    unique_fd _wake_fd;
    uint64_t _wake_buf = 0;
    struct wake_completion : io_completion {
        reactor* owner = nullptr;
    } _wake_completion;
    std::vector<std::function<void()>> _tasks;
    std::mutex _posted_mu;
    std::vector<std::function<void()>> _posted;
    // Cross-core: the group, this reactor's outboxes (per receiver; this thread only), and
    // whether it is about to block or blocked in the kernel (senders write the eventfd then).
    reactor_group* _group = nullptr;
    std::vector<std::deque<std::function<void()>>> _outbox;
    bool _outbox_busy = false;
    std::atomic<bool> _sleeping{false};
    uint64_t _ring_sent = 0;
    uint64_t _outbox_waits = 0;
    std::priority_queue<timer, std::vector<timer>, std::greater<>> _timer_heap;
    std::vector<std::pair<timer_id, std::function<void()>>> _timer_fns;  // small, linear
    timer_id _next_timer = 1;
    std::vector<poller*> _pollers;
    clock_type::time_point _last_poll_work{};
    std::atomic<bool> _stop{false};
    uint64_t _submitted_total = 0;
    uint64_t _completed_total = 0;
    // Declared after _ring: destroyed after the ring has exited (~reactor's body).
    std::unique_ptr<buffer_ring> _receive_buffers;
    bool _receive_buffers_tried = false;
    std::chrono::nanoseconds _idle{0};
    std::chrono::steady_clock::time_point _started_at = std::chrono::steady_clock::now();
};

}  // namespace sluice::runtime
