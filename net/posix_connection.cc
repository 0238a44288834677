#include "net/posix_connection.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/log.h"
#include "net/errc.h"

namespace sluice::net {

namespace {
constexpr std::string_view k_log = "net";

std::string errno_text(int err) {
    return std::strerror(err);
}

size_t piece_size(const output::piece& p) {
    if (auto* v = std::get_if<std::vector<std::byte>>(&p)) return v->size();
    if (auto* b = std::get_if<shared_buffer>(&p)) return b->size();
    return std::get<file_region>(p).length;
}

const std::byte* memory_data(const output::piece& p) {
    if (auto* v = std::get_if<std::vector<std::byte>>(&p)) return v->data();
    return std::get<shared_buffer>(p).data();
}
}  // namespace

posix_connection::posix_connection(runtime::reactor& r, unique_fd fd, socket_address local,
                                   socket_address peer, connection_options options,
                                   std::function<void()> on_final,
                                   std::shared_ptr<mapped_files> mapped)
    : _reactor(r),
      _fd(std::move(fd)),
      _local(local),
      _peer(peer),
      _options(options),
      _on_final(std::move(on_final)),
      _reader(options.recv_buffer_bytes, options.max_frame_bytes, options.raw_stream) {
    _splice_ok = _options.splice_file_regions;
    if (_options.memory) _reader.set_account(std::make_shared<memory_account>(_options.memory));
    _mapped_files = std::move(mapped);
    using cs = connection_options::cached_send;
    bool same_host = _peer.is_loopback() || _peer.same_host(_local);
    if (same_host && !_options.same_host_tcp_congestion.empty()) {
        const std::string& cc = _options.same_host_tcp_congestion;
        if (::setsockopt(_fd.get(), IPPROTO_TCP, TCP_CONGESTION, cc.data(),
                         static_cast<socklen_t>(cc.size())) != 0) {
            log::debug(k_log, "TCP_CONGESTION ", cc, " for ", _peer.to_string(), ": ",
                       errno_text(errno), "; keeping the system's default");
        }
    }
    // automatic: splice, except to a same-host peer whose socket paces (bbr), where skbs of
    // spliced 4 KiB page fragments were measured slower than one copy from a mapping.
    bool pacing = false;
    if (same_host && _options.cached_file_send == cs::automatic) {
        char cc[16] = {};
        socklen_t len = sizeof cc - 1;
        pacing = ::getsockopt(_fd.get(), IPPROTO_TCP, TCP_CONGESTION, cc, &len) == 0 &&
                 std::strncmp(cc, "bbr", 3) == 0;
    }
    _use_mapped = _options.splice_file_regions && _options.inline_file_splice &&
                  (_options.cached_file_send == cs::mapped ||
                   (_options.cached_file_send == cs::automatic && same_host && pacing));
    SLUICE_ASSERT(_options.recv_buffer_bytes >= 8, "recv_buffer_bytes too small");
    // Non-blocking, so that the inline splice to the socket can never stall the reactor;
    // io_uring's recv and send still wait for readiness (they arm an internal poll).
    int fl = ::fcntl(_fd.get(), F_GETFL);
    if (fl >= 0) (void)::fcntl(_fd.get(), F_SETFL, fl | O_NONBLOCK);
    _recv_op.self = this;
    _recv_op.on_complete = &posix_connection::on_single_recv;
    if (_options.recv_multishot) _buffers = _reactor.receive_buffers();
    if (_buffers != nullptr) {
        // One SQE, many CQEs: the operation is in flight until a CQE comes without F_MORE.
        _recv_op.on_complete = [](runtime::io_completion* c, int res, uint32_t flags) {
            auto* self = static_cast<op*>(c)->self;
            guard g = (flags & IORING_CQE_F_MORE) != 0 ? self->shared_from_this()
                                                        : self->op_finished();
            self->on_multishot(res, flags);
            self->maybe_finalize();
        };
    }
    _cancel_op.self = this;
    _cancel_op.on_complete = [](runtime::io_completion* c, int, uint32_t) {
        auto* self = static_cast<op*>(c)->self;
        guard g = self->op_finished();
        self->_cancel_inflight = false;
        self->maybe_finalize();
    };
    _sendmsg_op.self = this;
    _sendmsg_op.on_complete = [](runtime::io_completion* c, int res, uint32_t) {
        auto* self = static_cast<op*>(c)->self;
        guard g = self->op_finished();
        self->on_sendmsg(res);
        self->maybe_finalize();
    };
    _splice_in_op.self = this;
    _splice_in_op.on_complete = [](runtime::io_completion* c, int res, uint32_t) {
        auto* self = static_cast<op*>(c)->self;
        guard g = self->op_finished();
        self->on_splice_in(res);
        self->maybe_finalize();
    };
    _splice_out_op.self = this;
    _splice_out_op.on_complete = [](runtime::io_completion* c, int res, uint32_t) {
        auto* self = static_cast<op*>(c)->self;
        guard g = self->op_finished();
        self->on_splice_out(res);
        self->maybe_finalize();
    };
    _pollout_op.self = this;
    _pollout_op.on_complete = [](runtime::io_completion* c, int, uint32_t) {
        auto* self = static_cast<op*>(c)->self;
        guard g = self->op_finished();
        self->_send_inflight = false;
        if (!self->_closing) self->pump_send();
        self->maybe_finalize();
    };
    _bounce_op.self = this;
    _bounce_op.on_complete = [](runtime::io_completion* c, int res, uint32_t) {
        auto* self = static_cast<op*>(c)->self;
        guard g = self->op_finished();
        self->on_bounce_read(res);
        self->maybe_finalize();
    };
}

posix_connection::~posix_connection() {
    SLUICE_ASSERT(_inflight == 0, "connection freed with operations in flight");
    unmap();
    // A connection dropped without ever being started still frees its listener slot.
    if (_on_final) _on_final();
}

void posix_connection::assert_owner_thread() const {
    SLUICE_ASSERT(runtime::reactor::local() == &_reactor,
                  "connection used from a thread other than its reactor's");
}

void posix_connection::op_started() {
    if (_inflight++ == 0) _keepalive = shared_from_this();
}

posix_connection::guard posix_connection::op_finished() {
    SLUICE_ASSERT(_inflight > 0, "completion without an operation in flight");
    guard g = shared_from_this();
    if (--_inflight == 0) _keepalive.reset();
    return g;
}

void posix_connection::start(connection_handlers handlers) {
    assert_owner_thread();
    SLUICE_ASSERT(!_started, "connection started twice");
    _started = true;
    _handlers = std::move(handlers);
    if (_closing) {
        maybe_finalize();
        return;
    }
    arm_recv();
    pump_send();
}

// ---------------------------------------------------------------------------------------------
// Receive

// Called only with no recv in flight: it may move or replace the buffer the kernel writes to.
void posix_connection::arm_recv() {
    if (_closing || _paused || _recv_inflight || !_started || _memory_wait) return;
    if (!_reader.may_read()) {
        wait_for_memory();
        return;
    }
    if (_buffers != nullptr) {
        arm_multishot();
        return;
    }
    std::span<std::byte> room = _reader.writable();
    _stats.recv_buffer_capacity_max = _reader.capacity_max();
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_recv(sqe, _fd.get(), room.data(), room.size(), 0);
    runtime::reactor::arm(sqe, &_recv_op);
    _recv_inflight = true;
    op_started();
}

void posix_connection::on_single_recv(runtime::io_completion* c, int res, uint32_t) {
    auto* self = static_cast<op*>(c)->self;
    guard g = self->op_finished();
    self->on_recv(res);
    self->maybe_finalize();
}

void posix_connection::arm_multishot() {
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_recv_multishot(sqe, _fd.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = _buffers->group();
    runtime::reactor::arm(sqe, &_recv_op);
    _recv_inflight = true;
    op_started();
}

// Stops the armed multishot receive (pause, memory budget): bytes that arrive before the
// cancellation lands are still copied in and delivered on resume.
void posix_connection::cancel_multishot() {
    if (_cancel_inflight || !_recv_inflight) return;
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_cancel(sqe, &_recv_op, 0);
    runtime::reactor::arm(sqe, &_cancel_op);
    _cancel_inflight = true;
    op_started();
}

void posix_connection::copy_in(std::span<const std::byte> bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
        std::span<std::byte> room = _reader.writable();
        size_t n = std::min(room.size(), bytes.size() - off);
        std::memcpy(room.data(), bytes.data() + off, n);
        _reader.commit(n);
        off += n;
    }
    _stats.recv_buffer_capacity_max = _reader.capacity_max();
}

void posix_connection::on_multishot(int res, uint32_t flags) {
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) _recv_inflight = false;
    if ((flags & IORING_CQE_F_BUFFER) != 0) {
        auto id = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        ++_stats.provided_buffer_receives;
        if (res > 0 && !_closing) copy_in(_buffers->bytes(id, static_cast<size_t>(res)));
        _buffers->recycle(id);
    }
    if (_closing) return;
    if (res == -EINVAL && !more && _stats.provided_buffer_receives == 0) {
        // Buffer rings but no multishot recv (kernel 5.19): plain receives from now on.
        log::info(k_log, "multishot receive unavailable for ", _peer.to_string(),
                  ": receiving into the connection's own buffer");
        _buffers = nullptr;
        _recv_op.on_complete = &posix_connection::on_single_recv;
        arm_recv();
        return;
    }
    if (res > 0) {
        _stats.bytes_received += static_cast<uint64_t>(res);
    } else if (res != -ENOBUFS && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
        on_recv(res);  // the peer closed, or an error: the plain path's handling
        return;
    }
    process_frames();
    if (_recv_inflight && (_paused || _memory_wait || !_reader.may_read())) cancel_multishot();
    if (!_recv_inflight) arm_recv();
}

