#pragma once
// A GoogleTest fixture for tests against a real ZooKeeper: a private server per test
// (zk_server.h), skipped with its reason where java or the jars are missing, and a helper that
// opens a client session to it. Header-only: it is compiled into each test, which links gtest.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "replication/testing/zk_server.h"
#include "replication/zk_client.h"

namespace sluice::test {

class zk_fixture : public ::testing::Test {
protected:
    static constexpr int32_t default_session_ms = 10000;
    static constexpr int32_t connect_ms = 20000;

    void SetUp() override {
        if (auto why = zk_server::unavailable_reason()) GTEST_SKIP() << *why;
        auto s = zk_server::launch();
        ASSERT_TRUE(s) << s.error().describe();
        server = std::move(*s);
    }

    // A session to the server (inside `chroot`, e.g. "/sluice-test", when given); nullptr and a
    // test failure when it cannot connect.
    std::unique_ptr<replication::zk_client> client(const std::string& chroot = "",
                                                   int32_t session_ms = default_session_ms,
                                                   replication::zk_state_fn on_state = {}) {
        auto c = replication::zk_client::connect(server->connect_string() + chroot, session_ms,
                                                 connect_ms, std::move(on_state));
        EXPECT_TRUE(c) << c.error().describe();
        return c ? std::move(*c) : nullptr;
    }

    std::unique_ptr<zk_server> server;
};

}  // namespace sluice::test
