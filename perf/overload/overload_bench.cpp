// overload_bench: what admission control does under 10x the measured capacity.
//
// Starts the real gpu-worker (built-in model) and embedd (--max-in-flight M), then, in one run:
//   1. unloaded latency: one Embed at a time (unique texts, every one a cache miss) -> p50/p99;
//   2. capacity: M calls in flight (the most the gateway admits) for a few seconds -> req/s, and
//      the gateway's RSS meanwhile (the steady state);
//   3. overload: an open loop offering 10x that capacity for 30 s (unique texts).
// Prints the admitted p99 against the unloaded p99 (target <= 3x), how many calls got
// RESOURCE_EXHAUSTED, every other status, and the gateway's peak RSS against the steady state
// (target <= 1.5x). Exit 0 when the run completed (the targets are reported, not asserted).
#include "perf/worker/bench_process.hpp"

#include "edge/status.hpp"

#include "embedding/v1/embedding.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <sched.h>

using namespace embed::perf;
namespace ev1 = embedding::v1;

namespace {

struct options {
  std::string bin_dir = EMBED_BENCH_BIN_DIR;
  int max_in_flight = 8;
  double factor = 10;
  double overload_s = 30;
  double capacity_s = 8;
  int unloaded_n = 300;
  bool keep = false;
  bool pin = true; // worker on the last core, gateway + this load generator on the others

};

void usage() {
  std::cerr << "usage: overload_bench [--bin-dir DIR] [--max-in-flight M] [--factor F]\n"
               "                      [--seconds S] [--capacity-seconds S] [--keep-logs] [--no-pin]\n"
               "  --no-pin: do not give the worker a core of its own (by default it runs on the\n"
               "  last core, the gateway and the load generator on the others, as if the worker\n"
               "  were on its own GPU host: rejecting 10x load must not starve the model)\n";
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--bin-dir")
      o.bin_dir = next();
    else if (a == "--max-in-flight")
      o.max_in_flight = std::stoi(next());
    else if (a == "--factor")
      o.factor = std::stod(next());
    else if (a == "--seconds")
      o.overload_s = std::stod(next());
    else if (a == "--capacity-seconds")
      o.capacity_s = std::stod(next());
    else if (a == "--keep-logs")
      o.keep = true;
    else if (a == "--no-pin")
      o.pin = false;
    else {
      usage();
      std::exit(2);
    }
  }
  return o;
}

// Resident set of a process in KiB (VmRSS), 0 if it is gone.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return 0;
}

// Samples a process' RSS every 50 ms in the background; max() is the peak seen.
class rss_sampler {
public:
  explicit rss_sampler(pid_t pid) : pid_(pid), thread_([this] { run(); }) {}
  ~rss_sampler() {
    stop_ = true;
    thread_.join();
  }
  long max() const { return max_.load(); }
  void reset() { max_ = rss_kib(pid_); }

private:
  void run() {
    while (!stop_) {
      long v = rss_kib(pid_);
      long m = max_.load();
      while (v > m && !max_.compare_exchange_weak(m, v)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<long> max_{0};
  std::thread thread_;
};

ev1::EmbedRequest unique_request(const std::string& tag, uint64_t i) {
  ev1::EmbedRequest r;
  r.add_inputs(tag + " " + std::to_string(i) + " what does admission control do under overload");
  return r;
}

struct phase_result {
  double seconds = 0;
  std::vector<double> ok_ms;
  std::map<std::string, uint64_t> statuses; // status name -> count (OK included)
  uint64_t sent = 0;
};


// Async unary calls; completions recorded; wait_all() blocks until every call has answered.
class call_tracker {
public:
  explicit call_tracker(ev1::Embedder::Stub& stub) : stub_(stub) {}
  void send(ev1::EmbedRequest req, std::chrono::seconds deadline,
            std::function<void()> on_done = nullptr) {
    auto c = std::make_shared<call>();
    c->req = std::move(req);
    c->ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    c->sent = clock_type::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++outstanding_;
      ++r_.sent;
    }
    stub_.async()->Embed(&c->ctx, &c->req, &c->resp, [this, c, on_done](grpc::Status st) {
      double ms = seconds_since(c->sent) * 1e3;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++r_.statuses[embed::edge::status_name(st.error_code())];
        if (st.ok())
          r_.ok_ms.push_back(ms);
        else if (first_error_.empty() && st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED)
          first_error_ = st.error_message();
        if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && exhausted_msg_.empty())
          exhausted_msg_ = st.error_message();
      }
      // The follow-up call is sent before this one stops counting, so that wait_all() cannot see
      // zero outstanding (and the tracker go away) while a chain is still running.
      if (on_done)
        on_done();
      std::lock_guard<std::mutex> lock(mu_);
      --outstanding_;
      cv_.notify_all();
    });
  }
  uint64_t outstanding() {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_;
  }
  phase_result wait_all() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return outstanding_ == 0; });
    return r_;
  }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }
  std::string exhausted_message() {
    std::lock_guard<std::mutex> lock(mu_);
    return exhausted_msg_;
  }