void posix_connection::wait_for_memory() {
    _memory_wait = true;
    // may_read() may have cut complete frames: they go to the owner now (answering them is
    // what gives memory back), not after the wait.
    process_frames();
    if (_closing) return;
    _reader.account()->budget()->wait([w = weak_from_this()] {
        if (auto c = w.lock()) {
            c->_memory_wait = false;
            c->arm_recv();
        }
    });
}

void posix_connection::on_recv(int res) {
    _recv_inflight = false;
    if (_closing) return;
    if (res == 0) {
        size_t pending = _reader.pending();
        std::string detail = "peer " + _peer.to_string();
        if (pending > 0)
            detail += " closed mid-frame with " + std::to_string(pending) + " bytes pending";
        begin_close(error(errc::peer_closed, std::move(detail)));
        return;
    }
    if (res < 0) {
        if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
            arm_recv();
            return;
        }
        if (res == -ECONNRESET || res == -EPIPE) {
            begin_close(
                error(errc::peer_closed, "peer " + _peer.to_string() + ": " + errno_text(-res)));
        } else {
            begin_close(
                error(errc::io_error, "recv from " + _peer.to_string() + ": " + errno_text(-res)));
        }
        return;
    }
    _reader.commit(static_cast<size_t>(res));
    _stats.bytes_received += static_cast<uint64_t>(res);
    process_frames();
    arm_recv();
}

