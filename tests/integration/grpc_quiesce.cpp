// gRPC finishes a channel's last work (closing its connections, TLS sessions included) on its own
// threads, after the test that used the channel has returned, and shuts itself down when the last
// of its objects is gone. A test executable that exits before that races gRPC's threads against
// the exit (static destructors, OpenSSL's cleanup): under ASan an occasional report after every
// test had passed. This environment waits, after the last test, until gRPC has shut down.
#include <gtest/gtest.h>
#include <grpc/grpc.h>

#include <chrono>

#include "tests/integration/process.hpp"

namespace {

class grpc_shut_down_before_exit : public ::testing::Environment {
public:
  void TearDown() override {
    // grpc_is_initialized takes gRPC's init lock, which a shutdown in progress holds: false means
    // the shutdown has finished. A test that leaked a channel keeps gRPC up: then exit anyway.
    EXPECT_TRUE(embed::testing::poll_until([] { return grpc_is_initialized() == 0; },
                                        std::chrono::seconds(60)))
        << "gRPC still initialized a minute after the last test: a channel or server outlived its "
           "test";
  }
};

const auto* const registered = ::testing::AddGlobalTestEnvironment(new grpc_shut_down_before_exit);

} // namespace
