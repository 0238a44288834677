#include "net/dpdk_stack.h"

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_thash.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/log.h"
#include "net/errc.h"
#include "net/ip_stack.h"
#include "net/posix_stack.h"
#include "runtime/reactor.h"

namespace sluice::net {

namespace {

using namespace std::chrono_literals;

// Bounds of the packet path, all allocated at start.
constexpr uint16_t rx_burst = 32;
constexpr uint16_t tx_batch = 64;
constexpr uint16_t rx_descriptors = 1024;
constexpr uint16_t tx_descriptors = 1024;
constexpr unsigned mbufs_per_core = 16383;  // 2^n - 1 is what the ring-based pool likes
constexpr unsigned jumbo_mbufs_per_core = 8191;  // when frames above 2 KiB need bigger mbufs
constexpr unsigned mbuf_cache = 256;
constexpr unsigned ext_refs_per_core = 16383;
constexpr unsigned steer_ring_slots = 4096;
constexpr size_t attach_min_bytes = 256;  // shorter payload runs are copied into the header mbuf
constexpr int tx_retries = 8;
constexpr auto idle_check_interval = 100ms;

// The well-known Toeplitz key most NICs ship with; the software steer uses the same one so a
// port with RSS and the steer agree on which core owns a flow.
const uint8_t rss_key[40] = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
                             0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
                             0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
                             0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

std::string dpdk_error(const std::string& what, int rc) {
    return what + ": " + rte_strerror(rc < 0 ? -rc : rc);
}

// One external-buffer reference: keeps the owner of payload bytes attached to an mbuf alive
// until the port has sent it. Taken from a per-core mempool (no allocation per packet).
// Consecutive runs of one owner (a fetch's mapping, a response buffer: tens of segments) share
// one shared_ptr copy: the first ref, the leader, holds it and counts the refs that lean on it
// with a plain integer, instead of an atomic increment and decrement per segment. Plain is
// enough: a core's TX mbufs are freed on that core's thread (its tx_burst and its own frees),
// or after the cores stopped (port stop at shutdown).
struct ext_ref {
    rte_mbuf_ext_shared_info shinfo;
    std::shared_ptr<const void> owner;  // a leader's
    ext_ref* leader = nullptr;          // the ref holding the owner (a leader: itself)
    uint32_t users = 0;                 // a leader's: refs, its own included, still attached
    ext_ref** last = nullptr;           // a leader's: its core's newest-leader slot
    rte_mempool* pool = nullptr;
};

void ext_ref_free(void*, void* opaque) {
    auto* r = static_cast<ext_ref*>(opaque);
    ext_ref* l = r->leader;
    if (r != l) rte_mempool_put(r->pool, r);
    if (--l->users > 0) return;
    if (*l->last == l) *l->last = nullptr;
    l->owner.reset();
    rte_mempool_put(l->pool, l);
}

bool same_owner(const std::shared_ptr<const void>& a, const std::shared_ptr<const void>& b) {
    return !a.owner_before(b) && !b.owner_before(a);
}

void ext_ref_init(rte_mempool* mp, void*, void* obj, unsigned) {
    auto* r = new (obj) ext_ref();
    r->pool = mp;
}

// Test-only fault injection at the port (sluice.dpdk.test.faults).
struct fault_rates {
    double loss = 0;
    double duplicate = 0;
    double reorder = 0;
    bool any() const { return loss > 0 || duplicate > 0 || reorder > 0; }
};

std::optional<fault_rates> parse_faults(const std::string& text) {
    fault_rates f;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) {
        if (item.empty()) continue;
        auto eq = item.find('=');
        if (eq == std::string::npos) return std::nullopt;
        std::string k = item.substr(0, eq);
        char* end = nullptr;
        double v = std::strtod(item.c_str() + eq + 1, &end);
        if (end == item.c_str() + eq + 1 || *end != 0 || v < 0 || v > 1) return std::nullopt;
        if (k == "loss") {
            f.loss = v;
        } else if (k == "duplicate") {
            f.duplicate = v;
        } else if (k == "reorder") {
            f.reorder = v;
        } else {
            return std::nullopt;
        }
    }
    return f;
}

struct port_setup {
    fault_rates faults;
    uint16_t mtu = 1500;  // asked for (sluice.dpdk.mtu)
    bool mtu_beyond_driver = false;  // net_memif: above what the driver reports, see make_dpdk_stack
    uint16_t port = 0;
    unsigned queues = 1;
    bool rss = false;
    uint16_t reta_size = 128;
    bool rx_interrupts = false;
    bool multi_seg = false;
    bool attach_ok = false;  // payload runs can ride as external buffers (IOVA as VA)
    uint16_t max_segs = 1;
    bool rx_ip_checksum = false;
    bool rx_tcp_checksum = false;
    link_caps caps;
    std::vector<rte_mempool*> pools;
    std::vector<rte_mempool*> ext_pools;
    // Per queue: the newest leader ext_ref (see ext_ref), or null.
    std::unique_ptr<ext_ref*[]> last_ext;
    std::vector<rte_ring*> steer;
    std::string name;
};

// The IPv4 address (host order) of an AF_INET socket address.
std::optional<inet::ipv4_address> ipv4_of(const socket_address& a) {
    if (a.family() != AF_INET) return std::nullopt;
    return ntohl(reinterpret_cast<const sockaddr_in*>(a.sa())->sin_addr.s_addr);
}

std::mutex g_eal_mu;
bool g_eal_started = false;

}  // namespace