void posix_connection::process_frames() {
    if (_paused || _closing || _delivering) return;
    error failure;
    guard g = shared_from_this();  // the handler may drop the caller's last pointer
    bool ok = deliver_frames(_reader, _batch, failure, _peer, _stats, _handlers, _delivering).ok;
    if (!ok) {
        if (_closing || !hand_bad_frame_to_owner(_handlers, failure, _receive_dead, _paused)) {
            begin_close(std::move(failure));
        }
        return;
    }
    // Everything delivered and released: reuse the chunk from the top. Not while a recv is
    // in flight, which writes at the current _rend.
    if (!_recv_inflight || _buffers != nullptr) _reader.rewind_if_idle();
}

void posix_connection::pause_receive() {
    assert_owner_thread();
    _paused = true;
    if (_buffers != nullptr && !_closing) cancel_multishot();
}

void posix_connection::resume_receive() {
    assert_owner_thread();
    if (!_paused || _receive_dead) return;
    _paused = false;
    if (_closing || !_started) return;
    // Deliver what is already buffered, then read again; from the loop, never from inside the
    // caller (which may be an on_frames handler of this very connection).
    _reactor.defer([g = shared_from_this()] {
        g->process_frames();
        g->arm_recv();
    });
}

// ---------------------------------------------------------------------------------------------
// Send

void output::add(piece p) {
    _size_bytes += piece_size(p);
    _pieces.push_back(std::move(p));
}

void posix_connection::send(output out) {
    assert_owner_thread();
    if (_closing || _close_when_sent) return;
    size_t memory = 0;
    for (auto& p : out.pieces()) {
        if (piece_size(p) == 0) continue;
        if (auto* region = std::get_if<file_region>(&p)) {
            SLUICE_ASSERT(region->file && region->file->valid(), "file_region without a file");
        } else {
            memory += piece_size(p);
        }
        _sendq.push_back(std::move(p));
    }
    _queued_bytes += out.size_bytes();
    _queued_memory_bytes += memory;
    if (_reader.account()) _reader.account()->charge_send(memory);
    ++_stats.sends;
    pump_send();
}

