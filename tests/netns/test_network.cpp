#include "tests/netns/test_network.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <netinet/in.h>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

namespace embed::testing {

namespace {

constexpr const char* ns_prefix = "embnt-";  // namespaces: embnt-<tag>-<host>
constexpr const char* br_prefix = "embr";    // bridges:    embr<tag>
constexpr const char* veth_prefix = "emv";   // veths:      emv<tag>h<i>

// Hexadecimal: short enough for 15-character interface names, and never an 'x' or 'h'.
std::string hex(unsigned long v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lx", v);
  return buf;
}

// The pid encoded in a tag ("<hex pid>x<n>..."), or 0.
pid_t pid_of_tag(const std::string& rest) {
  auto x = rest.find('x');
  if (x == std::string::npos || x == 0)
    return 0;
  return static_cast<pid_t>(std::strtoul(rest.substr(0, x).c_str(), nullptr, 16));
}

// Running (a zombie, never reaped when its parent is gone and init does not reap, is dead).
bool pid_alive(pid_t pid) {
  if (pid <= 0)
    return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat))
    return false;
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

void kill_pids_in(const std::string& ns) {
  std::string out;
  if (run_command("ip netns pids " + ns, &out) != 0)
    return;
  std::istringstream in(out);
  pid_t pid;
  while (in >> pid)
    if (pid > 1 && pid != ::getpid())
      ::kill(pid, SIGKILL);
}

// Leftovers of earlier runs whose process is gone (crashed, SIGKILLed by a timeout): their
// namespaces, /etc/netns folders and links. Nothing of a live process is touched.
void remove_stale() {
  std::string out;
  if (run_command("ip netns list", &out) == 0) {
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      auto name = line.substr(0, line.find(' '));
      if (name.rfind(ns_prefix, 0) != 0 || pid_alive(pid_of_tag(name.substr(6))))
        continue;
      kill_pids_in(name);
      run_command("ip netns del " + name);
      run_command("rm -rf /etc/netns/" + name);
    }
  }
  out.clear();
  if (run_command("ip -o link show", &out) == 0) {
    std::istringstream in(out);
    std::string line;
    std::regex re(R"(^\d+: (emv|embr)([0-9a-f]+x[0-9a-f]+(h[0-9a-f]+)?)[@:])");
    while (std::getline(in, line)) {
      std::smatch m;
      if (!std::regex_search(line, m, re) || pid_alive(pid_of_tag(m[2].str())))
        continue;
      auto name = line.substr(line.find(' ') + 1);
      name = name.substr(0, name.find_first_of("@:"));
      run_command("ip link del " + name);
    }
  }
}

struct prefix4 {
  uint32_t net;
  int len;
};

bool overlaps(prefix4 a, prefix4 b) {
  int len = std::min(a.len, b.len);
  uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  return (a.net & mask) == (b.net & mask);
}

// Every IPv4 address / prefix routed, assigned or used as a name server here.
std::vector<prefix4> used_prefixes() {
  std::string text;
  run_command("ip -4 route show table all", &text);
  run_command("ip -4 -o addr show", &text);
  std::ifstream rc("/etc/resolv.conf");
  std::stringstream ss;
  ss << rc.rdbuf();
  text += ss.str();
  std::vector<prefix4> out;
  std::regex re(R"((\d+)\.(\d+)\.(\d+)\.(\d+)(/(\d+))?)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    auto& m = *it;
    uint32_t net = 0;
    for (int i = 1; i <= 4; ++i)
      net = (net << 8) | (std::stoul(m[i].str()) & 0xff);
    int len = m[6].matched ? std::stoi(m[6].str()) : 32;
    if (len == 0)
      continue; // 0.0.0.0/0: the default route covers everything
    out.push_back({net, len});
  }
  return out;
}

} // namespace

int run_command(const std::string& command, std::string* out) {
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr)
    return -1;
  char buf[4096];
  size_t n;
  std::string text;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    text.append(buf, n);
  int st = ::pclose(p);
  if (out != nullptr)
    *out += text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