class dpdk_stack;

// One core's queue pair, link and ip_stack. Created on, and used only by, its reactor's thread,
// except `steer` (multi-producer: other cores hand it this core's packets) and `sleeping`.
class dpdk_core final : public link, public runtime::reactor::poller {
  public:
    dpdk_core(dpdk_stack& s, runtime::reactor& r, unsigned q);
    ~dpdk_core() override;

    const link_caps& caps() const override;
    void transmit(std::span<const std::byte> headers, std::span<const payload_run> payload,
                  bool l4_offload) override;
    void flush() override;
    bool poll() override;
    bool arm_wakeup() override;

    void ensure_polling();
    runtime::reactor& reactor() { return _reactor; }
    ip_stack& stack() { return *_ip; }
    std::atomic<bool> sleeping{false};

  private:
    void handle(rte_mbuf* m);
    void maybe_stop_polling();
    uint16_t inject_faults(rte_mbuf** pkts, uint16_t n, uint16_t cap, std::vector<rte_mbuf*>& held);
    struct poll_op : runtime::io_completion {
        dpdk_core* self = nullptr;
    };

    dpdk_stack& _stack;
    runtime::reactor& _reactor;
    unsigned _q;
    const port_setup& _port;
    std::unique_ptr<ip_stack> _ip;
    rte_mbuf* _tx[tx_batch];
    uint16_t _tx_n = 0;
    bool _polling = false;
    bool _intr_armed = false;  // a POLLIN on the queue's interrupt fd is in flight
    int _intr_fd = -1;
    poll_op _poll_op;
    tcp::time_point _next_idle_check{};
    uint64_t _bytes_attached = 0;
    uint64_t _frames_received = 0;
    uint32_t _largest_frame = 0;  // received, Ethernet header included
    uint64_t _bytes_copied = 0;
    uint64_t _tx_dropped = 0;
    uint64_t _steered_out = 0;
    std::minstd_rand _rng{12345};
    std::vector<rte_mbuf*> _rx_held;  // reordered: released after the next burst
    std::vector<rte_mbuf*> _tx_held;
    uint64_t _faults_injected = 0;
};

class dpdk_stack final : public network_stack {
  public:
    dpdk_stack(port_setup port, ip_stack_config cfg)
        : _port(std::move(port)), _cfg(std::move(cfg)), _slots(_port.queues),
          _published(std::make_unique<std::atomic<dpdk_core*>[]>(_port.queues)) {
        _posix = make_posix_stack();
    }
    ~dpdk_stack() override {
        // The reactors are gone by now; the cores stopped polling when their last listener and
        // connection closed (see dpdk_core::maybe_stop_polling).
        for (auto& s : _slots) s.reset();
        rte_eth_dev_stop(_port.port);
        rte_eth_dev_close(_port.port);
    }
    std::string_view name() const override { return "dpdk"; }

    result<std::unique_ptr<listener>> listen(runtime::reactor& r, const socket_address& address,
                                             listen_options options,
                                             accept_callback on_accept) override;
    void connect(runtime::reactor& r, const socket_address& address, connect_options options,
                 connect_callback on_connected) override;

    const port_setup& port() const { return _port; }
    const ip_stack_config& config() const { return _cfg; }
    arp_table& arp() { return *_arp; }
    std::shared_ptr<arp_table> arp_ptr() { return _arp; }
    unsigned owner_of(inet::ipv4_address rip, uint16_t rport, uint16_t lport) const;
    void steer(unsigned core, rte_mbuf* m);

  private:
    dpdk_core* core_for(runtime::reactor& r);

    port_setup _port;
    ip_stack_config _cfg;
    std::shared_ptr<arp_table> _arp = std::make_shared<arp_table>();
    std::vector<std::unique_ptr<dpdk_core>> _slots;
    std::unique_ptr<std::atomic<dpdk_core*>[]> _published;  // read by other cores' steer()
    std::unique_ptr<network_stack> _posix;
};

// ---------------------------------------------------------------- dpdk_core

dpdk_core::dpdk_core(dpdk_stack& s, runtime::reactor& r, unsigned q)
    : _stack(s), _reactor(r), _q(q), _port(s.port()) {
    rte_thread_register();  // an lcore id, so the mempool caches serve this thread
    _ip = std::make_unique<ip_stack>(
        r, *this, s.arp_ptr(), s.config(), q,
        [&s](inet::ipv4_address rip, uint16_t rport, uint16_t lport) {
            return s.owner_of(rip, rport, lport);
        });
    _poll_op.self = this;
    _poll_op.on_complete = [](runtime::io_completion* c, int, uint32_t) {
        static_cast<poll_op*>(c)->self->_intr_armed = false;
    };
    if (_port.rx_interrupts) _intr_fd = rte_eth_dev_rx_intr_ctl_q_get_fd(_port.port, q);
}

