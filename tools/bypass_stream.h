#pragma once
// A blocking byte stream over Sluice's own DPDK TCP/IP stack (net/dpdk_stack.h), so that the
// client tools -- `sluice bench --network-stack dpdk` -- can talk to a broker with the kernel
// out of the packet path on both ends (a net_memif pair, perf/bypass_bench.py).
//
// The tools are written as blocking code on ordinary threads, while a net::connection belongs
// to a reactor. One process-wide reactor thread owns the dpdk stack (one port, one queue pair)
// and every connection on it; a bypass_stream is the blocking face of one of them: write_all()
// posts the bytes to that thread, read_frame() waits on a condition variable for the next
// Kafka frame the connection received, handed over whole and read in place. The hand-offs
// between threads cost CPU the sockets path does not pay; the bench counts it (its CPU figures are the process's rusage, reactor thread included).
//
// The first connect() starts the stack with its options; later ones share it (their options
// must match, else errc::bad_argument). Addresses are IPv4 literals (no DNS on the dpdk stack).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"

namespace sluice::tools {

struct bypass_options {
    std::string dpdk_args;  // EAL arguments, e.g. "--no-pci --no-huge -m 256 --vdev=net_memif0,..."
    std::string ip;         // this end's IPv4 address on the port
    std::string netmask = "255.255.255.0";
    std::string gateway;
    unsigned mtu = 1500;
    bool trusted_link = false;  // net_memif only: no TCP/IPv4 checksums (stack_options)
    bool operator==(const bypass_options&) const = default;
};

class bypass_stream {
  public:
    virtual ~bypass_stream() = default;
    // Connects to host:port over the dpdk stack within `timeout_ms`.
    [[nodiscard]] static result<std::unique_ptr<bypass_stream>> connect(
        const bypass_options& opts, const std::string& host, uint16_t port, int timeout_ms);

    // Queues all of `bytes` for sending (copied); fails once the connection has ended.
    [[nodiscard]] virtual result<void> write_all(std::span<const std::byte> bytes) = 0;
    // The stream is Kafka-framed (a 4-byte big-endian size, then that many bytes): waits up to
    // `timeout_ms` for the next frame and returns its bytes without the size, in place (no
    // copy), valid until the next read_frame(). errc::timeout when none came; errc::io_failed
    // when the connection ended (a frame above max_frame_bytes ends it: a length beyond it is a
    // broken stream, not data; tools/kafka_client.h takes the same bound for every transport).
    static constexpr uint32_t max_frame_bytes = 1u << 30;
    [[nodiscard]] virtual result<std::span<const std::byte>> read_frame(int timeout_ms) = 0;
    // Received frames not read yet.
    virtual bool has_buffered() const = 0;
    // Waits up to `timeout_ms` until a frame is there to read (or the connection ended).
    virtual bool wait_readable(int timeout_ms) = 0;
};

}  // namespace sluice::tools
