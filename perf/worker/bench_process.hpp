#pragma once
// Helpers shared by the process-level benchmarks (perf/worker, perf/gateway): free loopback ports,
// child processes (gpu-worker, embedd) with their output in a log file, gRPC health polling,
// /metrics scraping and percentiles. Header-only; needs embed_proto and Threads.
#include "grpc/health/v1/health.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace embed::perf {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// A loopback TCP port that was free a moment ago (bound to port 0, then released).
inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind: " + std::string(std::strerror(errno)));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/embed-perf-" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// A child process, stdout+stderr into `log`. SIGTERM then (after 30 s) SIGKILL on stop().
class child_process {
public:
  child_process(std::string name, std::vector<std::string> argv, std::string log)
      : name_(std::move(name)), log_(std::move(log)) {
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
  }
  ~child_process() { stop(); }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  bool running() {
    if (status_)
      return false;
    int st = 0;
    auto r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return false;
    }
    return r == 0;
  }
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status (128 + signal if killed).
  int stop(std::chrono::seconds grace = std::chrono::seconds(30)) {
    if (running()) {
      ::kill(pid_, SIGTERM);
      auto deadline = clock_type::now() + grace;
      while (running() && clock_type::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (running()) {
        ::kill(pid_, SIGKILL);
        while (running())
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    return status_.value_or(-1);
  }
  const std::string& log_path() const { return log_; }
  std::string log_tail(size_t bytes = 2000) const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    auto s = ss.str();
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
  }
  pid_t pid() const { return pid_; }

private:
  std::string name_, log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Polls grpc.health.v1.Health/Check (service "") until SERVING; false on timeout or if `proc`
// exits meanwhile.
inline bool wait_serving(const std::string& address, child_process& proc,
                         std::chrono::seconds timeout) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    if (!proc.running())
      return false;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    auto st = stub->Check(&ctx, req, &resp);
    if (st.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// An HTTP GET on 127.0.0.1:port; the body, empty on failure.
inline std::string http_get(uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {};
  }
  auto req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string{} : out.substr(body + 4);
}

// Sum of every sample of a metric family in Prometheus text (all label sets).
inline double metric_sum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0)
      continue;
    auto rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ')
      continue;
    auto sp = line.rfind(' ');
    sum += std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return sum;
}

// Nearest-rank percentile (p in [0, 100]) of a copy of `v`.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

inline double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = -1;
  in >> l;
  return l;
}

inline bool file_exists(const std::string& p) {
  return ::access(p.c_str(), X_OK) == 0;
}

} // namespace embed::perf