dpdk_core::~dpdk_core() {
    // The stack outlives the reactors (the broker destroys it last): the reactor is gone, so
    // neither the poller registration nor any timer is touched.
    _ip->forget_reactor();
    _ip.reset();
    for (uint16_t i = 0; i < _tx_n; ++i) rte_pktmbuf_free(_tx[i]);
    for (rte_mbuf* m : _rx_held) rte_pktmbuf_free(m);
    for (rte_mbuf* m : _tx_held) rte_pktmbuf_free(m);
    if (_faults_injected > 0) log::info("net", "dpdk core ", _q, ": ", _faults_injected, " faults injected");
    log::info("net", "dpdk core ", _q, ": ", _bytes_attached, " payload bytes sent attached, ",
              _bytes_copied, " copied; ", _tx_dropped, " frames dropped at a full TX queue; ",
              _steered_out, " frames steered to other cores; ", _frames_received,
              " frames received, the largest ", _largest_frame, " bytes");
}

const link_caps& dpdk_core::caps() const { return _port.caps; }

void dpdk_core::ensure_polling() {
    if (_polling) return;
    _polling = true;
    _reactor.add_poller(this);
}

void dpdk_core::maybe_stop_polling() {
    auto now = tcp::clock::now();
    if (now < _next_idle_check) return;
    _next_idle_check = now + idle_check_interval;
    if (!_ip->idle()) return;
    // No listener and no open connection: the application is done with this core (it closes
    // everything before destroying the reactor). Flows still closing are reset.
    _ip->shutdown();
    _polling = false;
    _reactor.defer([this] {
        if (!_polling) _reactor.remove_poller(this);
    });
}

void dpdk_core::transmit(std::span<const std::byte> headers, std::span<const payload_run> payload,
                         bool l4_offload) {
    rte_mempool* pool = _port.pools[_q];
    rte_mbuf* head = rte_pktmbuf_alloc(pool);
    if (head == nullptr) {
        ++_tx_dropped;  // TCP resends it
        return;
    }
    std::memcpy(rte_pktmbuf_append(head, static_cast<uint16_t>(headers.size())), headers.data(),
                headers.size());
    rte_mbuf* last = head;
    for (const payload_run& run : payload) {
        bool attach = _port.attach_ok && run.size >= attach_min_bytes && run.owner != nullptr &&
                      *run.owner != nullptr && head->nb_segs < _port.max_segs;
        ext_ref* ref = nullptr;
        rte_mbuf* seg = nullptr;
        if (attach && rte_mempool_get(_port.ext_pools[_q], reinterpret_cast<void**>(&ref)) == 0) {
            seg = rte_pktmbuf_alloc(pool);
            if (seg == nullptr) {
                rte_mempool_put(_port.ext_pools[_q], ref);
                ref = nullptr;
            }
        }
        if (seg != nullptr) {
            // Zero copy: the mbuf points at the page-cache mapping (or the response buffer),
            // and the reference keeps it alive until the port is done with the frame.
            ext_ref*& newest = _port.last_ext[_q];
            if (newest != nullptr && same_owner(newest->owner, *run.owner)) {
                ref->leader = newest;
                ++newest->users;
            } else {
                ref->owner = *run.owner;
                ref->leader = ref;
                ref->users = 1;
                ref->last = &newest;
                newest = ref;
            }
            ref->shinfo.free_cb = ext_ref_free;
            ref->shinfo.fcb_opaque = ref;
            rte_mbuf_ext_refcnt_set(&ref->shinfo, 1);
            auto* data = const_cast<std::byte*>(run.data);
            rte_iova_t iova = reinterpret_cast<rte_iova_t>(data);
            rte_pktmbuf_attach_extbuf(seg, data, iova, static_cast<uint16_t>(run.size),
                                      &ref->shinfo);
            seg->data_len = static_cast<uint16_t>(run.size);
            seg->pkt_len = static_cast<uint32_t>(run.size);
            last->next = seg;
            last = seg;
            head->nb_segs = static_cast<uint16_t>(head->nb_segs + 1);
            head->pkt_len += static_cast<uint32_t>(run.size);
            _bytes_attached += run.size;
            continue;
        }
        // Copied: into the last segment if it has room (an attached one never has), else
        // into a fresh segment chained after it.
        if (rte_pktmbuf_tailroom(last) < run.size) {
            rte_mbuf* fresh = _port.multi_seg ? rte_pktmbuf_alloc(pool) : nullptr;
            if (fresh == nullptr) {
                rte_pktmbuf_free(head);
                ++_tx_dropped;
                return;
            }
            last->next = fresh;
            last = fresh;
            head->nb_segs = static_cast<uint16_t>(head->nb_segs + 1);
        }
        char* dst = rte_pktmbuf_append(last, static_cast<uint16_t>(run.size));
        SLUICE_ASSERT(dst != nullptr, "no room in a fresh mbuf for a payload run");
        if (last != head) head->pkt_len += static_cast<uint32_t>(run.size);
        std::memcpy(dst, run.data, run.size);
        _bytes_copied += run.size;
    }
    head->l2_len = inet::ethernet_header_bytes;
    head->l3_len = inet::ipv4_header_bytes;
    // Only IPv4 frames ask for checksum offload (an ARP frame would get "fixed" in place).
    bool ipv4 = headers.size() >= inet::ethernet_header_bytes + inet::ipv4_header_bytes &&
                bytes::load_be16(headers.data() + 12) == inet::ethertype_ipv4;
    if (ipv4 && _port.caps.tx_ip_checksum) {
        head->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    }
    if (l4_offload) {
        head->l4_len = static_cast<uint8_t>(headers.size() - inet::ethernet_header_bytes -
                                            inet::ipv4_header_bytes);
        head->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
    }
    _tx[_tx_n++] = head;
    if (_tx_n == tx_batch) flush();
}

