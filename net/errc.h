#pragma once
// Error codes of the network layer. Connection close reasons use them too: a close handler
// receives `closed` for a local close(), `peer_closed` when the other side hung up, and one of
// the framing or I/O codes when the connection was torn down because of bad input or an error.

#include "base/result.h"

namespace sluice::net {
enum class errc {
    ok = 0,
    closed,              // close() was called on this side
    peer_closed,         // the peer closed (or reset) the connection
    frame_too_large,     // size prefix above max_frame_bytes (socket.request.max.bytes)
    frame_size_invalid,  // negative size prefix
    io_error,            // a socket or file operation failed (detail has the errno text)
    file_region_short,   // a file_region reached past the end of its file
    connection_limit,    // the listener is at max_connections
    connect_failed,      // connect() did not establish a connection (detail: errno text)
    address_invalid,     // an address or listener string does not parse or resolve
    listen_failed,       // socket/bind/listen failed (detail: errno text)
    stack_unknown,       // make_network_stack() got a name it does not know
    stack_not_built,     // the stack exists but was not compiled in (dpdk without SLUICE_DPDK)
    stack_start_failed,  // the dpdk stack could not start (EAL, port, memory; detail says why)
    tls_failed,          // a TLS handshake or record failed (detail: OpenSSL's reason)
    tls_config,          // certificate, key or CA settings cannot be used (detail says which)
};
const char* describe(errc e);
}  // namespace sluice::net
SLUICE_DECLARE_ERRC(sluice::net, errc)
