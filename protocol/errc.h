#pragma once
// Errors of the protocol module. Bytes that do not parse are reported with base::errc
// (`malformed`, `limit_exceeded`); the codes here say that a well-formed request names an API
// or a version this build does not define. The broker maps both kinds to Kafka error codes.

#include "base/errc.h"
#include "base/result.h"

namespace sluice::protocol {
enum class errc {
    ok = 0,
    unsupported_api,      // no definition for this api key
    unsupported_version,  // the api exists but not at this version
};
const char* describe(errc e);
}  // namespace sluice::protocol
SLUICE_DECLARE_ERRC(sluice::protocol, errc)