// Drops, duplicates and holds back frames of a burst in place (test only). Frames held back
// from the previous burst join this one at the end, so they arrive after newer ones.
uint16_t dpdk_core::inject_faults(rte_mbuf** pkts, uint16_t n, uint16_t cap,
                                  std::vector<rte_mbuf*>& held) {
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<rte_mbuf*> out;
    out.reserve(n + held.size() + 4);
    std::vector<rte_mbuf*> hold_next;
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        double r = u(_rng);
        ++_faults_injected;
        if (r < _port.faults.loss) {
            rte_pktmbuf_free(m);
        } else if (r < _port.faults.loss + _port.faults.duplicate) {
            out.push_back(m);
            if (rte_mbuf* c = rte_pktmbuf_copy(m, _port.pools[_q], 0, UINT32_MAX)) out.push_back(c);
        } else if (r < _port.faults.loss + _port.faults.duplicate + _port.faults.reorder) {
            hold_next.push_back(m);
        } else {
            --_faults_injected;
            out.push_back(m);
        }
    }
    for (rte_mbuf* m : held) out.push_back(m);
    held = std::move(hold_next);
    uint16_t k = 0;
    for (rte_mbuf* m : out) {
        if (k < cap) {
            pkts[k++] = m;
        } else {
            rte_pktmbuf_free(m);
        }
    }
    return k;
}

void dpdk_core::flush() {
    if (_port.faults.any() && (_tx_n > 0 || !_tx_held.empty())) {
        _tx_n = inject_faults(_tx, _tx_n, tx_batch, _tx_held);
    }
    uint16_t sent = 0;
    for (int attempt = 0; attempt < tx_retries && sent < _tx_n; ++attempt) {
        sent += rte_eth_tx_burst(_port.port, static_cast<uint16_t>(_q), _tx + sent,
                                 static_cast<uint16_t>(_tx_n - sent));
    }
    // What the queue would not take is dropped; TCP recovers it like any loss.
    for (uint16_t i = sent; i < _tx_n; ++i) {
        rte_pktmbuf_free(_tx[i]);
        ++_tx_dropped;
    }
    _tx_n = 0;
}

void dpdk_core::handle(rte_mbuf* m) {
    if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
        rte_pktmbuf_free(m);
        return;
    }
    auto* data = rte_pktmbuf_mtod(m, const std::byte*);
    size_t len = m->data_len;
    // Software steer: a TCP segment belongs to the core its 4-tuple hashes to.
    if (_port.queues > 1 && len >= 14 + 20 + 4 && bytes::load_be16(data + 12) == 0x0800 &&
        static_cast<uint8_t>(data[14 + 9]) == inet::ip_proto_tcp) {
        size_t ihl = (static_cast<uint8_t>(data[14]) & 0x0f) * 4u;
        if (len >= 14 + ihl + 4) {
            unsigned owner = _stack.owner_of(bytes::load_be32(data + 14 + 12),
                                             bytes::load_be16(data + 14 + ihl),
                                             bytes::load_be16(data + 14 + ihl + 2));
            if (owner != _q) {
                ++_steered_out;
                _stack.steer(owner, m);
                return;
            }
        }
    }
    // Counted by the core that takes it in (a steered frame passes here twice).
    ++_frames_received;
    _largest_frame = std::max(_largest_frame, m->pkt_len);
    rx_meta meta;
    // A trusted link's frames count as verified: nobody computed their checksums.
    meta.ip_checksum_good = _port.caps.checksums_unneeded ||
                            (_port.rx_ip_checksum && (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) ==
                                                         RTE_MBUF_F_RX_IP_CKSUM_GOOD);
    meta.tcp_checksum_good = _port.caps.checksums_unneeded ||
                             (_port.rx_tcp_checksum &&
                              (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) ==
                                  RTE_MBUF_F_RX_L4_CKSUM_GOOD);
    _ip->receive({data, len}, meta);
    rte_pktmbuf_free(m);
}

