// `embedctl actors` and `embedctl top` as users run them: the real binary, talking to an
// in-process stand-in Inspector on a loopback port chosen at start; `top` inside a real terminal
// (tmux), read back from the screen and driven by keys.
#include "tests/embedctl/run_process.hpp"
#include "tests/embedctl/stand_in_inspector.hpp"
#include "tests/embedctl/tmux_driver.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace embed::cli::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- actors

class actors_test : public ::testing::Test {
protected:
  process_result run(std::vector<std::string> args) {
    args.insert(args.begin(), {EMBEDCTL_PATH, "actors", "--server", server.address()});
    return run_process(args);
  }

  stand_in_inspector_server server;
};

TEST_F(actors_test, json_prints_the_snapshot_as_one_object_with_proto_field_names) {
  auto r = run({"--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
  auto v = json::parse(r.out).as_object();
  EXPECT_EQ(v.at("process").as_string(), stand_in_process);
  EXPECT_EQ(v.at("pid").to_number<uint32_t>(), stand_in_pid);
  EXPECT_EQ(v.at("uptime_s").to_number<double>(), 100.0);
  // Proto JSON: 64-bit integers are strings.
  EXPECT_EQ(v.at("taken_at_unix_ms").as_string(), "1700000000000");
  EXPECT_EQ(v.at("requests_total").as_string(), "1000");
  const auto& actors = v.at("actors").as_array();
  ASSERT_EQ(actors.size(), 6u);
  auto expected = stand_in_snapshot(0);
  for (size_t i = 0; i < actors.size(); ++i) {
    const auto& a = actors[i].as_object();
    const auto& e = expected.actors(static_cast<int>(i));
    EXPECT_EQ(a.at("name").as_string(), e.name());
    EXPECT_EQ(a.at("kind").as_string(), e.kind());
    EXPECT_EQ(a.at("parent").as_string(), e.parent()); // "" printed too: every field is there
    EXPECT_EQ(a.at("mailbox_depth").as_string(), std::to_string(e.mailbox_depth()));
    EXPECT_EQ(a.at("messages_handled").as_string(), std::to_string(e.messages_handled()));
    EXPECT_EQ(a.at("mean_handling_us").to_number<double>(), e.mean_handling_us());
    EXPECT_EQ(a.at("restarts").to_number<uint32_t>(), e.restarts());
    EXPECT_EQ(a.at("state").as_object().size(), static_cast<size_t>(e.state_size()));
  }
  EXPECT_EQ(actors[4].as_object().at("state").as_object().at("breaker").as_string(), "closed");
}

TEST_F(actors_test, table_shows_every_actor_with_its_condensed_state) {
  auto r = run({});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(has(r.out, "stand-in  pid 4242  up 00:01:40")) << r.out;
  EXPECT_TRUE(has(r.out, "NAME")) << r.out;
  EXPECT_TRUE(has(r.out, "STATE")) << r.out;
  for (const char* name : stand_in_actor_names)
    EXPECT_TRUE(has(r.out, name)) << name << "\n" << r.out;
  // Full values, keys sorted, nothing truncated: the table is for pipes too.
  EXPECT_TRUE(has(r.out, "breaker=closed endpoint=10.0.0.17:50052 in_flight=4 last_error=none"))
      << r.out;
  EXPECT_TRUE(has(r.out, "bytes=52428800 entries=1200 hit_ratio=0.93")) << r.out;
}

TEST_F(actors_test, a_server_that_is_not_there_is_a_clear_error) {
  auto r = run_process({EMBEDCTL_PATH, "actors", "--server", "127.0.0.1:1", "--timeout", "2"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(has(r.err, "embedctl: UNAVAILABLE")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(actors_token_test, token_comes_from_the_flag_or_the_environment) {
  stand_in_inspector_server server(0, "s3cret");
  auto without = run_process({EMBEDCTL_PATH, "actors", "--json", "--server", server.address()});
  EXPECT_EQ(without.rc, 1);
  EXPECT_TRUE(has(without.err, "UNAUTHENTICATED")) << without.err;
  EXPECT_TRUE(has(without.err, "--token")) << without.err;

  auto flag = run_process(
      {EMBEDCTL_PATH, "actors", "--json", "--server", server.address(), "--token", "s3cret"});
  EXPECT_EQ(flag.rc, 0) << flag.err;

  auto env = run_process({"/usr/bin/env", "EMBED_INSPECT_TOKEN=s3cret", EMBEDCTL_PATH, "actors",
                          "--json", "--server", server.address()});
  EXPECT_EQ(env.rc, 0) << env.err;

  auto wrong = run_process(
      {EMBEDCTL_PATH, "actors", "--json", "--server", server.address(), "--token", "nope"});
  EXPECT_EQ(wrong.rc, 1);
  EXPECT_TRUE(has(wrong.err, "check --token")) << wrong.err;

  auto spaced = run_process(
      {EMBEDCTL_PATH, "actors", "--json", "--server", server.address(), "--token", "a b"});
  EXPECT_EQ(spaced.rc, 2) << spaced.err;
  EXPECT_TRUE(has(spaced.err, "printable ASCII")) << spaced.err;
}

// ---- top without a terminal

TEST(top_pipe_test, refuses_when_stdout_is_not_a_terminal_and_points_at_actors_json) {
  stand_in_inspector_server server;
  auto r = run_process({EMBEDCTL_PATH, "top", "--server", server.address()});
  EXPECT_EQ(r.rc, 2);
  EXPECT_TRUE(has(r.err, "not a terminal")) << r.err;
  EXPECT_TRUE(has(r.err, "embedctl actors --json")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

// ---- top in a real terminal

/// The line index of each stand-in actor's row on the screen, in screen order.
std::vector<std::string> row_order(const std::string& screen) {
  std::vector<std::pair<size_t, std::string>> found;
  auto lines = screen_lines(screen);
  for (const char* name : stand_in_actor_names) {
    // Row lines start with the name; its first five letters survive any cut (the long one is cut
    // in the middle at 80 columns), and tell the stand-in's actors apart.
    std::string prefix = std::string(name).substr(0, 5);
    for (size_t i = 4; i < lines.size(); ++i)
      if (lines[i].rfind(prefix, 0) == 0) {
        found.emplace_back(i, name);
        break;
      }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> order;
  for (auto& [i, name] : found)
    order.push_back(name);
  return order;
}

/// The text of the row of actor name ("" when not on screen).
std::string row_of(const std::string& screen, const std::string& name) {
  for (const auto& l : screen_lines(screen))
    if (l.rfind(name.substr(0, 5), 0) == 0)
      return l;
  return "";
}

const std::vector<std::string> by_mailbox = {
    "gpu-client:10.0.0.17:50052", "stage-0", "cache", "supervisor", "node", "reranker"};
const std::vector<std::string> by_name = {
    "cache", "gpu-client:10.0.0.17:50052", "node", "reranker", "stage-0", "supervisor"};
const std::vector<std::string> by_handled = {"cache",      "stage-0", "gpu-client:10.0.0.17:50052",
                                             "supervisor", "node",    "reranker"};

class top_test : public ::testing::Test {
protected:
  void SetUp() override {
    if (!tmux_installed())
      GTEST_SKIP() << "tmux is not installed";
  }

  std::string top_command(const std::string& env = "") const {
    return env + (env.empty() ? "" : " ") + shell_quote(EMBEDCTL_PATH) + " top --server " +
           server.address() + " --interval-ms 100";
  }

  tmux_session start(const std::string& tag, int width = 100, int height = 30,
                     const std::string& env = "") {
    return tmux_start("top-" + tag + "-" + std::to_string(::getpid()), top_command(env), width,
                      height);
  }

  /// Waits for a screen with the header and all rows; returns it.
  std::string wait_for_rows(const tmux_session& s) {
    std::string screen;
    bool ok = tmux_wait_for(
        s,
        [](const std::string& t) {
          return has(t, "connected") && !has(t, "disconnected") && row_order(t).size() == 6;
        },
        60s, &screen);
    EXPECT_TRUE(ok) << "no rows on screen:\n" << screen;
    return screen;
  }

  std::vector<std::string> wait_for_order(const tmux_session& s,
                                          const std::vector<std::string>& order) {
    std::string screen;
    tmux_wait_for(
        s, [&](const std::string& t) { return row_order(t) == order; }, 60s, &screen);
    return row_order(screen);
  }

  stand_in_inspector_server server;
};

TEST_F(top_test, shows_header_and_rows_that_change_sorts_by_keys_and_quits_with_q) {
  auto s = start("main");
  std::string first = wait_for_rows(s);
  auto lines = screen_lines(first);
  ASSERT_GE(lines.size(), 4u) << first;
  EXPECT_TRUE(has(lines[0], "stand-in  pid 4242  up ")) << first;
  EXPECT_TRUE(has(lines[0], server.address())) << first;
  EXPECT_TRUE(has(lines[1], "req/s ")) << first;
  EXPECT_TRUE(has(lines[1], "err/s 0.5")) << first;
  EXPECT_TRUE(has(lines[1], "actors 6")) << first;
  EXPECT_TRUE(has(lines[3], "NAME")) << first;
  EXPECT_TRUE(has(lines[3], "MBOX")) << first;
  EXPECT_TRUE(has(lines[3], "HANDLED")) << first;
  EXPECT_TRUE(has(lines[3], "STATE")) << first;
  EXPECT_EQ(row_order(first), by_mailbox) << first; // the default: deepest mailbox first
  std::string cache_row = row_of(first, "cache");
  // At 100 columns the state is cut to its column (its full text is in the resize test).
  EXPECT_TRUE(has(cache_row, "bytes=5242880")) << cache_row;
  EXPECT_EQ(server.service.last_interval_ms(), 100u);

  // Counters grow with every snapshot: the screen follows, and handled/s appears (200 per
  // snapshot, a snapshot per server second: 200/s).
  std::string later;
  EXPECT_TRUE(tmux_wait_for(
      s,
      [&](const std::string& t) {
        std::string row = row_of(t, "cache");
        return row_order(t).size() == 6 && row != cache_row && has(row, " 200 ");
      },
      60s, &later))
      << "first:\n"
      << first << "later:\n"
      << later;

  // Sorting keys: n by name, n again reverses, m back to mailbox, s on to the next column.
  tmux_keys(s, "n");
  EXPECT_EQ(wait_for_order(s, by_name), by_name);
  auto sorted_lines = screen_lines(tmux_capture(s));
  EXPECT_TRUE(sorted_lines.size() > 1 && has(sorted_lines[1], "sort name"));
  tmux_keys(s, "n");
  std::vector<std::string> reversed(by_name.rbegin(), by_name.rend());
  EXPECT_EQ(wait_for_order(s, reversed), reversed);
  tmux_keys(s, "m");
  EXPECT_EQ(wait_for_order(s, by_mailbox), by_mailbox);
  tmux_keys(s, "s");
  EXPECT_EQ(wait_for_order(s, by_handled), by_handled);

  // Bold/reverse video as an extra: the column titles are in reverse video.
  EXPECT_TRUE(has(tmux_capture(s, true), "\x1b[7m"));

  tmux_keys(s, "q");
  auto rc = tmux_wait_exit(s, 60s);
  ASSERT_TRUE(rc.has_value()) << tmux_capture(s);
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(tmux_terminal_problems(s), "");
  EXPECT_FALSE(has(tmux_capture(s), "HANDLED")) << "the normal screen is back";
}

TEST_F(top_test, fits_80x24_without_wrapping) {
  auto s = start("small", 80, 24);
  std::string screen = wait_for_rows(s);
  auto lines = screen_lines(screen);
  EXPECT_LE(lines.size(), 24u) << screen;
  for (const auto& l : lines)
    EXPECT_LE(screen_width(l), 80) << l;
  ASSERT_GE(lines.size(), 10u) << screen;
  // Every column is there, state last; each actor is one line starting with its name, so
  // nothing wrapped onto a line of its own.
  EXPECT_EQ(lines[3].rfind("NAME", 0), 0u) << screen;
  for (const char* title : {"KIND", "PARENT", "MBOX", "HANDLED", "HND/S", "RST", "STATE"})
    EXPECT_TRUE(has(lines[3], title)) << title << "\n" << screen;
  EXPECT_EQ(row_order(screen), by_mailbox) << screen;
  for (size_t i = 4; i < 10; ++i) {
    bool is_actor_row = false;
    for (const char* name : stand_in_actor_names)
      is_actor_row = is_actor_row || lines[i].rfind(std::string(name).substr(0, 5), 0) == 0;
    EXPECT_TRUE(is_actor_row) << "line " << i << ": " << lines[i] << "\n" << screen;
  }
  // The gpu client's long name loses its middle (both ends tell actors apart), its long state
  // its end.
  std::string gpu = row_of(screen, "gpu-client");
  EXPECT_EQ(gpu.rfind("gpu-cl", 0), 0u) << gpu;
  EXPECT_TRUE(has(gpu, "50052 ")) << gpu;
  EXPECT_TRUE(has(gpu, "breaker=")) << gpu;
  EXPECT_FALSE(has(gpu, "last_error=none")) << gpu;
  EXPECT_LE(screen_width(gpu), 80);
  tmux_keys(s, "q");
  EXPECT_EQ(tmux_wait_exit(s, 60s), 0);
  EXPECT_EQ(tmux_terminal_problems(s), "");
}

TEST_F(top_test, uses_a_larger_terminal_and_follows_a_resize) {
  auto s = start("resize", 80, 24);
  std::string screen = wait_for_rows(s);
  EXPECT_FALSE(has(screen, "gpu-client:10.0.0.17:50052")) << "cut at 80 columns:\n" << screen;
  tmux_resize(s, 160, 40);
  EXPECT_TRUE(tmux_wait_for(
      s,
      [](const std::string& t) {
        return has(t, "gpu-client:10.0.0.17:50052") && has(t, "last_error=none");
      },
      60s, &screen))
      << screen;
  tmux_keys(s, "q");
  EXPECT_EQ(tmux_wait_exit(s, 60s), 0);
}

TEST_F(top_test, help_screen_and_pause) {
  auto s = start("help");
  wait_for_rows(s);
  tmux_keys(s, "?");
  std::string screen;
  EXPECT_TRUE(tmux_wait_for(
      s, [](const std::string& t) { return has(t, "Keys") && has(t, "pause"); }, 60s, &screen))
      << screen;
  tmux_keys(s, "?");
  wait_for_rows(s);

  tmux_keys(s, "p");
  EXPECT_TRUE(tmux_wait_for(
      s, [](const std::string& t) { return has(t, "PAUSED"); }, 60s, &screen))
      << screen;
  std::string frozen = row_of(tmux_capture(s), "cache");
  // Six more snapshots reach the paused console (counted by the server, not waited for by the
  // clock): the screen still shows the frozen row.
  auto taken = server.service.taken();
  for (auto until = std::chrono::steady_clock::now() + 60s; server.service.taken() < taken + 6;) {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "the console stopped watching";
    std::this_thread::sleep_for(10ms); // poll interval; the count decides
  }
  EXPECT_EQ(row_of(tmux_capture(s), "cache"), frozen);
  tmux_keys(s, "p");
  EXPECT_TRUE(tmux_wait_for(
      s, [&](const std::string& t) { return !has(t, "PAUSED") && row_of(t, "cache") != frozen; },
      60s, &screen))
      << screen;
  tmux_keys(s, "q");
  EXPECT_EQ(tmux_wait_exit(s, 60s), 0);
}

TEST_F(top_test, a_broken_stream_shows_disconnected_and_reconnects) {
  auto s = start("reconnect");
  wait_for_rows(s);
  const int watches = server.service.watches();
  server.service.refuse = true;
  server.service.break_streams();
  std::string screen;
  EXPECT_TRUE(tmux_wait_for(
      s, [](const std::string& t) { return has(t, "disconnected") && has(t, "retrying"); }, 60s,
      &screen))
      << screen;
  EXPECT_TRUE(has(screen, "UNAVAILABLE")) << screen;
  EXPECT_EQ(row_order(screen).size(), 6u) << "the last snapshot stays on screen:\n" << screen;
  server.service.refuse = false;
  EXPECT_TRUE(tmux_wait_for(
      s, [](const std::string& t) { return has(t, "connected") && !has(t, "disconnected"); }, 60s,
      &screen))
      << screen;
  EXPECT_GT(server.service.watches(), watches);
  tmux_keys(s, "q");
  EXPECT_EQ(tmux_wait_exit(s, 60s), 0);
  EXPECT_EQ(tmux_terminal_problems(s), "");
}

TEST_F(top_test, waits_for_a_server_that_is_not_there_yet) {
  // A port nobody listens on (the stand-in's, after it is gone).
  int port = 0;
  {
    stand_in_inspector_server gone;
    port = gone.port;
  }
  auto s = tmux_start("top-late-" + std::to_string(::getpid()),
                      shell_quote(EMBEDCTL_PATH) +
                          " top --server 127.0.0.1:" + std::to_string(port) + " --interval-ms 100",
                      100, 30);
  std::string screen;
  EXPECT_TRUE(tmux_wait_for(
      s, [](const std::string& t) { return has(t, "disconnected") && has(t, "retrying"); }, 60s,
      &screen))
      << screen;
  stand_in_inspector_server late(port);
  EXPECT_TRUE(tmux_wait_for(
      s, [](const std::string& t) { return row_order(t).size() == 6; }, 60s, &screen))
      << screen;
  tmux_keys(s, "q");
  EXPECT_EQ(tmux_wait_exit(s, 60s), 0);
}

TEST_F(top_test, ctrl_c_restores_the_terminal) {
  auto s = start("ctrlc");
  wait_for_rows(s);
  tmux_keys(s, "C-c");
  auto rc = tmux_wait_exit(s, 60s);
  ASSERT_TRUE(rc.has_value()) << tmux_capture(s);
  EXPECT_EQ(*rc, 130);
  EXPECT_EQ(tmux_terminal_problems(s), "");
}

TEST_F(top_test, sigterm_restores_the_terminal) {
  auto s = start("term");
  wait_for_rows(s);
  // The pane runs the wrapper shell; embedctl is its child.
  std::string shell_pid = tmux_display(s, "#{pane_pid}");
  std::string children = read_text_file("/proc/" + shell_pid + "/task/" + shell_pid + "/children");
  int pid = std::atoi(children.c_str());
  ASSERT_GT(pid, 0) << "children of " << shell_pid << ": " << children;
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  auto rc = tmux_wait_exit(s, 60s);
  ASSERT_TRUE(rc.has_value()) << tmux_capture(s);
  EXPECT_EQ(*rc, 128 + SIGTERM);
  EXPECT_EQ(tmux_terminal_problems(s), "");
}

TEST_F(top_test, no_color_means_no_attributes) {
  auto s = start("nocolor", 100, 30, "NO_COLOR=1");
  wait_for_rows(s);
  std::string styled = tmux_capture(s, true);
  EXPECT_FALSE(has(styled, "\x1b[")) << styled;
  tmux_keys(s, "q");
  EXPECT_EQ(tmux_wait_exit(s, 60s), 0);
}

} // namespace
} // namespace embed::cli::test