void posix_connection::pump_send() {
    if (_closing || _send_inflight) return;
    bool file_next = !_sendq.empty() && std::holds_alternative<file_region>(_sendq.front());
    if (_use_mapped && (_map != nullptr || (file_next && _pipe_bytes == 0))) {
        _send_inflight = true;  // as below: no re-entrant pumping from on_drain
        inline_outcome next = send_mapped_inline();
        _send_inflight = next == inline_outcome::waiting;
        if (next == inline_outcome::waiting || _closing) return;
        if (next == inline_outcome::done) {
            pump_send();
            return;
        }
        file_next = true;  // use_ring: this region (not page-cached) goes through the ring
    }
    if (_splice_ok && _options.inline_file_splice && (_pipe_bytes > 0 || file_next)) {
        _send_inflight = true;  // on_drain handlers may call send(): no re-entrant pumping
        inline_outcome next = splice_inline();
        _send_inflight = next == inline_outcome::waiting;
        if (next == inline_outcome::waiting || _closing) return;
        if (next == inline_outcome::done) {
            pump_send();  // memory pieces (or nothing) at the front now
            return;
        }
    }
    if (_pipe_bytes > 0) {
        // Bytes already in the pipe belong to the front of the stream: they go first.
        _send_inflight = true;
        _splice_pending = 1;
        splice_pipe_to_socket(_reactor.get_sqe(), _pipe_bytes);
        return;
    }
    if (_sendq.empty()) return;
    if (auto* region = std::get_if<file_region>(&_sendq.front())) {
        if (_splice_ok && (_pipe_w.valid() || open_pipe())) {
            send_file(*region);
        } else {
            read_bounce(*region);
        }
        return;
    }
    send_memory();
}

void posix_connection::send_memory() {
    size_t n = 0;
    size_t bytes = 0;
    for (auto it = _sendq.begin(); it != _sendq.end() && n < max_iov; ++it) {
        if (std::holds_alternative<file_region>(*it)) break;
        size_t skip = n == 0 ? _front_offset : 0;
        _iov[n].iov_base = const_cast<std::byte*>(memory_data(*it)) + skip;
        _iov[n].iov_len = piece_size(*it) - skip;
        bytes += _iov[n].iov_len;
        ++n;
    }
    if (_options.send_zc_min_bytes > 0 && bytes >= _options.send_zc_min_bytes) {
        send_memory_zc(n, bytes);
        return;
    }
    _msg = {};
    _msg.msg_iov = _iov.data();
    _msg.msg_iovlen = n;
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_sendmsg(sqe, _fd.get(), &_msg, MSG_NOSIGNAL);
    runtime::reactor::arm(sqe, &_sendmsg_op);
    _send_inflight = true;
    op_started();
}

void posix_connection::on_sendmsg(int res) {
    _send_inflight = false;
    if (_closing) return;
    if (res < 0) {
        if (res == -EINTR || res == -EAGAIN) {
            pump_send();
            return;
        }
        errc code = (res == -EPIPE || res == -ECONNRESET) ? errc::peer_closed : errc::io_error;
        begin_close(error(code, "send to " + _peer.to_string() + ": " + errno_text(-res)));
        return;
    }
    consume_memory(static_cast<size_t>(res));
    sent_bytes(static_cast<size_t>(res));
    pump_send();
}

// The pieces move out of the queue into the send's own record, so nothing frees them before
// the kernel's notification; the queue's byte counts still include them until the result.
void posix_connection::send_memory_zc(size_t pieces, size_t bytes) {
    auto* z = new zc_send();
    z->conn = shared_from_this();
    z->front_offset = std::exchange(_front_offset, 0);
    z->total = bytes;
    for (size_t i = 0; i < pieces; ++i) {
        z->pieces.push_back(std::move(_sendq.front()));
        _sendq.pop_front();
        size_t skip = i == 0 ? z->front_offset : 0;
        z->iov[i].iov_base = const_cast<std::byte*>(memory_data(z->pieces.back())) + skip;
        z->iov[i].iov_len = piece_size(z->pieces.back()) - skip;
    }
    z->msg.msg_iov = z->iov.data();
    z->msg.msg_iovlen = pieces;
    z->on_complete = [](runtime::io_completion* c, int res, uint32_t flags) {
        auto* z = static_cast<zc_send*>(c);
        if ((flags & IORING_CQE_F_NOTIF) == 0) {
            guard g = z->conn->op_finished();
            z->conn->on_sendmsg_zc(*z, res);
            z->conn->maybe_finalize();
            if ((flags & IORING_CQE_F_MORE) != 0) return;  // the notification follows
        }
        delete z;
    };
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_sendmsg_zc(sqe, _fd.get(), &z->msg, MSG_NOSIGNAL);
    runtime::reactor::arm(sqe, z);
    _send_inflight = true;
    op_started();
}