bool dpdk_core::poll() {
    sleeping.store(false, std::memory_order_relaxed);
    rte_mbuf* pkts[rx_burst * 2];
    uint16_t n = rte_eth_rx_burst(_port.port, static_cast<uint16_t>(_q), pkts, rx_burst);
    if (_port.faults.any() && (n > 0 || !_rx_held.empty())) {
        n = inject_faults(pkts, n, rx_burst * 2, _rx_held);
    }
    rte_mbuf* steered[rx_burst];
    unsigned m = rte_ring_sc_dequeue_burst(_port.steer[_q], reinterpret_cast<void**>(steered),
                                           rx_burst, nullptr);
    if (n + m > 0) {
        ip_stack::burst one_clock_reading(*_ip);
        for (uint16_t i = 0; i < n; ++i) handle(pkts[i]);
        for (unsigned i = 0; i < m; ++i) handle(steered[i]);
    }
    if (n + m > 0 || _tx_n > 0 || !_tx_held.empty()) flush();
    if (n + m == 0) maybe_stop_polling();
    return n + m > 0;
}

bool dpdk_core::arm_wakeup() {
    if (!_polling || _intr_fd < 0) return false;
    // Other cores wake us with post() when they steer a packet here while we sleep.
    sleeping.store(true, std::memory_order_seq_cst);
    if (rte_ring_count(_port.steer[_q]) > 0) {
        sleeping.store(false);
        return false;
    }
    if (!_intr_armed) {
        rte_eth_dev_rx_intr_enable(_port.port, static_cast<uint16_t>(_q));
        io_uring_sqe* sqe = _reactor.get_sqe();
        io_uring_prep_poll_add(sqe, _intr_fd, POLLIN);
        runtime::reactor::arm(sqe, &_poll_op);
        _intr_armed = true;
    }
    return true;
}

// ---------------------------------------------------------------- dpdk_stack

unsigned dpdk_stack::owner_of(inet::ipv4_address rip, uint16_t rport, uint16_t lport) const {
    if (_port.queues <= 1) return 0;
    uint32_t tuple[3] = {rip, _cfg.ip, (static_cast<uint32_t>(rport) << 16) | lport};
    uint32_t h = rte_softrss(tuple, 3, rss_key);
    // The default redirection table sends entry i to queue i % queues.
    return (h % _port.reta_size) % _port.queues;
}

void dpdk_stack::steer(unsigned core, rte_mbuf* m) {
    if (rte_ring_mp_enqueue(_port.steer[core], m) != 0) {
        rte_pktmbuf_free(m);  // the owner is overloaded: a drop TCP recovers from
        return;
    }
    dpdk_core* target = _published[core].load(std::memory_order_acquire);
    if (target != nullptr && target->sleeping.exchange(false)) target->reactor().post([] {});
}

dpdk_core* dpdk_stack::core_for(runtime::reactor& r) {
    unsigned q = r.core();
    if (q >= _slots.size()) return nullptr;
    if (!_slots[q]) {
        _slots[q] = std::make_unique<dpdk_core>(*this, r, q);
        _published[q].store(_slots[q].get(), std::memory_order_release);
    }
    if (&_slots[q]->reactor() != &r) return nullptr;
    return _slots[q].get();
}

result<std::unique_ptr<listener>> dpdk_stack::listen(runtime::reactor& r,
                                                     const socket_address& address,
                                                     listen_options options,
                                                     accept_callback on_accept) {
    dpdk_core* c = core_for(r);
    if (c == nullptr) {
        return error(errc::listen_failed,
                     "core " + std::to_string(r.core()) + " has no queue on DPDK port " +
                         _port.name + " (" + std::to_string(_port.queues) + " queue(s))");
    }
    std::optional<inet::ipv4_address> v4 = ipv4_of(address);
    bool any = address.is_ipv6_any() || (v4 && *v4 == 0);
    if (!any && v4 != _cfg.ip) {
        return error(errc::listen_failed, "listener address " + address.to_string() +
                                              " is not the dpdk stack's address " +
                                              inet::ipv4_to_string(_cfg.ip) + " (sluice.dpdk.ip)");
    }
    auto l = c->stack().listen(address.port(), std::move(options), std::move(on_accept));
    if (l) c->ensure_polling();
    return l;
}

void dpdk_stack::connect(runtime::reactor& r, const socket_address& address,
                         connect_options options, connect_callback on_connected) {
    dpdk_core* c = core_for(r);
    std::optional<inet::ipv4_address> ip = ipv4_of(address);
    // Loopback peers and reactors without a queue of their own use the kernel's sockets.
    if (c == nullptr || !ip || address.is_loopback()) {
        if (_posix) return _posix->connect(r, address, std::move(options), std::move(on_connected));
        on_connected(error(errc::connect_failed, "no route to " + address.to_string()));
        return;
    }
    c->ensure_polling();
    c->stack().connect(*ip, address.port(), std::move(options), std::move(on_connected));
}

// ---------------------------------------------------------------- start-up

