#pragma once
// Errors of the client tools. Transport problems (connect, read, write, timeout) and protocol
// problems (an answer that does not parse, a broker that speaks no common version) are `errc`
// values; a Kafka error code returned by a broker is `errc::kafka`, with the Kafka error name
// first in the detail ("TOPIC_ALREADY_EXISTS: topic 'x' already exists") so the CLI can print it
// as it is.

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::tools {

enum class errc {
    ok = 0,
    bad_argument,       // a command line or parameter the user can fix
    connect_failed,     // no TCP connection to the broker
    io_failed,          // read/write failed or the broker closed the connection
    timeout,            // no answer within the deadline
    protocol,           // an answer that does not parse, or a correlation id out of order
    no_common_version,  // the broker supports no version of an API that we define
    kafka,              // the broker answered with a Kafka error code
};
const char* describe(errc e);

// Kafka's name of an error code: "TOPIC_ALREADY_EXISTS", "NONE" for 0, "UNKNOWN_ERROR_<n>"
// for codes this table does not know.
std::string kafka_error_name(int16_t code);

// True for the codes a client should retry after refreshing metadata (Kafka's retriable set,
// restricted to those that matter to a producer or consumer).
bool kafka_error_retriable(int16_t code);

// An errc::kafka error whose text is "NAME: message" (or "NAME" without a message).
error kafka_failure(int16_t code, std::string_view message = {});

// The text to show a user: for a Kafka error "NAME: message"; otherwise error::describe().
std::string user_message(const error& e);

}  // namespace sluice::tools
SLUICE_DECLARE_ERRC(sluice::tools, errc)