void posix_connection::on_sendmsg_zc(zc_send& z, int res) {
    _send_inflight = false;
    if (_closing) return;
    size_t sent = res > 0 ? static_cast<size_t>(res) : 0;
    if (res == -EINVAL || res == -EOPNOTSUPP) {
        // No zero-copy send here (an older kernel, or a socket that cannot): the pieces go
        // back to the queue, in order, and this connection copies from now on.
        log::info(k_log, "zero-copy send to ", _peer.to_string(), " unavailable (",
                  errno_text(-res), "): sending with copies");
        _options.send_zc_min_bytes = 0;
        for (size_t i = z.pieces.size(); i-- > 0;) _sendq.push_front(std::move(z.pieces[i]));
        z.pieces.clear();
        _front_offset = z.front_offset;
        pump_send();
        return;
    }
    if (res < 0 && res != -EINTR && res != -EAGAIN) {
        errc code = (res == -EPIPE || res == -ECONNRESET) ? errc::peer_closed : errc::io_error;
        begin_close(error(code, "send to " + _peer.to_string() + ": " + errno_text(-res)));
        return;
    }
    if (sent < z.total) {
        // Whatever the kernel did not take goes back to the front of the queue as a copy: the
        // originals stay with the send until its notification.
        std::vector<std::byte> rest;
        rest.reserve(z.total - sent);
        size_t skip = sent;
        for (size_t i = 0; i < z.pieces.size(); ++i) {
            const std::byte* d = memory_data(z.pieces[i]) + (i == 0 ? z.front_offset : 0);
            size_t len = piece_size(z.pieces[i]) - (i == 0 ? z.front_offset : 0);
            size_t from = std::min(skip, len);
            skip -= from;
            rest.insert(rest.end(), d + from, d + len);
        }
        _sendq.emplace_front(std::move(rest));
    }
    _stats.zero_copy_bytes_sent += sent;
    SLUICE_ASSERT(sent <= _queued_memory_bytes, "sent more memory bytes than queued");
    _queued_memory_bytes -= sent;
    if (_reader.account()) _reader.account()->release_send(sent);
    if (sent > 0) {
        sent_bytes(sent);
        if (_closing) return;
    }
    pump_send();
}

void posix_connection::consume_memory(size_t n) {
    SLUICE_ASSERT(n <= _queued_memory_bytes, "sent more memory bytes than queued");
    _queued_memory_bytes -= n;
    if (_reader.account()) _reader.account()->release_send(n);
    while (n > 0) {
        SLUICE_ASSERT(!_sendq.empty(), "sent more bytes than queued");
        size_t left = piece_size(_sendq.front()) - _front_offset;
        if (n < left) {
            _front_offset += n;
            return;
        }
        n -= left;
        _front_offset = 0;
        _sendq.pop_front();
    }
}

void posix_connection::sent_bytes(size_t n) {
    SLUICE_ASSERT(n <= _queued_bytes, "sent more bytes than queued");
    _queued_bytes -= n;
    _stats.bytes_sent += n;
    if (_queued_bytes > 0) return;
    if (_close_when_sent) {
        begin_close(error(errc::closed, "closed after sending"));
        return;
    }
    if (_handlers.on_drain) _handlers.on_drain();
}

bool posix_connection::open_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        log::warn(k_log, "pipe2 failed (", errno_text(errno), "): file regions to ",
                  _peer.to_string(), " are copied through user space");
        _splice_ok = false;
        return false;
    }
    _pipe_r.reset(fds[0]);
    _pipe_w.reset(fds[1]);
    // A bigger pipe means fewer splice round trips per region (each splice is handed to an
    // io_uring worker thread, which costs CPU). The default is 64 KiB; beyond
    // /proc/sys/fs/pipe-max-size (1 MiB by default) needs CAP_SYS_RESOURCE, so ask for the
    // large size first and fall back.
    if (::fcntl(_pipe_w.get(), F_SETPIPE_SZ, pipe_bytes_wanted) < 0) {
        (void)::fcntl(_pipe_w.get(), F_SETPIPE_SZ, pipe_bytes_fallback);
    }
    int size = ::fcntl(_pipe_w.get(), F_GETPIPE_SZ);
    _pipe_capacity = size > 0 ? static_cast<size_t>(size) : 65536;
    return true;
}

// Whether every page of the region is in the page cache (cachestat(2), Linux 6.5+). Unknown
// counts as "no", so a read that may wait for the disk is left to an io_uring worker.
#if !defined(__NR_cachestat) && (defined(__x86_64__) || defined(__aarch64__))
#define __NR_cachestat 451  // Linux 6.5; glibc headers older than the kernel may lack it
#endif
bool posix_connection::region_in_page_cache(const file_region& region) const {
#ifndef __NR_cachestat
    (void)region;
    return false;
#else
    struct {
        uint64_t off, len;
    } range{region.offset, region.length};
    struct {
        uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } st{};
    if (::syscall(__NR_cachestat, region.file->get(), &range, &st, 0) != 0) return false;
    const uint64_t page = 4096;
    uint64_t pages = (region.offset + region.length + page - 1) / page - region.offset / page;
    return st.nr_cache >= pages;
#endif
}