namespace {

// The memif packet buffer that holds a whole frame of `mtu` in one ring slot (and fits the
// mbufs create_pools() makes for it), or 0 below jumbo sizes, where the driver's 2 KiB do.
unsigned memif_buffer_for(unsigned mtu) {
    if (mtu <= 1500) return 0;
    return (mtu + inet::ethernet_header_bytes + 4 + 63) / 64 * 64;
}

std::vector<std::string> eal_arguments(const std::string& args, unsigned mtu) {
    std::vector<std::string> out{"sluice"};
    std::istringstream in(args);
    for (std::string w; in >> w;) out.push_back(w);
    // net_memif carries a frame longer than its buffer as a chain of buffers, which the
    // receiver would then copy together: a jumbo MTU gets buffers of a frame each unless the
    // arguments size them (bsize=) themselves.
    if (unsigned bsize = memif_buffer_for(mtu); bsize != 0) {
        for (size_t i = 1; i < out.size(); ++i) {
            std::string& w = out[i];
            bool vdev = w.starts_with("--vdev=net_memif") ||
                        (w.starts_with("net_memif") && out[i - 1] == "--vdev");
            if (vdev && w.find("bsize=") == std::string::npos) w += ",bsize=" + std::to_string(bsize);
        }
    }
    auto given = [&](std::string_view prefix) {
        for (auto& a : out) {
            if (a.starts_with(prefix)) return true;
        }
        return false;
    };
    if (!given("-l") && !given("--lcores") && !given("-c")) {
        out.push_back("-l");
        out.push_back("0");
    }
    // No shared configuration: a broker has no secondary processes, and the multi-process
    // channel's thread was measured taking ~15% of a core on a busy tap port (its recvmsg keeps
    // being interrupted by the tap PMD's SIGIO), besides leaving files in /var/run/dpdk.
    if (!given("--file-prefix") && !given("--in-memory") && !given("--no-shconf") &&
        !given("--proc-type")) {
        out.push_back("--no-shconf");
    }
    if (!given("--log-level")) out.push_back("--log-level=notice");
    if (!given("--telemetry") && !given("--no-telemetry")) out.push_back("--no-telemetry");
    return out;
}

result<void> start_eal(const std::string& args, unsigned mtu) {
    std::lock_guard lock(g_eal_mu);
    if (g_eal_started) {
        return error(errc::stack_start_failed, "DPDK is already running in this process");
    }
    auto words = eal_arguments(args, mtu);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    // EAL pins the calling thread to lcore 0's CPU; the broker's threads inherit affinity, so
    // the original mask is put back once EAL is up.
    cpu_set_t saved;
    CPU_ZERO(&saved);
    bool have_mask = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
    int rc = rte_eal_init(static_cast<int>(words.size()), argv.data());
    if (have_mask) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    if (rc < 0) {
        std::string joined;
        for (auto& w : words) joined += (joined.empty() ? "" : " ") + w;
        return error(errc::stack_start_failed,
                     dpdk_error("rte_eal_init(" + joined + ") failed", rte_errno));
    }
    g_eal_started = true;
    return ok();
}

result<void> configure_port(port_setup& p, const rte_eth_dev_info& info) {
    uint64_t tx_offloads = 0;
    uint64_t rx_offloads = 0;
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
        tx_offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
        p.multi_seg = true;
    }
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
        tx_offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
        p.caps.tx_ip_checksum = true;
    }
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) {
        tx_offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
        p.caps.tx_tcp_checksum = true;
    }
    if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
        rx_offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
        p.rx_ip_checksum = true;
    }
    if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) {
        rx_offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
        p.rx_tcp_checksum = true;
    }
    uint64_t rss_hf = info.flow_type_rss_offloads &
                      (RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_IPV4);
    // Try the richest set first; ports refuse what they cannot do at configure time.
    struct attempt {
        bool rss;
        bool intr;
    };
    int rc = 0;
    for (attempt a : {attempt{true, true}, attempt{true, false}, attempt{false, true},
                      attempt{false, false}}) {
        if (a.rss && (p.queues < 2 || rss_hf == 0)) continue;
        rte_eth_conf conf{};
        conf.txmode.offloads = tx_offloads;
        conf.rxmode.offloads = rx_offloads;
        if (a.rss) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = const_cast<uint8_t*>(rss_key);
            conf.rx_adv_conf.rss_conf.rss_key_len = sizeof rss_key;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        conf.intr_conf.rxq = a.intr ? 1 : 0;
        conf.rxmode.mtu = p.mtu_beyond_driver ? RTE_ETHER_MTU : p.mtu;
        rc = rte_eth_dev_configure(p.port, static_cast<uint16_t>(p.queues),
                                   static_cast<uint16_t>(p.queues), &conf);
        if (rc != 0) continue;
        uint16_t nrx = rx_descriptors;
        uint16_t ntx = tx_descriptors;
        rte_eth_dev_adjust_nb_rx_tx_desc(p.port, &nrx, &ntx);
        int socket = rte_eth_dev_socket_id(p.port);
        if (socket < 0) socket = 0;
        bool queues_ok = true;
        for (unsigned q = 0; q < p.queues && queues_ok; ++q) {
            rte_eth_rxconf rxc = info.default_rxconf;
            rxc.offloads = rx_offloads;
            rte_eth_txconf txc = info.default_txconf;
            txc.offloads = tx_offloads;
            rc = rte_eth_rx_queue_setup(p.port, static_cast<uint16_t>(q), nrx,
                                        static_cast<unsigned>(socket), &rxc, p.pools[q]);
            if (rc == 0) {
                rc = rte_eth_tx_queue_setup(p.port, static_cast<uint16_t>(q), ntx,
                                            static_cast<unsigned>(socket), &txc);
            }
            queues_ok = rc == 0;
        }
        if (!queues_ok) continue;
        rc = rte_eth_dev_start(p.port);
        if (rc != 0) continue;
        p.rss = a.rss;
        p.rx_interrupts = a.intr;
        if (a.rss && info.reta_size > 0) p.reta_size = info.reta_size;
        return ok();
    }
    return error(errc::stack_start_failed, dpdk_error("configuring DPDK port " + p.name, rc));
}

