// The cache's Redis L2. CacheL2Redis.* start a real redis-server on a loopback port chosen at run
// time (label integration); CacheL2Down.* need no server (label unit).
#include "cache_test_util.hpp"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

extern char** environ;

using namespace embed;
using namespace embed::test;

namespace {

constexpr uint32_t dim = 8;

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0)
      ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool have_redis_server() {
  return std::system("command -v redis-server >/dev/null 2>&1") == 0;
}

// A redis-server child process on 127.0.0.1:port, without persistence.
class redis_server {
public:
  explicit redis_server(uint16_t port) : port_(port) {}
  ~redis_server() { stop(); }

  bool start() {
    std::string port = std::to_string(port_);
    const char* argv[] = {"redis-server", "--port",     port.c_str(), "--bind",
                          "127.0.0.1",    "--save",     "",           "--appendonly",
                          "no",           "--loglevel", "warning",    nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid_, "redis-server", &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
      return false;
    // Generous: a loaded machine starts processes slowly. A redis-server that exited (its port
    // was taken) is not waited for.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (command("PING") == "PONG")
        return true;
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  // One command on a fresh connection: its string/status reply, "(nil)", or "" on failure.
  std::string command(const std::string& a, const std::string& b = {},
                      const std::string& c = {}) const {
    timeval tv{1, 0};
    redisContext* ctx = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!ctx || ctx->err) {
      if (ctx)
        redisFree(ctx);
      return "";
    }
    std::vector<const char*> argv{a.c_str()};
    std::vector<size_t> lens{a.size()};
    for (auto* s : {&b, &c})
      if (!s->empty()) {
        argv.push_back(s->data());
        lens.push_back(s->size());
      }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
    std::string out;
    if (r) {
      if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        out.assign(r->str, r->len);
      else if (r->type == REDIS_REPLY_INTEGER)
        out = std::to_string(r->integer);
      else if (r->type == REDIS_REPLY_NIL)
        out = "(nil)";
      freeReplyObject(r);
    }
    redisFree(ctx);
    return out;
  }

  uint16_t port() const { return port_; }

private:
  uint16_t port_;
  pid_t pid_ = -1;
};

cache_config l2_config(uint16_t port) {
  cache_config cc;
  cc.tick_interval = 5ms;
  cc.redis = "127.0.0.1:" + std::to_string(port);
  cc.redis_timeout = 2s; // generous: a loaded machine schedules redis-server late
  cc.redis_backoff_initial = 300ms;
  cc.redis_backoff_max = 1200ms;
  cc.redis_prefix = "embed:test:";
  return cc;
}

struct CacheL2Redis : cache_fixture {
  void SetUp() override {
    if (!have_redis_server())
      GTEST_SKIP() << "redis-server not installed";
    // redis-server cannot bind port 0 and report it: a port taken between the probe and its
    // bind makes it fail to start, and it is started again on another port.
    for (int attempt = 0; attempt < 20; ++attempt) {
      port = free_port();
      ASSERT_NE(port, 0);
      server = std::make_unique<redis_server>(port);
      if (server->start())
        return;
    }
    FAIL() << "redis-server did not answer PING on 20 ports, the last " << port;
  }

  bool in_redis(const cache_key& k) {
    return server->command("EXISTS", l2_key("embed:test:", k)) == "1";
  }