// After a non-blocking send or splice to the socket failed (errno set): nullopt to retry at
// once (EINTR), else what the inline path returns: waiting for POLLOUT when the socket is full,
// done when the peer is gone (the connection is closing), use_ring for anything else.
std::optional<posix_connection::inline_outcome> posix_connection::after_inline_send_error(
    const char* what) {
    if (errno == EINTR) return std::nullopt;
    if (errno == EAGAIN) {
        arm_pollout();
        return inline_outcome::waiting;
    }
    if (errno == EPIPE || errno == ECONNRESET) {
        begin_close(error(errc::peer_closed,
                          std::string(what) + " to " + _peer.to_string() + ": " + errno_text(errno)));
        return inline_outcome::done;
    }
    return inline_outcome::use_ring;
}

// The fast path for file regions whose bytes are in the page cache: splice file -> pipe ->
// socket right here on the reactor thread, without the io_uring worker hand-offs that the
// SPLICE operations cost (io_uring always runs splice in a worker). The socket is non-blocking,
// so when it is full the leftover stays in the pipe and a POLLOUT wait resumes the send.
// Regions that may need the disk, and any unexpected error, go to the ring path below.
posix_connection::inline_outcome posix_connection::splice_inline() {
    for (;;) {
        if (_closing) return inline_outcome::done;
        if (_pipe_bytes > 0) {
            ssize_t n = ::splice(_pipe_r.get(), nullptr, _fd.get(), nullptr, _pipe_bytes,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                _pipe_bytes -= static_cast<size_t>(n);
                sent_bytes(static_cast<size_t>(n));
                continue;
            }
            if (n == 0) return inline_outcome::use_ring;
            if (auto next = after_inline_send_error("splice"); next) return *next;
            continue;
        }
        if (_sendq.empty() || !std::holds_alternative<file_region>(_sendq.front())) {
            return inline_outcome::done;
        }
        auto& region = std::get<file_region>(_sendq.front());
        if ((!_pipe_w.valid() && !open_pipe()) || !region_in_page_cache(region)) {
            return inline_outcome::use_ring;
        }
        loff_t off = static_cast<loff_t>(region.offset);
        size_t want = std::min<size_t>(region.length, _pipe_capacity);
        ssize_t n = ::splice(region.file->get(), &off, _pipe_w.get(), nullptr, want,
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return inline_outcome::use_ring;  // the ring path reports short files and errors
        }
        region.offset += static_cast<uint64_t>(n);
        region.length -= static_cast<uint32_t>(n);
        _pipe_bytes += static_cast<size_t>(n);
        _stats.file_bytes_spliced += static_cast<uint64_t>(n);
        _stats.file_bytes_spliced_inline += static_cast<uint64_t>(n);
        if (region.length == 0) _sendq.pop_front();
    }
}

// The mapped path for page-cached regions: the region is mapped read-only and handed to send()
// with MSG_DONTWAIT, so the kernel copies page cache -> socket buffer and user space never
// touches the bytes. A full socket waits for POLLOUT with the mapping kept; the mapping goes
// when the region is sent. A file that shrank under the mapping makes send() fail with EFAULT
// (never SIGBUS: the kernel's own access faults); the ring path then reports the short file.
posix_connection::inline_outcome posix_connection::send_mapped_inline() {
    for (;;) {
        if (_closing) return inline_outcome::done;
        if (_map == nullptr) {
            if (_sendq.empty() || !std::holds_alternative<file_region>(_sendq.front())) {
                return inline_outcome::done;
            }
            auto& region = std::get<file_region>(_sendq.front());
            if (!region_in_page_cache(region) || !map_front(region)) {
                return inline_outcome::use_ring;
            }
        }
        auto& region = std::get<file_region>(_sendq.front());
        ssize_t n = ::send(_fd.get(), _map->at(region.offset - _map_origin), region.length,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            auto sent = static_cast<size_t>(n);
            region.offset += sent;
            region.length -= static_cast<uint32_t>(sent);
            _stats.file_bytes_mapped += sent;
            if (region.length == 0) {
                unmap();
                _sendq.pop_front();
            }
            sent_bytes(sent);
            continue;
        }
        auto next = n == 0 ? std::optional(inline_outcome::use_ring)
                           : after_inline_send_error("send");
        if (!next) continue;
        // EFAULT (the file shrank under the mapping) or anything unexpected: the ring path
        // decides; a full socket keeps the mapping for the rest of the region.
        if (*next == inline_outcome::use_ring) unmap();
        return *next;
    }
}