result<void> create_pools(port_setup& p) {
    p.last_ext = std::make_unique<ext_ref*[]>(p.queues);  // all null
    for (unsigned q = 0; q < p.queues; ++q) {
        std::string n = "sluice_mb" + std::to_string(q);
        // A frame always fits one mbuf: received frames are parsed in place.
        size_t frame_room = RTE_PKTMBUF_HEADROOM + p.mtu + inet::ethernet_header_bytes + 4;
        bool jumbo = frame_room > RTE_MBUF_DEFAULT_BUF_SIZE;
        auto room = static_cast<uint16_t>(jumbo ? (frame_room + 1023) / 1024 * 1024
                                                : RTE_MBUF_DEFAULT_BUF_SIZE);
        unsigned count = jumbo ? jumbo_mbufs_per_core : mbufs_per_core;
        rte_mempool* mp = rte_pktmbuf_pool_create(n.c_str(), count, mbuf_cache, 0, room,
                                                  static_cast<int>(rte_socket_id()));
        if (mp == nullptr) {
            return error(errc::stack_start_failed,
                         dpdk_error("creating the mbuf pool (" + std::to_string(count) +
                                        " mbufs; with --no-huge give EAL memory, e.g. -m 512)",
                                    rte_errno));
        }
        p.pools.push_back(mp);
        std::string en = "sluice_ext" + std::to_string(q);
        rte_mempool* ep = rte_mempool_create(en.c_str(), ext_refs_per_core, sizeof(ext_ref), 256,
                                             0, nullptr, nullptr, ext_ref_init, nullptr,
                                             static_cast<int>(rte_socket_id()), 0);
        if (ep == nullptr) {
            return error(errc::stack_start_failed,
                         dpdk_error("creating the external-buffer pool", rte_errno));
        }
        p.ext_pools.push_back(ep);
        std::string rn = "sluice_steer" + std::to_string(q);
        rte_ring* ring = rte_ring_create(rn.c_str(), steer_ring_slots,
                                         static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
        if (ring == nullptr) {
            return error(errc::stack_start_failed, dpdk_error("creating a steering ring", rte_errno));
        }
        p.steer.push_back(ring);
    }
    return ok();
}

result<ip_stack_config> interface_config(const stack_options& o) {
    ip_stack_config cfg;
    auto ip = inet::parse_ipv4(o.ip);
    if (!ip || *ip == 0) {
        return error(errc::address_invalid, "sluice.dpdk.ip '" + o.ip +
                                                "' is not an IPv4 address (the dpdk stack needs "
                                                "its own address, e.g. sluice.dpdk.ip=198.18.0.2)");
    }
    auto mask = inet::parse_ipv4(o.netmask);
    if (!mask) return error(errc::address_invalid, "sluice.dpdk.netmask '" + o.netmask + "'");
    cfg.ip = *ip;
    cfg.netmask = *mask;
    if (!o.gateway.empty()) {
        auto gw = inet::parse_ipv4(o.gateway);
        if (!gw) return error(errc::address_invalid, "sluice.dpdk.gateway '" + o.gateway + "'");
        cfg.gateway = *gw;
    }
    using std::chrono::milliseconds;
    if (o.tcp_user_timeout_ms) cfg.tcp.user_timeout = milliseconds(o.tcp_user_timeout_ms);
    if (o.tcp_keepalive_idle_ms) cfg.tcp.keepalive_idle = milliseconds(o.tcp_keepalive_idle_ms);
    if (o.tcp_keepalive_interval_ms) {
        cfg.tcp.keepalive_interval = milliseconds(o.tcp_keepalive_interval_ms);
    }
    if (o.tcp_recv_buffer_bytes) cfg.tcp.recv_buffer_bytes = o.tcp_recv_buffer_bytes;
    if (o.tcp_send_buffer_bytes) cfg.tcp.send_buffer_bytes = o.tcp_send_buffer_bytes;
    if (o.max_connections_per_core) cfg.max_flows = o.max_connections_per_core;
    return cfg;
}

}  // namespace