test_network::test_network() {
  static int networks = 0;
  tag_ = hex(static_cast<unsigned long>(::getpid())) + "x" + hex(networks++);
  if (::geteuid() != 0) {
    error_ = "needs root (network namespaces, veth, bridge)";
    return;
  }
  std::string out;
  if (run_command("ip -V", &out) != 0) {
    error_ = "no `ip` command (iproute2): " + out;
    return;
  }
  remove_stale();
  // 10.X.Y.0/24 from the pid, moving on while it clashes with anything routed here.
  auto used = used_prefixes();
  auto pid = static_cast<unsigned>(::getpid());
  for (unsigned attempt = 0; attempt < 200 && prefix_.empty(); ++attempt) {
    unsigned x = 16 + (pid + attempt * 7) % 200;           // 10.16 .. 10.215
    unsigned y = 1 + (pid / 200 + attempt * 13 + networks) % 250; // .1 .. .250
    prefix4 cand{(10u << 24) | (x << 16) | (y << 8), 24};
    bool clash = false;
    for (auto& u : used)
      clash = clash || overlaps(cand, u);
    if (!clash)
      prefix_ = "10." + std::to_string(x) + "." + std::to_string(y) + ".";
  }
  if (prefix_.empty()) {
    error_ = "no free 10.X.Y.0/24 for the test network";
    return;
  }
  subnet_ = prefix_ + "0/24";
  // Probe `ip netns add` with the first namespace's worth of rights: a throw-away namespace.
  auto probe = std::string(ns_prefix) + tag_ + "-probe";
  out.clear();
  if (run_command("ip netns add " + probe, &out) != 0) {
    error_ = "`ip netns add` failed: " + out;
    return;
  }
  run_command("ip netns del " + probe);
  bridge_ = br_prefix + tag_;
  bridge_address_ = prefix_ + "1";
  out.clear();
  if (run_command("ip link add " + bridge_ + " type bridge stp_state 0 forward_delay 0", &out) !=
      0) {
    error_ = "cannot create a bridge: " + out;
    return;
  }
  bridge_made_ = true;
  if (run_command("ip addr add " + bridge_address_ + "/24 dev " + bridge_, &out) != 0 ||
      run_command("ip link set " + bridge_ + " up", &out) != 0) {
    error_ = "cannot set up bridge " + bridge_ + ": " + out;
    return;
  }
}

test_network::~test_network() {
  teardown();
}

void test_network::teardown() {
  // Processes first: a namespace lives on while a process is inside it.
  for (auto& p : procs_)
    if (p->running()) {
      p->signal(SIGKILL);
      p->wait(std::chrono::seconds(30));
    }
  procs_.clear();
  for (auto& h : hosts_) {
    kill_pids_in(h->ns);
    run_command("ip link del " + h->veth);
    run_command("ip netns del " + h->ns);
  }
  hosts_.clear();
  for (auto& d : etc_dirs_)
    run_command("rm -rf " + d);
  etc_dirs_.clear();
  ::rmdir("/etc/netns"); // only when empty: nobody else's folder goes
  if (bridge_made_)
    run_command("ip link del " + bridge_);
  bridge_made_ = false;
}

const test_network::host& test_network::add_host(const std::string& name) {
  if (!ok())
    throw std::runtime_error("test network unusable: " + error_);
  auto h = std::make_unique<host>();
  h->name = name;
  h->ns = ns_prefix + tag_ + "-" + name;
  auto i = hosts_.size();
  h->veth = veth_prefix + tag_ + "h" + hex(i);
  h->address = prefix_ + std::to_string(10 + i);
  std::string out;
  auto step = [&](const std::string& cmd) {
    if (error_.empty() && run_command(cmd, &out) != 0)
      error_ = "`" + cmd + "` failed: " + out;
  };
  step("ip netns add " + h->ns);
  hosts_.push_back(std::move(h));
  auto& hr = *hosts_.back();
  step("ip link add " + hr.veth + " type veth peer name eth0 netns " + hr.ns);
  step("ip link set " + hr.veth + " master " + bridge_);
  step("ip link set " + hr.veth + " up");
  step("ip -n " + hr.ns + " link set lo up");
  step("ip -n " + hr.ns + " addr add " + hr.address + "/24 dev eth0");
  step("ip -n " + hr.ns + " link set eth0 up");
  if (!ok())
    throw std::runtime_error("test network: " + error_);
  return hr;
}

const test_network::host& test_network::at(const std::string& name) const {
  for (auto& h : hosts_)
    if (h->name == name)
      return *h;
  throw std::runtime_error("test network: no host " + name);
}

void test_network::cut(const std::string& name) {
  std::string out;
  if (run_command("ip link set " + at(name).veth + " down", &out) != 0)
    throw std::runtime_error("cut " + name + ": " + out);
}

void test_network::restore(const std::string& name) {
  std::string out;
  if (run_command("ip link set " + at(name).veth + " up", &out) != 0)
    throw std::runtime_error("restore " + name + ": " + out);
}

process& test_network::spawn(const std::string& host_name, const std::string& proc_name,
                             std::vector<std::string> argv) {
  std::vector<std::string> full{"ip", "netns", "exec", at(host_name).ns};
  full.insert(full.end(), argv.begin(), argv.end());
  procs_.push_back(std::make_unique<process>(proc_name, full));
  return *procs_.back();
}

void test_network::write_etc(const std::string& host_name, const std::string& file,
                             const std::string& content) {
  auto dir = "/etc/netns/" + at(host_name).ns;
  ::mkdir("/etc/netns", 0755);
  ::mkdir(dir.c_str(), 0755);
  bool known = false;
  for (auto& d : etc_dirs_)
    known = known || d == dir;
  if (!known)
    etc_dirs_.push_back(dir);
  std::ofstream(dir + "/" + file, std::ios::trunc) << content;
}

double metric_sum_where(const std::string& text, const std::string& name,
                        const std::vector<std::string>& labels) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0)
      continue;
    auto rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' '))
      continue; // a longer name with this prefix
    auto sp = line.rfind(' ');
    auto label_text = line.substr(name.size(), sp - name.size());
    bool all = true;
    for (auto& l : labels)
      all = all && label_text.find(l) != std::string::npos;
    if (all)
      sum += std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return sum;
}

} // namespace embed::testing