bool posix_connection::map_front(const file_region& region) {
    static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    // A region past the end of the file would read zeros from the mapping's last page: leave
    // it to the ring path, which reports the short file.
    struct stat st {};
    if (::fstat(region.file->get(), &st) != 0 ||
        region.offset + region.length > static_cast<uint64_t>(st.st_size)) {
        return false;
    }
    if (_mapped_files) {
        _map = _mapped_files->map(region);
        _map_origin = 0;
    } else {
        uint64_t start = region.offset / page * page;
        size_t len = static_cast<size_t>(region.offset - start) + region.length;
        void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, region.file->get(),
                         static_cast<off_t>(start));
        if (p != MAP_FAILED) {
            _map = std::make_shared<const file_mapping>(static_cast<std::byte*>(p), len);
            _map_origin = start;
        }
    }
    if (!_map) {
        // A file system without mmap support: stop trying on this connection.
        log::info(k_log, "mmap of a file region for ", _peer.to_string(), " failed (",
                  errno_text(errno), "); page-cached regions go through splice");
        _use_mapped = false;
        return false;
    }
    return true;
}

void posix_connection::unmap() { _map.reset(); }

// Two linked SQEs: file -> pipe, then pipe -> socket. A short first splice fails the link, so
// the second is cancelled and whatever did reach the pipe is drained by the next pump_send().
void posix_connection::send_file(file_region& region) {
    size_t n = std::min<size_t>(region.length, _pipe_capacity);
    // Both SQEs of the linked pair must go in one submission: make room for two first (with
    // SQPOLL the kernel thread frees slots asynchronously: wait for it).
    while (io_uring_sq_space_left(_reactor.ring()) < 2) {
        _reactor.flush();
        if (io_uring_sq_space_left(_reactor.ring()) < 2) (void)io_uring_sqring_wait(_reactor.ring());
    }
    io_uring_sqe* in = _reactor.get_sqe();
    io_uring_sqe* out = _reactor.get_sqe();
    io_uring_prep_splice(in, region.file->get(), static_cast<int64_t>(region.offset), _pipe_w.get(),
                         -1, static_cast<unsigned>(n), SPLICE_F_MOVE);
    in->flags |= IOSQE_IO_LINK;
    runtime::reactor::arm(in, &_splice_in_op);
    op_started();
    _splice_in_requested = n;
    _send_inflight = true;
    _splice_pending = 2;
    splice_pipe_to_socket(out, n);
}

void posix_connection::splice_pipe_to_socket(io_uring_sqe* sqe, size_t n) {
    io_uring_prep_splice(sqe, _pipe_r.get(), -1, _fd.get(), -1, static_cast<unsigned>(n),
                         SPLICE_F_MOVE);
    runtime::reactor::arm(sqe, &_splice_out_op);
    op_started();
}

void posix_connection::on_splice_in(int res) {
    if (res > 0) {
        auto& region = std::get<file_region>(_sendq.front());
        region.offset += static_cast<uint64_t>(res);
        region.length -= static_cast<uint32_t>(res);
        _pipe_bytes += static_cast<size_t>(res);
        _stats.file_bytes_spliced += static_cast<uint64_t>(res);
        if (region.length == 0) _sendq.pop_front();
    } else if (!_closing) {
        if (res == 0) {
            begin_close(error(errc::file_region_short,
                              "file ended before the region sent to " + _peer.to_string()));
        } else if (res == -EINVAL || res == -EOPNOTSUPP || res == -ENOSYS) {
            // The file cannot be spliced (sendfile would fail the same way: it splices too).
            log::warn(k_log, "splice of a file region failed (", errno_text(-res),
                      "); copying file regions to ", _peer.to_string(), " through user space");
            _splice_ok = false;
        } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
            begin_close(error(errc::io_error, "splice from file: " + errno_text(-res)));
        }
    }
    splice_pair_done();
}

void posix_connection::on_splice_out(int res) {
    if (res > 0) {
        SLUICE_ASSERT(static_cast<size_t>(res) <= _pipe_bytes, "more spliced out than in");
        _pipe_bytes -= static_cast<size_t>(res);
        sent_bytes(static_cast<size_t>(res));
    } else if (!_closing && res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
        errc code = (res == -EPIPE || res == -ECONNRESET) ? errc::peer_closed : errc::io_error;
        begin_close(error(code, "splice to " + _peer.to_string() + ": " + errno_text(-res)));
    } else if (res == -EAGAIN && !_closing) {
        // The non-blocking socket is full: wait for room rather than splicing again at once.
        _wait_writable = true;
    }
    splice_pair_done();
}