result<std::unique_ptr<network_stack>> make_dpdk_stack(const stack_options& options) {
    auto cfg = interface_config(options);
    if (!cfg) return cfg.error();
    auto faults = parse_faults(options.dpdk_test_faults);
    if (!faults) {
        return error(errc::address_invalid, "sluice.dpdk.test.faults '" + options.dpdk_test_faults +
                                                "': want loss=P,duplicate=P,reorder=P");
    }
    if (auto r = start_eal(options.dpdk_args, options.mtu); !r) return r.error();
    port_setup p;
    p.faults = *faults;
    p.mtu = static_cast<uint16_t>(options.mtu);
    bool found = false;
    uint16_t pid = 0;
    RTE_ETH_FOREACH_DEV(pid) {
        p.port = pid;
        found = true;
        break;
    }
    if (!found) {
        return error(errc::stack_start_failed,
                     "DPDK found no port (sluice.dpdk.args '" + options.dpdk_args +
                         "'): name one, e.g. --vdev=net_tap0 or -a <PCI address> with a "
                         "DPDK-bound NIC");
    }
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(p.port, &info); rc != 0) {
        return error(errc::stack_start_failed, dpdk_error("reading the port's capabilities", rc));
    }
    char name[RTE_ETH_NAME_MAX_LEN] = {};
    rte_eth_dev_get_name_by_port(p.port, name);
    p.name = name;
    p.queues = std::max(1u, options.cores);
    if (p.queues > info.max_rx_queues || p.queues > info.max_tx_queues) {
        return error(errc::stack_start_failed,
                     "DPDK port " + p.name + " offers " + std::to_string(info.max_rx_queues) +
                         " RX / " + std::to_string(info.max_tx_queues) +
                         " TX queues; sluice.cores asks for " + std::to_string(p.queues));
    }
    p.max_segs = info.tx_desc_lim.nb_seg_max > 0 ? std::min<uint16_t>(info.tx_desc_lim.nb_seg_max, 16)
                                                 : 16;
    // The largest frame it receives bounds the MTU too (net_tap: 1522 bytes, so 1500).
    uint32_t max_mtu = std::min<uint32_t>(
        info.max_mtu, info.max_rx_pktlen > 18 ? info.max_rx_pktlen - 18 : info.max_mtu);
    // net_memif reports Ethernet's 1518-byte frame limit, but its rings take frames of any
    // length (a chain of buffers; eal_arguments() sizes them to a frame) and neither end
    // checks one: a link within the host, like loopback, whose MTU both ends choose.
    std::string_view port_name(name);
    bool memif = port_name.starts_with("net_memif");
    p.mtu_beyond_driver = memif && p.mtu > max_mtu;
    if (memif) max_mtu = std::max<uint32_t>(max_mtu, 9600);
    if (options.trusted_link && !memif) {
        return error(errc::stack_start_failed,
                     "sluice.dpdk.link.trusted is for net_memif (memory shared inside the host); "
                     "port " + p.name + " is a link that can corrupt frames");
    }
    p.caps.checksums_unneeded = options.trusted_link;
    if (p.mtu > max_mtu || p.mtu < info.min_mtu) {
        return error(errc::stack_start_failed,
                     "DPDK port " + p.name + " takes an MTU from " + std::to_string(info.min_mtu) +
                         " to " + std::to_string(max_mtu) + "; sluice.dpdk.mtu is " +
                         std::to_string(p.mtu));
    }
    if (auto r = create_pools(p); !r) return r.error();
    if (auto r = configure_port(p, info); !r) return r.error();
    // Attaching payload bytes as external buffers needs IOVA-as-VA (software ports: tap,
    // memif; the bytes are never DMA-mapped for a PCI NIC, which gets copies), and a port that
    // frees sent mbufs on the thread that sent them (ext_ref counts without atomics): net_tap,
    // and net_memif in its default copy mode (zero-copy memif keeps mbufs and may free them
    // from its control thread).
    bool frees_on_sender = port_name.starts_with("net_tap") ||
                           (port_name.starts_with("net_memif") &&
                            options.dpdk_args.find("zero-copy=yes") == std::string::npos);
    p.attach_ok = p.multi_seg && rte_eal_iova_mode() == RTE_IOVA_VA && info.device != nullptr &&
                  frees_on_sender;
    rte_ether_addr mac{};
    rte_eth_macaddr_get(p.port, &mac);
    std::memcpy(p.caps.mac.data(), mac.addr_bytes, 6);
    uint16_t mtu = 1500;
    if (p.mtu_beyond_driver) {
        p.caps.mtu = p.mtu;  // the driver keeps its own figure; neither end checks it
    } else if (p.mtu != 1500) {
        if (int rc = rte_eth_dev_set_mtu(p.port, p.mtu); rc != 0) {
            return error(errc::stack_start_failed,
                         dpdk_error("setting MTU " + std::to_string(p.mtu) + " on " + p.name, rc));
        }
    }
    if (!p.mtu_beyond_driver && rte_eth_dev_get_mtu(p.port, &mtu) == 0 && mtu >= 576) {
        p.caps.mtu = mtu;
    }
    log::info("net", "dpdk stack on port ", p.name, " (", inet::to_string(p.caps.mac), ", MTU ",
              p.caps.mtu, ") with ", p.queues, " queue pair(s), ",
              p.rss ? "RSS" : "software flow steering", ", ",
              p.rx_interrupts ? "RX interrupts when idle" : "polling",
              ", TX checksum offload ", p.caps.tx_tcp_checksum ? "on" : "off",
              p.caps.checksums_unneeded ? ", checksums skipped (trusted link)" : "",
              ", zero-copy payload ", p.attach_ok ? "on" : "off", "; address ",
              inet::ipv4_to_string(cfg->ip));
    return std::unique_ptr<network_stack>(std::make_unique<dpdk_stack>(std::move(p), *cfg));
}

}  // namespace sluice::net
