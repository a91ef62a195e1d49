// `embedctl top` in a real terminal (tmux) against a real gateway and worker under load.
#include "tests/embedctl/tmux_driver.hpp"
#include "tests/integration/gateway_harness.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

using namespace embed::testing;
using namespace embed::cli::test;
namespace ev1 = embedding::v1;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& screen, const std::string& what) {
  return screen.find(what) != std::string::npos;
}

} // namespace

TEST(top_console, shows_live_actors_of_a_real_gateway_and_restores_the_terminal) {
  if (!tmux_installed())
    GTEST_SKIP() << "tmux is not installed";
  worker_proc w;
  gateway_proc g({w.address()});
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  std::atomic<bool> stop{false};
  auto load = std::async(std::launch::async, [&] {
    int i = 0;
    while (!stop) {
      grpc::ClientContext ctx;
      ev1::EmbedResponse r;
      g.stub->Embed(&ctx, embed_request({"top load " + std::to_string(i++ % 20)}), &r);
    }
  });
  // Stops the load however the test ends (a failed ASSERT returns early).
  std::shared_ptr<void> stop_load(nullptr, [&](void*) { stop = true; });
  auto s = tmux_start("top-e2e",
                      bin_dir() + "/embedctl top --interval-ms 200 --server " + g.address(), 100,
                      30);
  // Header and actor rows appear...
  ASSERT_TRUE(tmux_wait_for(
      s,
      [](const std::string& screen) {
        return has(screen, "embedd") && has(screen, "supervisor") && has(screen, "cache") &&
               has(screen, "stage#") && has(screen, "gpu_client");
      },
      60s))
      << tmux_capture(s);
  // ...and change while the gateway works.
  auto before = tmux_capture(s);
  EXPECT_TRUE(tmux_wait_for(
      s, [&](const std::string& screen) { return screen != before; }, 120s));
  // A wider terminal shows the role-specific state in full: the supervisor's breaker.
  tmux_resize(s, 220, 30);
  EXPECT_TRUE(tmux_wait_for(
      s, [&](const std::string& screen) { return has(screen, w.address() + "=closed"); }, 120s))
      << "breaker state not shown:\n"
      << tmux_capture(s);
  tmux_keys(s, "q");
  auto code = tmux_wait_exit(s, 120s);
  stop = true;
  load.get();
  ASSERT_TRUE(code.has_value()) << tmux_capture(s);
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(tmux_terminal_problems(s), "");
}
