#include "logging/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include <signal.h>
#include <string.h>

namespace embed::log {

namespace {

thread_local std::string tl_correlation_id;

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// %* : the correlation id, as a JSON member or as a text tag, only when one is set.
class correlation_flag : public spdlog::custom_flag_formatter {
public:
  explicit correlation_flag(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const auto& id = tl_correlation_id;
    if (id.empty())
      return;
    if (json_) {
      append(dest, ",\"correlation_id\":\"");
      append(dest, json_escape(id));
      append(dest, "\"");
    } else {
      append(dest, " [cid=");
      append(dest, text_escape(id));
      append(dest, "]");
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<correlation_flag>(json_);
  }

private:
  bool json_;
};

// %j : the message payload escaped for a JSON string.
class json_message_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append(dest, json_escape(std::string_view(msg.payload.data(), msg.payload.size())));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

// %V : the message payload with control characters escaped (text logs: one event, one line).
class text_message_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!needs_text_escape(payload)) {
      append(dest, payload);
      return;
    }
    append(dest, text_escape(payload));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<text_message_flag>();
  }
};

} // namespace

bool needs_text_escape(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f)
      return true;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return true; // U+0080..U+009F: C1 controls (CSI is U+009B)
  }
  return false;
}

std::string text_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    std::array<char, 8> buf{};
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf.data(), buf.size(), "\\x%02x", c);
      out += buf.data();
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      std::snprintf(buf.data(), buf.size(), "\\u%04x", static_cast<unsigned char>(s[i + 1]));
      out += buf.data();
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool valid_level(std::string_view level) {
  for (auto name : {"trace", "debug", "info", "warn", "warning", "error", "critical", "off"})
    if (level == name)
      return true;
  return false;
}

void init(const options& opts) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (opts.to_stderr)
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  else
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(opts.component, sink);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<correlation_flag>('*', opts.json);
  if (opts.json) {
    formatter->add_flag<json_message_flag>('j');
    formatter->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":"%n","pid":%P,"tid":%t%*,"msg":"%j"})");
  } else {
    // Text: control characters in the message and the correlation id (both may come from a
    // client) are escaped, so that nobody can write a line of their own or drive the terminal.
    formatter->add_flag<text_message_flag>('V');
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %n[%P] %l%*: %V");
  }
  logger->set_formatter(std::move(formatter));
  auto level = opts.level == "warning" ? std::string("warn") : opts.level;
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

const std::string& current_correlation_id() {
  return tl_correlation_id;
}

correlation_scope::correlation_scope(std::string_view correlation_id)
    : previous_(std::move(tl_correlation_id)) {
  tl_correlation_id.assign(correlation_id.data(), correlation_id.size());
}

correlation_scope::~correlation_scope() {
  tl_correlation_id = std::move(previous_);
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (c < 0x20) {
        std::array<char, 8> buf{};
        std::snprintf(buf.data(), buf.size(), "\\u%04x", c);
        out += buf.data();
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  return out;
}

std::string new_correlation_id() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{
      std::random_device{}() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  uint64_t v = rng() ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  std::array<char, 17> buf{};
  std::snprintf(buf.data(), buf.size(), "%016llx", static_cast<unsigned long long>(v));
  return buf.data();
}

int wait_for_signal(const sigset_t& signals, std::string& description) {
  siginfo_t info{};
  int sig = -1;
  while ((sig = ::sigwaitinfo(&signals, &info)) < 0 && errno == EINTR) {
  }
  if (sig < 0) {
    description = std::string("sigwaitinfo failed: ") + ::strerror(errno);
    return sig;
  }
  const char* abbrev = ::sigabbrev_np(sig);
  description = std::string("SIG") + (abbrev ? abbrev : std::to_string(sig).c_str());
  if (info.si_code == SI_USER || info.si_code == SI_QUEUE || info.si_code == SI_TKILL) {
    std::string comm;
    std::ifstream(std::string("/proc/") + std::to_string(info.si_pid) + "/comm") >> comm;
    description += " from pid " + std::to_string(info.si_pid) +
                   (comm.empty() ? std::string(" (gone)") : " (" + comm + ")");
  } else if (info.si_code == SI_KERNEL) {
    description += " from the kernel (e.g. a terminal)";
  }
  return sig;
}

} // namespace embed::log
