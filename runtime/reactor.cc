#include "runtime/reactor.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/log.h"
#include "runtime/errc.h"

namespace sluice::runtime {

const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::io_uring_unavailable: return "io_uring is unavailable";
    }
    return "unknown runtime error";
}

namespace {
thread_local reactor* t_local = nullptr;
}

struct reactor::fn_completion {
    io_completion base;
    std::function<void(int)> fn;
};

result<std::unique_ptr<reactor>> reactor::create(config cfg) {
    std::unique_ptr<reactor> r(new reactor(cfg));
    if (auto ok = r->init(); !ok) return ok.error();
    return r;
}

result<void> reactor::init() {
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = _cfg.cq_entries;
    if (_cfg.sqpoll) {
        p.flags |= IORING_SETUP_SQPOLL;
        p.sq_thread_idle = _cfg.sqpoll_idle_ms;
    }
    int rc = io_uring_queue_init_params(_cfg.sq_entries, &_ring, &p);
    if (rc < 0) {
        return error(errc::io_uring_unavailable, std::string("io_uring_queue_init: ") + std::strerror(-rc));
    }
    _ring_ready = true;
    // Blocking on purpose: io_uring returns -EAGAIN for reads on O_NONBLOCK files instead of
    // waiting for them, and writes to an eventfd only block when its counter would overflow.
    int efd = ::eventfd(0, EFD_CLOEXEC);
    if (efd < 0) return errno_error(errno, "eventfd");
    _wake_fd.reset(efd);
    _wake_completion.owner = this;
    _wake_completion.on_complete = [](io_completion* c, int, uint32_t) {
        auto* self = static_cast<wake_completion*>(c)->owner;
        if (!self->_stop) self->arm_wakeup();
    };
    arm_wakeup();
    SLUICE_ASSERT(t_local == nullptr, "one reactor per thread");
    t_local = this;
    return ok();
}

reactor::~reactor() {
    if (t_local == this) t_local = nullptr;
    if (_ring_ready) io_uring_queue_exit(&_ring);
}

reactor* reactor::local() { return t_local; }

buffer_ring* reactor::receive_buffers() {
    if (!_receive_buffers_tried) {
        _receive_buffers_tried = true;
        if (auto br = buffer_ring::create(&_ring, 0); br) _receive_buffers = std::move(*br);
    }
    return _receive_buffers.get();
}

void reactor::arm_wakeup() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, _wake_fd.get(), &_wake_buf, sizeof _wake_buf, 0);
    arm(sqe, &_wake_completion);
}

io_uring_sqe* reactor::get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    while (sqe == nullptr) {
        flush();
        sqe = io_uring_get_sqe(&_ring);
        if (sqe == nullptr) reap_completions();  // the CQ may be full; drain it and retry
    }
    return sqe;
}

void reactor::submit(io_uring_sqe* sqe, std::function<void(int)> fn) {
    auto* c = new fn_completion{};
    c->fn = std::move(fn);
    c->base.on_complete = [](io_completion* base, int res, uint32_t) {
        auto* self = reinterpret_cast<fn_completion*>(base);
        auto f = std::move(self->fn);
        delete self;
        f(res);
    };
    arm(sqe, &c->base);
}

void reactor::flush() {
    int n = io_uring_submit(&_ring);
    if (n > 0) _submitted_total += static_cast<uint64_t>(n);
}

void reactor::defer(std::function<void()> fn) { _tasks.push_back(std::move(fn)); }

reactor_group::reactor_group(unsigned cores, size_t ring_entries)
    : _cores(cores), _members(new std::atomic<reactor*>[cores]) {
    _rings.reserve(static_cast<size_t>(cores) * cores);
    for (unsigned i = 0; i < cores * cores; ++i) {
        _rings.push_back(std::make_unique<spsc_ring<std::function<void()>>>(ring_entries));
    }
    for (unsigned i = 0; i < cores; ++i) _members[i].store(nullptr);
}

void reactor::join(reactor_group& group) {
    SLUICE_ASSERT(core() < group.size(), "reactor core outside its group");
    SLUICE_ASSERT(local() == this, "join on the reactor's own thread");
    _group = &group;
    _outbox.resize(group.size());
    group._members[core()].store(this, std::memory_order_release);
}