void posix_connection::splice_pair_done() {
    SLUICE_ASSERT(_splice_pending > 0, "unexpected splice completion");
    if (--_splice_pending > 0) return;
    if (_wait_writable && !_closing) {
        _wait_writable = false;
        arm_pollout();  // _send_inflight stays set until the socket is writable
        return;
    }
    _wait_writable = false;
    _send_inflight = false;
    pump_send();
}

void posix_connection::arm_pollout() {
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_poll_add(sqe, _fd.get(), POLLOUT);
    runtime::reactor::arm(sqe, &_pollout_op);
    op_started();
}

// Copy fallback for files that cannot be spliced: read a slice, then send it as memory.
void posix_connection::read_bounce(file_region& region) {
    size_t n = std::min<size_t>(region.length, bounce_bytes);
    _bounce.resize(n);
    io_uring_sqe* sqe = _reactor.get_sqe();
    io_uring_prep_read(sqe, region.file->get(), _bounce.data(), static_cast<unsigned>(n),
                       region.offset);
    runtime::reactor::arm(sqe, &_bounce_op);
    _send_inflight = true;
    op_started();
}

void posix_connection::on_bounce_read(int res) {
    _send_inflight = false;
    if (_closing) return;
    if (res <= 0) {
        if (res == -EINTR || res == -EAGAIN) {
            pump_send();
            return;
        }
        begin_close(res == 0 ? error(errc::file_region_short, "file ended before the region")
                             : error(errc::io_error, "read of file region: " + errno_text(-res)));
        return;
    }
    auto& region = std::get<file_region>(_sendq.front());
    region.offset += static_cast<uint64_t>(res);
    region.length -= static_cast<uint32_t>(res);
    _stats.file_bytes_copied += static_cast<uint64_t>(res);
    if (region.length == 0) _sendq.pop_front();
    _bounce.resize(static_cast<size_t>(res));
    _sendq.push_front(std::move(_bounce));  // _front_offset is 0: a region was at the front
    // The region's bytes are in memory now: charged like any memory piece until sent.
    _queued_memory_bytes += static_cast<size_t>(res);
    if (_reader.account()) _reader.account()->charge_send(static_cast<size_t>(res));
    _bounce = {};
    pump_send();
}

// ---------------------------------------------------------------------------------------------
// Close

void posix_connection::close() {
    assert_owner_thread();
    if (_closing) return;
    begin_close(error(errc::closed, "local close"));
}

void posix_connection::close_after_send() {
    assert_owner_thread();
    if (_closing || _close_when_sent) return;
    _paused = true;
    if (_queued_bytes == 0) {
        begin_close(error(errc::closed, "local close"));
        return;
    }
    _close_when_sent = true;
}

void posix_connection::begin_close(error reason) {
    if (_closing) return;
    _closing = true;
    _close_reason = std::move(reason);
    if (_close_reason.is(errc::closed) || _close_reason.is(errc::peer_closed)) {
        log::debug(k_log, "connection ", _local.to_string(), " <-> ", _peer.to_string(),
                   " closing: ", _close_reason.describe());
    } else {
        log::warn(k_log, "closing connection ", _local.to_string(), " <-> ", _peer.to_string(),
                  ": ", _close_reason.describe());
    }
    // Wakes every operation waiting on the socket (recv returns 0, send and splice fail), so
    // the in-flight count drops to zero promptly.
    ::shutdown(_fd.get(), SHUT_RDWR);
    if (_inflight == 0) {
        _reactor.defer([g = shared_from_this()] { g->maybe_finalize(); });
    }
}

void posix_connection::maybe_finalize() {
    if (!_closing || _inflight > 0 || _finalized) return;
    if (_delivering) return;  // runs again when the handler's close completes the loop
    _finalized = true;
    unmap();
    _fd.reset();
    _pipe_r.reset();
    _pipe_w.reset();
    _sendq.clear();
    _queued_bytes = 0;
    if (_reader.account()) _reader.account()->release_send(_queued_memory_bytes);
    _queued_memory_bytes = 0;
    _reader.release();
    guard g = shared_from_this();
    // Handlers often capture the connection_ptr; dropping them breaks that cycle.
    auto handlers = std::move(_handlers);
    _handlers = {};
    if (handlers.on_close && _started) handlers.on_close(_close_reason);
    if (_on_final) std::exchange(_on_final, nullptr)();
}

}  // namespace sluice::net
