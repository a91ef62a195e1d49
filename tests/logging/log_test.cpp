#include "logging/log.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace {

// Runs `body` with stderr redirected to a file and returns what was written.
template <class F>
std::string capture_stderr(F body) {
  char path[] = "/tmp/embed-log-XXXXXX";
  int fd = ::mkstemp(path);
  std::fflush(stderr);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  body();
  spdlog::default_logger()->flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(path);
  return ss.str();
}

} // namespace

TEST(logging, json_lines_carry_the_correlation_id_only_inside_its_scope) {
  auto out = capture_stderr([] {
    embed::log::init({"embedd", "info", true, true});
    {
      embed::log::correlation_scope scope("req-42");
      spdlog::info("embedding {} inputs with \"quotes\"\nand a newline", 3);
    }
    spdlog::info("outside");
    spdlog::debug("below the level");
  });
  std::istringstream lines(out);
  std::string first, second, third;
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_FALSE(std::getline(lines, third)) << "debug line leaked: " << third;
  auto a = boost::json::parse(first).as_object();
  EXPECT_EQ(a.at("level").as_string(), "info");
  EXPECT_EQ(a.at("component").as_string(), "embedd");
  EXPECT_EQ(a.at("correlation_id").as_string(), "req-42");
  EXPECT_EQ(a.at("msg").as_string(), "embedding 3 inputs with \"quotes\"\nand a newline");
  auto b = boost::json::parse(second).as_object();
  EXPECT_FALSE(b.contains("correlation_id"));
}

TEST(logging, text_format_tags_the_correlation_id) {
  auto out = capture_stderr([] {
    embed::log::init({"gpu-worker", "debug", false, true});
    embed::log::correlation_scope scope("abc");
    spdlog::debug("hello");
  });
  EXPECT_NE(out.find("gpu-worker"), std::string::npos) << out;
  EXPECT_NE(out.find("[cid=abc]: hello"), std::string::npos) << out;
}

TEST(logging, text_lines_escape_control_characters_from_clients) {
  // A correlation id and a message carrying a newline, a carriage return, terminal escapes (ESC
  // and the C1 CSI) and DEL: one event stays one line, and nothing reaches the terminal raw.
  std::string forged = "abc\n2026-01-01T00:00:00.000Z embedd[1] info: forged\r\x1b[31m\xc2\x9b\x7f";
  auto out = capture_stderr([&] {
    embed::log::init({"embedd", "info", false, true});
    embed::log::correlation_scope scope(forged);
    spdlog::info("bad input: {}", forged);
  });
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out; // one line
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x7f'), std::string::npos) << out;
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos) << out;
  EXPECT_NE(out.find("[cid=abc\\n2026-01-01T00:00:00.000Z embedd[1] info: forged\\r\\x1b[31m"
                     "\\u009b\\x7f]"),
            std::string::npos)
      << out;
  // UTF-8 text is kept as it is.
  EXPECT_EQ(embed::log::text_escape("h\xc3\xa9llo \xe2\x9c\x93"), "h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_FALSE(embed::log::needs_text_escape("plain \xc3\xa9"));
}

TEST(logging, levels_and_ids) {
  EXPECT_TRUE(embed::log::valid_level("warning"));
  EXPECT_FALSE(embed::log::valid_level("loud"));
  auto a = embed::log::new_correlation_id(), b = embed::log::new_correlation_id();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
  EXPECT_EQ(embed::log::json_escape("a\"b\\\x01"), "a\\\"b\\\\\\u0001");
}