void reactor::post(std::function<void()> fn) {
    reactor* from = local();
    if (from != nullptr && _group != nullptr && from->_group == _group) {
        if (from == this) return defer(std::move(fn));
        return from->send(*this, std::move(fn));
    }
    {
        std::lock_guard lock(_posted_mu);
        _posted.push_back(std::move(fn));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(_wake_fd.get(), &one, sizeof one);
}

// On the sender's thread. FIFO per receiver: once anything waits in the outbox, later
// messages queue behind it.
void reactor::send(reactor& to, std::function<void()> fn) {
    auto& box = _outbox[to.core()];
    if (box.empty() && _group->ring(core(), to.core()).try_push(fn)) {
        ++_ring_sent;
        return wake(to);
    }
    ++_outbox_waits;
    box.push_back(std::move(fn));
    _outbox_busy = true;
}

// The receiver is woken only if it is blocked (or about to block) in the kernel; a running
// reactor finds the message on its next loop iteration. The fence pairs with the one in
// run_once(): either the receiver sees the message before it sleeps, or this sees it sleeping.
void reactor::wake(reactor& to) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (to._sleeping.load(std::memory_order_relaxed) && to._sleeping.exchange(false)) {
        uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(to._wake_fd.get(), &one, sizeof one);
    }
}

bool reactor::flush_outboxes() {
    if (!_outbox_busy) return false;
    bool left = false;
    for (unsigned t = 0; t < _outbox.size(); ++t) {
        auto& box = _outbox[t];
        if (box.empty()) continue;
        auto& ring = _group->ring(core(), t);
        size_t pushed = 0;
        while (!box.empty() && ring.try_push(box.front())) {
            box.pop_front();
            ++pushed;
        }
        _ring_sent += pushed;
        if (pushed > 0) wake(*_group->member(t));
        left |= !box.empty();
    }
    _outbox_busy = left;
    return left;
}

size_t reactor::run_inbound() {
    if (_group == nullptr) return 0;
    size_t n = 0;
    for (unsigned from = 0; from < _group->size(); ++from) {
        if (from == core()) continue;
        // At most one ring's worth per sender and iteration, so I/O is never starved.
        auto& ring = _group->ring(from, core());
        n += ring.pop_batch([](std::function<void()>&& fn) { fn(); }, ring.capacity());
    }
    return n;
}

bool reactor::inbound_ready() {
    if (_group == nullptr) return false;
    for (unsigned from = 0; from < _group->size(); ++from) {
        if (from != core() && !_group->ring(from, core()).empty()) return true;
    }
    return false;
}

void reactor::stop() {
    _stop = true;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(_wake_fd.get(), &one, sizeof one);
}

timer_id reactor::add_timer(std::chrono::microseconds delay, std::function<void()> fn) {
    timer_id id = _next_timer++;
    _timer_heap.push(timer{clock_type::now() + delay, id});
    _timer_fns.emplace_back(id, std::move(fn));
    return id;
}

void reactor::cancel_timer(timer_id id) {
    auto it = std::find_if(_timer_fns.begin(), _timer_fns.end(),
                           [id](auto& p) { return p.first == id; });
    if (it != _timer_fns.end()) _timer_fns.erase(it);
}

size_t reactor::fire_timers() {
    size_t n = 0;
    auto now = clock_type::now();
    while (!_timer_heap.empty() && _timer_heap.top().when <= now) {
        timer_id id = _timer_heap.top().id;
        _timer_heap.pop();
        auto it = std::find_if(_timer_fns.begin(), _timer_fns.end(),
                               [id](auto& p) { return p.first == id; });
        if (it == _timer_fns.end()) continue;  // cancelled
        auto fn = std::move(it->second);
        _timer_fns.erase(it);
        fn();
        ++n;
    }
    return n;
}

std::chrono::microseconds reactor::next_timer_delay(std::chrono::microseconds cap) const {
    if (_timer_heap.empty()) return cap;
    auto d = std::chrono::duration_cast<std::chrono::microseconds>(_timer_heap.top().when -
                                                                   clock_type::now());
    return std::clamp(d, std::chrono::microseconds(0), cap);
}

