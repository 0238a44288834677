#include "broker/kafka_error.h"

#include <gtest/gtest.h>

#include "base/errc.h"
#include "broker/config.h"
#include "broker/handlers.h"
#include "engine/errc.h"
#include "model/errc.h"
#include "replication/metadata_store.h"

using namespace sluice;
using namespace sluice::broker;

TEST(kafka_error, engine_errors_map_to_kafka_codes) {
    EXPECT_EQ(to_kafka_error(error(engine::errc::offset_out_of_range)), kafka_error::offset_out_of_range);
    EXPECT_EQ(to_kafka_error(error(engine::errc::batch_too_large)), kafka_error::message_too_large);
    EXPECT_EQ(to_kafka_error(error(engine::errc::invalid_batch)), kafka_error::corrupt_message);
    EXPECT_EQ(to_kafka_error(error(engine::errc::partition_failed)), kafka_error::kafka_storage_error);
    EXPECT_EQ(to_kafka_error(error(engine::errc::no_space)), kafka_error::kafka_storage_error);
    EXPECT_EQ(to_kafka_error(error(engine::errc::io_error)), kafka_error::kafka_storage_error);
    EXPECT_EQ(code(kafka_error::offset_out_of_range), 1);
    EXPECT_EQ(code(kafka_error::kafka_storage_error), 56);
}

TEST(kafka_error, model_and_metadata_errors) {
    EXPECT_EQ(to_kafka_error(error(model::errc::crc_mismatch)), kafka_error::corrupt_message);
    EXPECT_EQ(to_kafka_error(error(model::errc::too_large)), kafka_error::message_too_large);
    EXPECT_EQ(to_kafka_error(error(model::errc::unknown_compression)),
              kafka_error::unsupported_compression_type);
    EXPECT_EQ(to_kafka_error(error(replication::errc::topic_exists)), kafka_error::topic_already_exists);
    EXPECT_EQ(code(kafka_error::topic_already_exists), 36);
    EXPECT_EQ(to_kafka_error(error(replication::errc::invalid_topic_name)),
              kafka_error::invalid_topic_exception);
    EXPECT_EQ(to_kafka_error(error(broker::errc::invalid_config)), kafka_error::invalid_config);
    EXPECT_EQ(to_kafka_error(error(base::errc::malformed)), kafka_error::invalid_request);
    EXPECT_EQ(to_kafka_error(errno_error(EIO)), kafka_error::unknown_server_error);
}

TEST(kafka_error, coordinator_errors_map_to_kafka_codes) {
    using sluice::coord::errc;
    using sluice::broker::code;
    using sluice::broker::to_kafka;
    EXPECT_EQ(code(to_kafka(errc::producer_fenced)), 90);
    EXPECT_EQ(code(to_kafka(errc::invalid_producer_id_mapping)), 49);
    EXPECT_EQ(code(to_kafka(errc::invalid_txn_state)), 48);
    EXPECT_EQ(code(to_kafka(errc::concurrent_transactions)), 51);
    EXPECT_EQ(code(to_kafka(errc::invalid_transaction_timeout)), 50);
    EXPECT_EQ(code(to_kafka(errc::transactional_id_not_found)), 105);
    EXPECT_EQ(code(to_kafka(errc::unstable_offset_commit)), 88);
    EXPECT_EQ(code(to_kafka(errc::not_coordinator)), 16);
    EXPECT_EQ(code(to_kafka(errc::coordinator_load_in_progress)), 14);
    // A failed write to the internal topic is retriable for the client.
    EXPECT_EQ(code(to_kafka(errc::storage_error)), 15);
}
