#include "metrics/process_collector.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace embed::metrics {

namespace {

prometheus::MetricFamily gauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric metric;
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
  return family;
}

prometheus::MetricFamily counter(std::string name, std::string help, double value) {
  auto family = gauge(std::move(name), std::move(help), 0);
  family.type = prometheus::MetricType::Counter;
  family.metric[0].counter.value = value;
  return family;
}

// Seconds since the epoch at which the machine booted (/proc/stat `btime`).
double boot_time() {
  std::ifstream in{"/proc/stat"};
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double value = 0;
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

size_t open_fds() {
  size_t count = 0;
  if (auto* dir = opendir("/proc/self/fd")) {
    while (auto* entry = readdir(dir))
      if (entry->d_name[0] != '.')
        ++count;
    closedir(dir);
    if (count > 0)
      --count; // the descriptor opendir itself holds
  }
  return count;
}

} // namespace

const std::vector<std::string>& process_collector::family_names() {
  static const std::vector<std::string> names{"process_cpu_seconds_total",
                                              "process_resident_memory_bytes",
                                              "process_virtual_memory_bytes",
                                              "process_start_time_seconds",
                                              "process_open_fds",
                                              "process_max_fds"};
  return names;
}

std::vector<prometheus::MetricFamily> process_collector::Collect() const {
  // /proc/self/stat: the command name may contain spaces and parentheses, so fields are counted
  // after the last ')'. Field 14/15 utime/stime, 22 starttime (clock ticks), 23 vsize, 24 rss.
  double cpu = 0, start = 0, vsize = 0, rss = 0;
  std::ifstream in{"/proc/self/stat"};
  std::string line;
  if (std::getline(in, line)) {
    auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields{line.substr(close + 2)};
      std::vector<std::string> f;
      for (std::string s; fields >> s;)
        f.push_back(s);
      // f[0] is field 3 (state).
      if (f.size() > 21) {
        auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
        auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
        cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        start = boot_time() + std::stod(f[19]) / ticks;
        vsize = std::stod(f[20]);
        rss = std::stod(f[21]) * page;
      }
    }
  }
  rlimit limit{};
  double max_fds = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<double>(limit.rlim_cur) : 0;
  return {
      counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", cpu),
      gauge("process_resident_memory_bytes", "Resident memory size in bytes.", rss),
      gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", vsize),
      gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
            start),
      gauge("process_open_fds", "Number of open file descriptors.",
            static_cast<double>(open_fds())),
      gauge("process_max_fds", "Maximum number of open file descriptors.", max_fds),
  };
}

} // namespace embed::metrics
