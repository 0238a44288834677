#include "net/errc.h"

namespace sluice::net {
const char* describe(errc e) {
    switch (e) {
        case errc::ok:
            return "ok";
        case errc::closed:
            return "connection closed locally";
        case errc::peer_closed:
            return "connection closed by peer";
        case errc::frame_too_large:
            return "frame larger than max_frame_bytes";
        case errc::frame_size_invalid:
            return "invalid frame size prefix";
        case errc::io_error:
            return "socket I/O error";
        case errc::file_region_short:
            return "file region past end of file";
        case errc::connection_limit:
            return "connection limit reached";
        case errc::connect_failed:
            return "connect failed";
        case errc::address_invalid:
            return "invalid address";
        case errc::listen_failed:
            return "listen failed";
        case errc::stack_unknown:
            return "unknown network stack";
        case errc::stack_not_built:
            return "network stack not built into this binary";
        case errc::stack_start_failed:
            return "network stack could not start";
        case errc::tls_failed:
            return "TLS failed";
        case errc::tls_config:
            return "unusable TLS configuration";
    }
    return "unknown net error";
}
}  // namespace sluice::net

SLUICE_DEFINE_ERRC(sluice::net, errc, "net", describe)