private:
  struct call {
    grpc::ClientContext ctx;
    ev1::EmbedRequest req;
    ev1::EmbedResponse resp;
    clock_type::time_point sent;
  };
  ev1::Embedder::Stub& stub_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t outstanding_ = 0;
  phase_result r_;
  std::string first_error_, exhausted_msg_;
};

std::string fmt(double v, int prec = 1) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

} // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  const std::string dir = temp_dir("overload");
  std::cerr << "overload_bench: binaries " << o.bin_dir << ", logs in " << dir << "\n";

  const unsigned cores = std::thread::hardware_concurrency();
  const bool pin = o.pin && cores >= 2;
  std::vector<std::string> worker_prefix, gateway_prefix;
  if (pin) {
    const std::string last = std::to_string(cores - 1), rest = "0-" + std::to_string(cores - 2);
    worker_prefix = {"/usr/bin/taskset", "-c", last};
    gateway_prefix = {"/usr/bin/taskset", "-c", rest};
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned c = 0; c + 1 < cores; ++c)
      CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
  }
  auto prefixed = [](std::vector<std::string> prefix, std::vector<std::string> argv) {
    prefix.insert(prefix.end(), argv.begin(), argv.end());
    return prefix;
  };
  const uint16_t wport = free_port(), gport = free_port();
  const std::string waddr = "127.0.0.1:" + std::to_string(wport);
  const std::string gaddr = "127.0.0.1:" + std::to_string(gport);
  child_process worker("gpu-worker",
                       prefixed(worker_prefix,
                                {o.bin_dir + "/gpu-worker", "serve", "--listen", waddr,
                                 "--metrics-listen", "127.0.0.1:" + std::to_string(free_port()),
                                 "--log-level", "warn"}),
                       dir + "/gpu-worker.log");
  if (!wait_serving(waddr, worker, std::chrono::seconds(180))) {
    std::cerr << "overload_bench: gpu-worker not SERVING:\n" << worker.log_tail() << "\n";
    return 1;
  }
  child_process gateway("embedd",
                        prefixed(gateway_prefix,
                                 {o.bin_dir + "/embedd", "--workers", waddr, "--listen", gaddr,
                                  "--metrics-listen", "127.0.0.1:" + std::to_string(free_port()),
                                  "--max-in-flight", std::to_string(o.max_in_flight),
                                  "--log-level", "warn"}),
                        dir + "/embedd.log");
  if (!wait_serving(gaddr, gateway, std::chrono::seconds(120))) {
    std::cerr << "overload_bench: embedd not SERVING:\n" << gateway.log_tail() << "\n";
    return 1;
  }
  auto stub = ev1::Embedder::NewStub(grpc::CreateChannel(gaddr, grpc::InsecureChannelCredentials()));

  // Warm-up (first forwards, connections, allocator).
  {
    call_tracker t(*stub);
    for (int i = 0; i < 50; ++i)
      t.send(unique_request("warm", i), std::chrono::seconds(60));
    t.wait_all();
  }

  // 1. Unloaded: one at a time.
  phase_result unloaded;
  {
    call_tracker t(*stub);
    for (int i = 0; i < o.unloaded_n; ++i) {
      t.send(unique_request("unloaded", i), std::chrono::seconds(60));
      t.wait_all();
    }
    unloaded = t.wait_all();
  }
  if (unloaded.ok_ms.size() != static_cast<size_t>(o.unloaded_n)) {
    std::cerr << "overload_bench: unloaded calls failed\n";
    return 1;
  }
  const double unloaded_p50 = percentile(unloaded.ok_ms, 50);
  const double unloaded_p99 = percentile(unloaded.ok_ms, 99);

  rss_sampler gw_rss(gateway.pid()), wk_rss(worker.pid());

  // 2. Capacity: exactly M in flight, each completion sends the next.
  phase_result capacity;
  double capacity_rps = 0;
  long steady_rss = 0;
  {
    call_tracker t(*stub);
    std::atomic<uint64_t> next{0};
    auto until = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                          std::chrono::duration<double>(o.capacity_s));
    std::function<void()> again;
    again = [&] {
      if (clock_type::now() < until)
        t.send(unique_request("capacity", next++), std::chrono::seconds(60), again);
    };
    gw_rss.reset();
    auto start = clock_type::now();
    for (int i = 0; i < o.max_in_flight; ++i)
      t.send(unique_request("capacity", next++), std::chrono::seconds(60), again);
    capacity = t.wait_all();
    capacity.seconds = seconds_since(start);
    capacity_rps = static_cast<double>(capacity.ok_ms.size()) / capacity.seconds;
    steady_rss = gw_rss.max();
  }
  if (capacity.ok_ms.size() != capacity.sent) {
    std::cerr << "overload_bench: calls failed at capacity (" << capacity.sent - capacity.ok_ms.size()
              << " of " << capacity.sent << ")\n";
    return 1;
  }

  // 3. Overload: an open loop at factor x capacity.
  const double offered_rps = capacity_rps * o.factor;
  phase_result overload;
  std::string exhausted_message, first_error;
  {
    call_tracker t(*stub);
    gw_rss.reset();
    wk_rss.reset();
    auto start = clock_type::now();
    auto period = std::chrono::duration<double>(1.0 / offered_rps);
    uint64_t i = 0;
    while (seconds_since(start) < o.overload_s) {
      // Send what is due by now (bursts catch up when the loop falls behind).
      auto due = static_cast<uint64_t>(seconds_since(start) / period.count());
      for (; i < due; ++i)
        t.send(unique_request("overload", i), std::chrono::seconds(30));
      std::this_thread::sleep_until(start + std::chrono::duration_cast<clock_type::duration>(
                                                period * static_cast<double>(i + 1)));
    }
    overload = t.wait_all();
    overload.seconds = seconds_since(start);
    exhausted_message = t.exhausted_message();
    first_error = t.first_error();
  }
  const long peak_rss = gw_rss.max(), worker_peak = wk_rss.max();
  const double admitted_p50 = percentile(overload.ok_ms, 50);
  const double admitted_p99 = percentile(overload.ok_ms, 99);
  const double p99_ratio = admitted_p99 / unloaded_p99;
  const double rss_ratio = static_cast<double>(peak_rss) / static_cast<double>(steady_rss);

  std::printf("overload_bench (embedd --max-in-flight %d, built-in model on CPU, %u cores, %s)\n",
              o.max_in_flight, cores,
              pin ? "worker pinned to the last core, gateway + load generator to the others"
                  : "nothing pinned");
  std::printf("  unloaded       : %d calls one at a time: p50 %s ms, p99 %s ms\n", o.unloaded_n,
              fmt(unloaded_p50, 2).c_str(), fmt(unloaded_p99, 2).c_str());
  std::printf("  capacity       : %s req/s with %d in flight (%zu calls in %s s), p50 %s ms, p99 "
              "%s ms; gateway RSS %ld KiB (steady state)\n",
              fmt(capacity_rps).c_str(), o.max_in_flight, capacity.ok_ms.size(),
              fmt(capacity.seconds).c_str(), fmt(percentile(capacity.ok_ms, 50), 2).c_str(),
              fmt(percentile(capacity.ok_ms, 99), 2).c_str(), steady_rss);
  std::printf("  overload       : offered %s req/s (%sx) for %s s: %llu sent\n",
              fmt(offered_rps).c_str(), fmt(o.factor, 0).c_str(), fmt(o.overload_s, 0).c_str(),
              static_cast<unsigned long long>(overload.sent));
  for (auto& [name, n] : overload.statuses)
    std::printf("    %-20s %llu (%s%%)\n", name.c_str(), static_cast<unsigned long long>(n),
                fmt(100.0 * static_cast<double>(n) / static_cast<double>(overload.sent)).c_str());
  if (!exhausted_message.empty())
    std::printf("    RESOURCE_EXHAUSTED says: %s\n", exhausted_message.c_str());
  if (!first_error.empty())
    std::printf("    first other error: %s\n", first_error.c_str());
  std::printf("  admitted       : %s req/s answered OK, p50 %s ms, p99 %s ms\n",
              fmt(static_cast<double>(overload.ok_ms.size()) / overload.seconds).c_str(),
              fmt(admitted_p50, 2).c_str(), fmt(admitted_p99, 2).c_str());
  std::printf("  p99 ratio      : %s x the unloaded p99 (target <= 3): %s\n",
              fmt(p99_ratio, 2).c_str(), p99_ratio <= 3 ? "met" : "MISSED");
  std::printf("  gateway RSS    : peak %ld KiB = %s x steady state (target <= 1.5): %s\n", peak_rss,
              fmt(rss_ratio, 2).c_str(), rss_ratio <= 1.5 ? "met" : "MISSED");
  std::printf("  worker RSS     : peak %ld KiB during the overload\n", worker_peak);
  std::fflush(stdout);
  const int gexit = gateway.stop(), wexit = worker.stop();
  std::cerr << "overload_bench: embedd exit " << gexit << ", gpu-worker exit " << wexit << "\n";
  if (!o.keep)
    std::filesystem::remove_all(dir);
  return 0;
}
