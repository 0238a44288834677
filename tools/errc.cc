#include "tools/errc.h"

#include <algorithm>
#include <iterator>

namespace sluice::tools {

const char* describe(errc e) {
    switch (e) {
        case errc::ok:
            return "ok";
        case errc::bad_argument:
            return "bad argument";
        case errc::connect_failed:
            return "cannot connect";
        case errc::io_failed:
            return "connection failed";
        case errc::timeout:
            return "timed out";
        case errc::protocol:
            return "protocol error";
        case errc::no_common_version:
            return "no common API version";
        case errc::kafka:
            return "Kafka error";
    }
    return "unknown tools error";
}

namespace {

struct code_name {
    int16_t code;
    const char* name;
};

// Kafka's error codes (org.apache.kafka.common.protocol.Errors), sorted by code.
constexpr code_name names[] = {
    {-1, "UNKNOWN_SERVER_ERROR"},
    {1, "OFFSET_OUT_OF_RANGE"},
    {2, "CORRUPT_MESSAGE"},
    {3, "UNKNOWN_TOPIC_OR_PARTITION"},
    {4, "INVALID_FETCH_SIZE"},
    {5, "LEADER_NOT_AVAILABLE"},
    {6, "NOT_LEADER_OR_FOLLOWER"},
    {7, "REQUEST_TIMED_OUT"},
    {8, "BROKER_NOT_AVAILABLE"},
    {9, "REPLICA_NOT_AVAILABLE"},
    {10, "MESSAGE_TOO_LARGE"},
    {11, "STALE_CONTROLLER_EPOCH"},
    {12, "OFFSET_METADATA_TOO_LARGE"},
    {13, "NETWORK_EXCEPTION"},
    {14, "COORDINATOR_LOAD_IN_PROGRESS"},
    {15, "COORDINATOR_NOT_AVAILABLE"},
    {16, "NOT_COORDINATOR"},
    {17, "INVALID_TOPIC_EXCEPTION"},
    {18, "RECORD_LIST_TOO_LARGE"},
    {19, "NOT_ENOUGH_REPLICAS"},
    {20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"},
    {21, "INVALID_REQUIRED_ACKS"},
    {22, "ILLEGAL_GENERATION"},
    {23, "INCONSISTENT_GROUP_PROTOCOL"},
    {24, "INVALID_GROUP_ID"},
    {25, "UNKNOWN_MEMBER_ID"},
    {26, "INVALID_SESSION_TIMEOUT"},
    {27, "REBALANCE_IN_PROGRESS"},
    {28, "INVALID_COMMIT_OFFSET_SIZE"},
    {29, "TOPIC_AUTHORIZATION_FAILED"},
    {30, "GROUP_AUTHORIZATION_FAILED"},
    {31, "CLUSTER_AUTHORIZATION_FAILED"},
    {32, "INVALID_TIMESTAMP"},
    {33, "UNSUPPORTED_SASL_MECHANISM"},
    {34, "ILLEGAL_SASL_STATE"},
    {35, "UNSUPPORTED_VERSION"},
    {36, "TOPIC_ALREADY_EXISTS"},
    {37, "INVALID_PARTITIONS"},
    {38, "INVALID_REPLICATION_FACTOR"},
    {39, "INVALID_REPLICA_ASSIGNMENT"},
    {40, "INVALID_CONFIG"},
    {41, "NOT_CONTROLLER"},
    {42, "INVALID_REQUEST"},
    {43, "UNSUPPORTED_FOR_MESSAGE_FORMAT"},
    {44, "POLICY_VIOLATION"},
    {45, "OUT_OF_ORDER_SEQUENCE_NUMBER"},
    {46, "DUPLICATE_SEQUENCE_NUMBER"},
    {47, "INVALID_PRODUCER_EPOCH"},
    {48, "INVALID_TXN_STATE"},
    {49, "INVALID_PRODUCER_ID_MAPPING"},
    {50, "INVALID_TRANSACTION_TIMEOUT"},
    {51, "CONCURRENT_TRANSACTIONS"},
    {52, "TRANSACTION_COORDINATOR_FENCED"},
    {53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"},
    {54, "SECURITY_DISABLED"},
    {55, "OPERATION_NOT_ATTEMPTED"},
    {56, "KAFKA_STORAGE_ERROR"},
    {57, "LOG_DIR_NOT_FOUND"},
    {58, "SASL_AUTHENTICATION_FAILED"},
    {59, "UNKNOWN_PRODUCER_ID"},
    {60, "REASSIGNMENT_IN_PROGRESS"},
    {61, "DELEGATION_TOKEN_AUTH_DISABLED"},
    {62, "DELEGATION_TOKEN_NOT_FOUND"},
    {63, "DELEGATION_TOKEN_OWNER_MISMATCH"},
    {64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED"},
    {65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED"},
    {66, "DELEGATION_TOKEN_EXPIRED"},
    {67, "INVALID_PRINCIPAL_TYPE"},
    {68, "NON_EMPTY_GROUP"},
    {69, "GROUP_ID_NOT_FOUND"},
    {70, "FETCH_SESSION_ID_NOT_FOUND"},
    {71, "INVALID_FETCH_SESSION_EPOCH"},
    {72, "LISTENER_NOT_FOUND"},
    {73, "TOPIC_DELETION_DISABLED"},
    {74, "FENCED_LEADER_EPOCH"},
    {75, "UNKNOWN_LEADER_EPOCH"},
    {76, "UNSUPPORTED_COMPRESSION_TYPE"},
    {77, "STALE_BROKER_EPOCH"},
    {78, "OFFSET_NOT_AVAILABLE"},
    {79, "MEMBER_ID_REQUIRED"},
    {80, "PREFERRED_LEADER_NOT_AVAILABLE"},
    {81, "GROUP_MAX_SIZE_REACHED"},
    {82, "FENCED_INSTANCE_ID"},
    {83, "ELIGIBLE_LEADERS_NOT_AVAILABLE"},
    {84, "ELECTION_NOT_NEEDED"},
    {85, "NO_REASSIGNMENT_IN_PROGRESS"},
    {86, "GROUP_SUBSCRIBED_TO_TOPIC"},
    {87, "INVALID_RECORD"},
    {88, "UNSTABLE_OFFSET_COMMIT"},
    {89, "THROTTLING_QUOTA_EXCEEDED"},
    {90, "PRODUCER_FENCED"},
    {91, "RESOURCE_NOT_FOUND"},
    {92, "DUPLICATE_RESOURCE"},
    {93, "UNACCEPTABLE_CREDENTIAL"},
    {94, "INCONSISTENT_VOTER_SET"},
    {95, "INVALID_UPDATE_VERSION"},
    {96, "FEATURE_UPDATE_FAILED"},
    {97, "PRINCIPAL_DESERIALIZATION_FAILURE"},
    {98, "SNAPSHOT_NOT_FOUND"},
    {99, "POSITION_OUT_OF_RANGE"},
    {100, "UNKNOWN_TOPIC_ID"},
    {101, "DUPLICATE_BROKER_REGISTRATION"},
    {102, "BROKER_ID_NOT_REGISTERED"},
    {103, "INCONSISTENT_TOPIC_ID"},
    {104, "INCONSISTENT_CLUSTER_ID"},
    {105, "TRANSACTIONAL_ID_NOT_FOUND"},
    {106, "FETCH_SESSION_TOPIC_ID_ERROR"},
};

}  // namespace

std::string kafka_error_name(int16_t code) {
    if (code == 0) return "NONE";
    auto it = std::lower_bound(std::begin(names), std::end(names), code,
                               [](const code_name& n, int16_t c) { return n.code < c; });
    if (it != std::end(names) && it->code == code) return it->name;
    return "UNKNOWN_ERROR_" + std::to_string(code);
}

bool kafka_error_retriable(int16_t code) {
    switch (code) {
        case 3:   // UNKNOWN_TOPIC_OR_PARTITION (e.g. just created, not yet everywhere)
        case 5:   // LEADER_NOT_AVAILABLE
        case 6:   // NOT_LEADER_OR_FOLLOWER
        case 7:   // REQUEST_TIMED_OUT
        case 13:  // NETWORK_EXCEPTION
        case 14:  // COORDINATOR_LOAD_IN_PROGRESS
        case 19:  // NOT_ENOUGH_REPLICAS
        case 20:  // NOT_ENOUGH_REPLICAS_AFTER_APPEND
        case 56:  // KAFKA_STORAGE_ERROR
        case 74:  // FENCED_LEADER_EPOCH
        case 75:  // UNKNOWN_LEADER_EPOCH
        case 89:  // THROTTLING_QUOTA_EXCEEDED
            return true;
        default:
            return false;
    }
}

error kafka_failure(int16_t code, std::string_view message) {
    std::string text = kafka_error_name(code);
    if (!message.empty()) {
        text += ": ";
        text += message;
    }
    return error(errc::kafka, std::move(text));
}

std::string user_message(const error& e) {
    if (e.is(errc::kafka) || e.is(errc::bad_argument)) return e.detail();
    return e.describe();
}

}  // namespace sluice::tools

SLUICE_DEFINE_ERRC(sluice::tools, errc, "tools", describe)
