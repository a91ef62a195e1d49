#include "tests/integration/process.hpp"

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace embed::testing {

namespace {

uint16_t bind_reserved(int fd, uint16_t port) {
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("bind 127.0.0.1:" + std::to_string(port) + ": " +
                             std::strerror(errno));
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

} // namespace

port_reservation::port_reservation() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  port_ = bind_reserved(fd_, 0);
}

port_reservation::port_reservation(uint16_t port)
    : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  port_ = bind_reserved(fd_, port);
}

port_reservation::~port_reservation() {
  if (fd_ >= 0)
    ::close(fd_);
}

std::optional<std::pair<uint16_t, uint16_t>>
wait_ports_file(const std::string& path, process& p, std::chrono::milliseconds timeout) {
  std::optional<std::pair<uint16_t, uint16_t>> out;
  auto field = [](const std::string& text, const std::string& key) -> long {
    auto at = text.find("\"" + key + "\"");
    if (at == std::string::npos)
      return -1;
    at = text.find(':', at);
    return at == std::string::npos ? -1 : std::strtol(text.c_str() + at + 1, nullptr, 10);
  };
  poll_until(
      [&] {
        std::ifstream in(path);
        if (in) {
          std::stringstream ss;
          ss << in.rdbuf();
          auto g = field(ss.str(), "grpc_port"), m = field(ss.str(), "metrics_port");
          if (g > 0 && m > 0) {
            out.emplace(static_cast<uint16_t>(g), static_cast<uint16_t>(m));
            return true;
          }
        }
        return !p.running();
      },
      timeout, std::chrono::milliseconds(10));
  return out;
}

uint16_t start_on_some_port(const std::function<bool(uint16_t)>& start, int tries) {
  for (int i = 0; i < tries; ++i) {
    uint16_t port;
    {
      port_reservation r; // a port nobody held a moment ago; released for the service to bind
      port = r.port();
    }
    if (start(port))
      return port;
  }
  return 0;
}

bool poll_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

process::process(std::string name, std::vector<std::string> argv) : name_(std::move(name)) {
  log_ = temp_dir("log-" + name_) + "/" + name_ + ".log";
  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // Unblock what the test runner may have blocked, so that SIGTERM reaches the child.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
}

process::~process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(30));
  }
}

bool process::running() {
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

void process::signal(int sig) {
  if (running())
    ::kill(pid_, sig);
}

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
  poll_until([&] { return !running(); }, timeout, std::chrono::milliseconds(10));
  return status_;
}

std::string process::log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string bin_dir() {
  return EMBED_BIN_DIR;
}

std::string fixtures_dir() {
  return EMBED_FIXTURES_DIR;
}

std::string temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/embed-" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string http_get(uint16_t port, const std::string& path) {
  return http_get("127.0.0.1", port, path);
}

std::string http_get(const std::string& host, uint16_t port, const std::string& path,
                     std::chrono::seconds io_timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (io_timeout.count() > 0) {
    timeval tv{static_cast<time_t>(io_timeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {};
  }
  auto req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto head_end = out.find("\r\n\r\n");
  if (head_end == std::string::npos)
    return {};
  std::string head;
  for (char c : out.substr(0, head_end))
    head += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto body = out.substr(head_end + 4);
  // Prometheus answers large bodies with chunked transfer encoding.
  if (head.find("transfer-encoding: chunked") == std::string::npos)
    return body;
  std::string decoded;
  size_t i = 0;
  while (i < body.size()) {
    auto eol = body.find("\r\n", i);
    if (eol == std::string::npos)
      break;
    auto size = std::strtoul(body.substr(i, eol - i).c_str(), nullptr, 16);
    if (size == 0)
      break;
    decoded += body.substr(eol + 2, size);
    i = eol + 2 + size + 2;
  }
  return decoded;
}

double metric_sum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0)
      continue;
    auto rest = line.substr(name.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ')
      continue; // a longer name with this prefix
    auto sp = line.rfind(' ');
    sum += std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return sum;
}

long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

} // namespace embed::testing