  uint16_t port = 0;
  std::unique_ptr<redis_server> server;
};

TEST_F(CacheL2Redis, gateways_share_entries_and_survive_a_redis_restart) {
  auto a = start(l2_config(port));
  auto b = start(l2_config(port));
  poll([&] { return stats(a).l2_connected && stats(b).l2_connected; }, "L2 connections");

  // Gateway A computes and stores; gateway B finds it in Redis.
  ASSERT_EQ(get(a, {key(1)}).statuses[0], cache_lookup_result::compute);
  put(a, {key(1)}, dim);
  poll([&] { return in_redis(key(1)); }, "A's put to reach Redis");
  auto r = get(b, {key(1), key(2)});
  ASSERT_EQ(r.statuses,
            (std::vector<uint8_t>{cache_lookup_result::hit, cache_lookup_result::compute}));
  EXPECT_EQ(r.l2_hits, 1u);
  EXPECT_EQ(r.l1_hits, 0u);
  EXPECT_EQ(r.token_counts[0], store_of({key(1)}, dim).token_counts[0]);
  expect_row(r, 0, key(1));
  r = get(b, {key(1)}); // now in B's L1
  EXPECT_EQ(r.l1_hits, 1u);
  cancel(b, {key(2)});

  // Redis dies: lookups still answer (from L1, misses as compute) and errors are counted.
  server->stop();
  EXPECT_EQ(get(a, {key(1)}).statuses[0], cache_lookup_result::hit);
  auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(get(a, {key(100)}).statuses[0], cache_lookup_result::compute);
  // A refused connection costs no wait: far below any Redis timeout, whatever the machine's load.
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s);
  cancel(a, {key(100)});
  poll(
      [&] {
        auto s = stats(a);
        return s.l2_errors > 0 && !s.l2_connected;
      },
      "L2 errors to be counted");
  // Inside the backoff, misses do not go to Redis: they come back without new errors.
  auto errors = stats(a).l2_errors;
  began = std::chrono::steady_clock::now();
  for (uint64_t k = 200; k < 220; ++k) {
    EXPECT_EQ(get(a, {key(k)}).statuses[0], cache_lookup_result::compute);
    cancel(a, {key(k)});
  }
  if (std::chrono::steady_clock::now() - began < 250ms) { // still inside the 300 ms backoff
    EXPECT_EQ(stats(a).l2_errors, errors);
  }

  // Redis is back (empty): after the backoff A writes to it again and B reads what A wrote.
  ASSERT_TRUE(server->start());
  uint64_t k = 1000;
  poll(
      [&] {
        ++k;
        get(a, {key(k)});
        put(a, {key(k)}, dim);
        stats(a); // the put has been handled once this answers
        for (int i = 0; i < 50 && !in_redis(key(k)); ++i)
          std::this_thread::sleep_for(2ms);
        return in_redis(key(k));
      },
      "A's L2 writes to resume", 60s);
  poll(
      [&] {
        auto x = get(b, {key(k)});
        if (x.statuses[0] == cache_lookup_result::hit)
          return x.l2_hits == 1;
        cancel(b, {key(k)});
        return false;
      },
      "B's L2 reads to resume", 60s);
  EXPECT_TRUE(stats(a).l2_connected);
}

TEST_F(CacheL2Redis, a_corrupt_value_is_a_miss_and_an_error) {
  auto c = start(l2_config(port));
  ASSERT_EQ(server->command("SET", l2_key("embed:test:", key(5)), "garbage"), "OK");
  auto before = stats(c).l2_errors;
  EXPECT_EQ(get(c, {key(5)}).statuses[0], cache_lookup_result::compute);
  EXPECT_EQ(stats(c).l2_errors, before + 1);
  // The owner's put replaces it.
  put(c, {key(5)}, dim);
  poll(
      [&] {
        return server->command("STRLEN", l2_key("embed:test:", key(5))) ==
               std::to_string(8 + 4 * dim);
      },
      "the good value");
}

struct CacheL2Down : cache_fixture {};

TEST_F(CacheL2Down, a_gateway_starts_and_serves_while_redis_is_unreachable) {
  // Bound but never listening, for the whole test: connections to it are refused.
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len), 0);
  auto port = ntohs(a.sin_port);
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_holder{holder};
  auto c = start(l2_config(port));
  auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(get(c, {key(1)}).statuses[0], cache_lookup_result::compute);
  // A refused connection costs no wait: far below any Redis timeout, whatever the machine's load.
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s);
  put(c, {key(1)}, dim);
  EXPECT_EQ(get(c, {key(1)}).statuses[0], cache_lookup_result::hit);
  auto s = stats(c);
  EXPECT_TRUE(s.l2_enabled);
  EXPECT_FALSE(s.l2_connected);
  EXPECT_GE(s.l2_errors, 1u);
}

} // namespace