size_t reactor::run_tasks() {
    size_t n = run_inbound();
    std::vector<std::function<void()>> posted;
    {
        std::lock_guard lock(_posted_mu);
        posted.swap(_posted);
    }
    for (auto& f : posted) f();
    n += posted.size();
    // Tasks deferred while running tasks run on the next iteration, so a task that re-defers
    // itself cannot starve I/O.
    std::vector<std::function<void()>> tasks;
    tasks.swap(_tasks);
    for (auto& f : tasks) f();
    return n + tasks.size();
}

size_t reactor::reap_completions() {
    size_t n = 0;
    io_uring_cqe* cqe;
    unsigned head;
    unsigned count = 0;
    // Completions can submit new work (and so re-enter get_sqe), which is safe: the CQ ring is
    // advanced only after this batch.
    std::vector<std::tuple<io_completion*, int, uint32_t>> batch;
    io_uring_for_each_cqe(&_ring, head, cqe) {
        batch.emplace_back(static_cast<io_completion*>(io_uring_cqe_get_data(cqe)), cqe->res,
                           cqe->flags);
        ++count;
    }
    io_uring_cq_advance(&_ring, count);
    for (auto& [c, res, flags] : batch) {
        if (c != nullptr) {
            c->on_complete(c, res, flags);
            ++n;
        }
    }
    _completed_total += n;
    return n;
}

void reactor::add_poller(poller* p) { _pollers.push_back(p); }

void reactor::remove_poller(poller* p) { std::erase(_pollers, p); }

size_t reactor::run_pollers() {
    size_t n = 0;
    for (size_t i = 0; i < _pollers.size(); ++i) n += _pollers[i]->poll() ? 1 : 0;
    if (n > 0) _last_poll_work = clock_type::now();
    return n;
}

// How long the loop may block with pollers registered: not at all while they were busy
// recently, fully once every poller has armed a wakeup, in short naps otherwise.
std::chrono::microseconds reactor::poller_wait(std::chrono::microseconds wait) {
    if (_pollers.empty()) return wait;
    if (clock_type::now() - _last_poll_work < poller_spin) return std::chrono::microseconds(0);
    bool all_armed = true;
    for (poller* p : _pollers) all_armed = p->arm_wakeup() && all_armed;
    return all_armed ? wait : std::min(wait, poller_nap);
}

size_t reactor::run_once(std::chrono::microseconds max_wait) {
    flush_outboxes();
    size_t n = run_tasks();
    n += fire_timers();
    n += reap_completions();
    n += run_pollers();
    if (n == 0 && _tasks.empty()) {
        auto wait = poller_wait(next_timer_delay(max_wait));
        // A full ring's messages must not wait for this reactor's next wake-up: nap briefly
        // while the receiver drains it.
        if (flush_outboxes()) wait = std::min(wait, outbox_nap);
        if (wait.count() > 0 && _group != nullptr) {
            _sleeping.store(true, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (inbound_ready()) wait = std::chrono::microseconds(0);
        }
        __kernel_timespec ts{};
        ts.tv_sec = wait.count() / 1'000'000;
        ts.tv_nsec = (wait.count() % 1'000'000) * 1000;
        if (wait.count() > 0) {
            io_uring_cqe* cqe = nullptr;
            unsigned before = io_uring_sq_ready(&_ring);
            auto slept_from = std::chrono::steady_clock::now();
            int rc = io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, nullptr);
            _sleeping.store(false, std::memory_order_relaxed);
            _idle += std::chrono::steady_clock::now() - slept_from;
            if (rc >= 0 || rc == -ETIME) _submitted_total += before;
        } else {
            _sleeping.store(false, std::memory_order_relaxed);
            flush();
        }
        n += reap_completions();
        n += fire_timers();
    } else {
        flush();
    }
    return n;
}

void reactor::run() {
    while (!_stop) run_once(std::chrono::milliseconds(100));
    flush();
}

void reactor::run_until(const std::function<bool()>& done) {
    while (!done()) run_once(std::chrono::milliseconds(10));
}

}  // namespace sluice::runtime

SLUICE_DEFINE_ERRC(sluice::runtime, errc, "runtime", describe)
