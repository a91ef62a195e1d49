// Gateway overhead, measured against baselines in the same run:
//  (a) cache-hit Embed throughput and latency of the real embedd against a bare gRPC echo
//      Embedder that answers the same EmbedResponse (the gateway's own cache-hit answer), same
//      closed-loop load (C calls in flight on one channel, N requests of 1 short text);
//  (b) the latency the gateway adds on the miss path: for never-seen texts, the direct worker
//      Embed of the gateway's token ids against the gateway Embed of the text, one call at a time,
//      alternating which goes first; p50/p99 of both and of the per-text difference.
//  --inspector-overhead instead: the same cache-hit closed loop against the same gateway, in
//      alternating pairs of runs without any inspector watcher and with one inspect.v1.Inspector
//      Watch stream (100 ms) read continuously by a background thread.
// Starts the real gpu-worker (built-in model) and embedd on free loopback ports. See README.md.
#include "embedding/v1/embedding.grpc.pb.h"
#include "inspect/v1/inspect.grpc.pb.h"
#include "perf/gateway/echo_server.hpp"
#include "perf/worker/bench_process.hpp"
#include "worker/v1/worker.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef EMBED_BENCH_BIN_DIR
#define EMBED_BENCH_BIN_DIR ""
#endif
#ifndef EMBED_SOURCE_DIR
#define EMBED_SOURCE_DIR ""
#endif

namespace {

using namespace embed::perf;
namespace ev1 = embedding::v1;

struct options {
  std::string bin_dir;
  int clients = 8;         // calls in flight (closed loop)
  int requests = 10000;    // timed requests per run
  int warm_requests = 500; // untimed requests before each run
  std::vector<std::string> gateway_args; // --gateway-arg ARG: passed on to embedd (repeatable)
  bool pin = false; // --pin: embedd (and the echo) on CPU 1, this process and the rest on CPU 0
  int rounds = 3;          // each round: echo and gateway runs (order alternates)
  int hit_texts = 64;      // distinct cached texts the hit load cycles through
  int miss_texts = 300;    // never-seen texts for the miss path
  bool echo_in_process = false;
  bool keep = false;
  bool inspector_overhead = false; // only the inspector-overhead pairs (no echo, no miss path)
  int pairs = 6;                   // inspector-overhead pairs (without / with a watcher)
  int watch_interval_ms = 100;     // the watcher's WatchRequest.interval_ms
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "gateway_bench: " << error << "\n"
            << "usage: gateway_bench [--bin-dir DIR (gpu-worker, embedd)] [--clients C (8)]\n"
               "  [--requests N (10000)] [--warm-requests N (500)] [--rounds R (3)]\n"
               "  [--hit-texts N (64)] [--miss-texts N (300)] [--echo-in-process] [--keep]\n"
               "  [--gateway-arg ARG (passed to embedd; repeatable)] [--pin]\n"
               "  [--inspector-overhead [--pairs P (6)] [--watch-interval-ms MS (100)]]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto number = [&]() -> int {
      if (i + 1 >= argc)
        usage("missing value for " + a);
      std::string v = argv[++i];
      try {
        return std::stoi(v);
      } catch (...) {
        usage("not a number for " + a + ": " + v);
      }
    };
    if (a == "--bin-dir") {
      if (i + 1 >= argc)
        usage("missing value for " + a);
      o.bin_dir = argv[++i];
    } else if (a == "--clients")
      o.clients = number();
    else if (a == "--requests")
      o.requests = number();
    else if (a == "--warm-requests")
      o.warm_requests = number();
    else if (a == "--rounds")
      o.rounds = number();
    else if (a == "--pin")
      o.pin = true;
    else if (a == "--gateway-arg" && i + 1 < argc)
      o.gateway_args.push_back(argv[++i]);
    else if (a == "--hit-texts")
      o.hit_texts = number();
    else if (a == "--miss-texts")
      o.miss_texts = number();
    else if (a == "--echo-in-process")
      o.echo_in_process = true;
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--inspector-overhead")
      o.inspector_overhead = true;
    else if (a == "--pairs")
      o.pairs = number();
    else if (a == "--watch-interval-ms")
      o.watch_interval_ms = number();
    else
      usage("unknown option " + a);
  }
  if (o.clients < 1 || o.requests < 1 || o.warm_requests < 0 || o.rounds < 1 ||
      o.hit_texts < 1 || o.miss_texts < 2 || o.pairs < 1 || o.watch_interval_ms < 1)
    usage("every count must be positive (miss-texts >= 2)");
  if (o.bin_dir.empty()) {
    for (std::string d :
         {std::string(EMBED_BENCH_BIN_DIR), std::string(EMBED_SOURCE_DIR) + "/build/bin"})
      if (!d.empty() && file_exists(d + "/gpu-worker") && file_exists(d + "/embedd")) {
        o.bin_dir = d;
        break;
      }
    if (o.bin_dir.empty())
      usage("no gpu-worker and embedd found; pass --bin-dir");
  }
  return o;
}

std::string fmt(double v, int prec = 1) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(prec) << v;
  return s.str();
}

struct load_result {
  double seconds = 0;
  std::vector<double> latencies_ms;
  uint64_t errors = 0, cached = 0;
  std::string first_error;
  double rps() const { return seconds > 0 ? double(latencies_ms.size()) / seconds : 0; }
};

// Closed loop: `clients` calls in flight on one channel, each completion sends the next request,
// `n` requests in all cycling through `reqs`. Latency per call; throughput first send to last answer.
load_result closed_loop(ev1::Embedder::Stub& stub, const std::vector<ev1::EmbedRequest>& reqs,
                        int clients, int n) {
  struct call {
    grpc::ClientContext ctx;
    ev1::EmbedResponse resp;
    clock_type::time_point sent;
  };
  load_result r;
  if (n <= 0)
    return r;
  std::vector<std::unique_ptr<call>> calls(static_cast<size_t>(n));
  std::vector<double> lat(static_cast<size_t>(n), 0.0);
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> next{0};
  int done = 0;
  std::function<void(int)> issue = [&](int i) {
    calls[size_t(i)] = std::make_unique<call>();
    auto* c = calls[size_t(i)].get();
    c->sent = clock_type::now();
    stub.async()->Embed(&c->ctx, &reqs[size_t(i) % reqs.size()], &c->resp,
                        [&, i, c](grpc::Status st) {
                          lat[size_t(i)] = seconds_since(c->sent) * 1e3;
                          int j = next.fetch_add(1);
                          if (j < n)
                            issue(j);
                          std::lock_guard<std::mutex> lock(mu);
                          if (!st.ok()) {
                            if (r.errors++ == 0)
                              r.first_error = std::to_string(int(st.error_code())) + " " +
                                              st.error_message();
                          } else if (c->resp.embeddings_size() == 1 &&
                                     c->resp.embeddings(0).cached()) {
                            ++r.cached;
                          }
                          if (++done == n)
                            cv.notify_all();
                        });
  };
  auto start = clock_type::now();
  for (int i = 0; i < std::min(clients, n); ++i)
    issue(next.fetch_add(1));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == n; });
  }
  r.seconds = seconds_since(start);
  r.latencies_ms = std::move(lat);
  calls.clear();
  return r;
}

ev1::EmbedRequest embed_request(const std::string& text) {
  ev1::EmbedRequest req;
  req.add_inputs(text);
  return req;
}

// Short texts of a few words, like a search query; `tag` keeps sets apart.
std::string short_text(const std::string& tag, int i) {
  static const char* words[] = {"vector", "search",  "query",  "protein", "river",  "market",
                                "engine", "cluster", "signal", "garden",  "lattice", "harbor"};
  std::ostringstream s;
  s << tag << " " << i;
  for (int k = 0; k < 6; ++k)
    s << " " << words[(i * 7 + k * 5 + k * k) % 12];
  return s.str();
}

bool wait_file(const std::string& path, child_process& proc, std::chrono::seconds timeout) {
  auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    if (std::filesystem::exists(path))
      return true;
    if (!proc.running())
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// `gateway_bench --watch ADDR INTERVAL_MS OUT`: holds one inspect.v1.Inspector Watch stream open
// and appends "<steady_clock ns> <actors>" to OUT for every snapshot, until killed; a line
// "end <code> <message>" if the stream ends by itself. A process of its own, as `embedctl top`
// is: a reader thread inside the load generator takes part in that process's gRPC polling and
// slowed the load by ~14 % even when no snapshot arrived (measured: a 1-hour interval).
int run_watch(const std::string& addr, int interval_ms, const std::string& out_path) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = inspect::v1::Inspector::NewStub(
      grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args));
  inspect::v1::WatchRequest req;
  req.set_interval_ms(uint32_t(interval_ms));
  grpc::ClientContext ctx;
  auto reader = stub->Watch(&ctx, req);
  std::ofstream out(out_path, std::ios::app);
  inspect::v1::Snapshot snap;
  while (reader->Read(&snap)) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        clock_type::now().time_since_epoch())
                        .count();
    out << ns << " " << snap.actors_size() << std::endl;
  }
  auto st = reader->Finish();
  out << "end " << int(st.error_code()) << " " << st.error_message() << std::endl;
  return st.ok() ? 0 : 1;
}

std::string self_exe();

// The watcher process of one "with" run and what it wrote.
class inspector_watcher {
public:
  inspector_watcher(const std::string& addr, int interval_ms, const std::string& dir, int run)
      : path_(dir + "/watch-" + std::to_string(run) + ".txt"),
        proc_("watch",
              {self_exe(), "--watch", addr, std::to_string(interval_ms), path_},
              dir + "/watch-" + std::to_string(run) + ".log") {}
  ~inspector_watcher() { stop(); }
  // Waits for the first snapshot (the stream is up); false on timeout or an ended stream.
  bool wait_first(std::chrono::seconds timeout) {
    auto deadline = clock_type::now() + timeout;
    while (clock_type::now() < deadline) {
      read();
      if (!end_.empty())
        return false;
      if (!times_.empty())
        return true;
      if (!proc_.running())
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  // Snapshots received between t0 and t1 (clock_type, shared by both processes: CLOCK_MONOTONIC).
  uint64_t snapshots_between(clock_type::time_point t0, clock_type::time_point t1) {
    read();
    uint64_t n = 0;
    for (auto t : times_)
      n += t >= t0 && t <= t1;
    return n;
  }
  uint64_t snapshots() {
    read();
    return times_.size();
  }
  int actors() const { return actors_; }
  // Ends the watcher; what the stream said if it ended by itself ("" if it was still open).
  std::string stop() {
    proc_.stop(std::chrono::seconds(5));
    read();
    return end_;
  }

private:
  void read() {
    std::ifstream in(path_);
    std::string line;
    times_.clear();
    while (std::getline(in, line)) {
      if (line.rfind("end ", 0) == 0) {
        end_ = line;
        continue;
      }
      std::istringstream ls(line);
      int64_t ns = 0;
      int actors = 0;
      if (ls >> ns >> actors) {
        times_.push_back(clock_type::time_point(std::chrono::nanoseconds(ns)));
        actors_ = actors;
      }
    }
  }

  std::string path_;
  child_process proc_;
  std::vector<clock_type::time_point> times_;
  int actors_ = 0;
  std::string end_;
};

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The inspector's overhead on the cache-hit load: `pairs` pairs of runs against the same gateway,
// one without a watcher and one with a Watch stream at `watch_interval_ms`, the order alternating
// (A B, B A, A B, ...) so linear drift cancels over two pairs. Prints the tables and a JSON line.
int inspector_overhead(const options& o, const std::string& gaddr, ev1::Embedder::Stub& gstub,
                       const std::vector<ev1::EmbedRequest>& hit_reqs, double load_start,
                       const std::string& dir) {
  struct run {
    int pair;
    bool watched;
    load_result r;
    uint64_t snapshots = 0; // received during the timed window
    double seconds_watched = 0;
  };
  std::vector<run> runs;
  uint64_t total_snapshots = 0;
  int actors_seen = 0;
  const double load_a = load_average();
  for (int pair = 0; pair < o.pairs; ++pair) {
    for (int k = 0; k < 2; ++k) {
      const bool watched = (k == 0) == (pair % 2 == 1);
      std::unique_ptr<inspector_watcher> w;
      if (watched) {
        w = std::make_unique<inspector_watcher>(gaddr, o.watch_interval_ms, dir,
                                                int(runs.size()));
        if (!w->wait_first(std::chrono::seconds(10))) {
          std::cerr << "gateway_bench: no snapshot from Inspector/Watch within 10 s: "
                    << w->stop() << "\n";
          return 1;
        }
      }
      closed_loop(gstub, hit_reqs, o.clients, o.warm_requests);
      const auto t0 = clock_type::now();
      auto r = closed_loop(gstub, hit_reqs, o.clients, o.requests);
      const auto t1 = clock_type::now();
      const uint64_t during = w ? w->snapshots_between(t0, t1) : 0;
      if (w) {
        total_snapshots += w->snapshots();
        actors_seen = std::max(actors_seen, w->actors());
        if (auto end = w->stop(); !end.empty()) {
          std::cerr << "gateway_bench: the Watch stream ended during the run: " << end << "\n";
          return 1;
        }
      }
      if (r.errors) {
        std::cerr << "gateway_bench: " << r.errors << " gateway calls failed, first: "
                  << r.first_error << "\n";
        return 1;
      }
      if (r.cached != r.latencies_ms.size()) {
        std::cerr << "gateway_bench: " << r.latencies_ms.size() - r.cached
                  << " answers were not cache hits\n";
        return 1;
      }
      std::cerr << "gateway_bench: pair " << pair << (watched ? " with watcher " : " without    ")
                << fmt(r.rps(), 0) << " req/s" << (watched ? ", " + std::to_string(during) +
                                                               " snapshots" : "")
                << "\n";
      const double secs = r.seconds;
      runs.push_back({pair, watched, std::move(r), during, watched ? secs : 0});
    }
  }
  const double load_end = load_average();

  double n[2] = {0, 0}, s[2] = {0, 0};
  std::vector<double> lat[2];
  uint64_t snaps = 0;
  double watched_s = 0;
  for (auto& r : runs) {
    n[r.watched] += double(r.r.latencies_ms.size());
    s[r.watched] += r.r.seconds;
    lat[r.watched].insert(lat[r.watched].end(), r.r.latencies_ms.begin(), r.r.latencies_ms.end());
    snaps += r.snapshots;
    watched_s += r.seconds_watched;
  }
  std::vector<double> pair_ratio(size_t(o.pairs), 0.0);
  {
    std::vector<double> without(size_t(o.pairs)), with(size_t(o.pairs));
    for (auto& r : runs)
      (r.watched ? with : without)[size_t(r.pair)] = r.r.rps();
    for (int p = 0; p < o.pairs; ++p)
      pair_ratio[size_t(p)] = with[size_t(p)] / without[size_t(p)];
  }
  const double rps0 = n[0] / s[0], rps1 = n[1] / s[1], ratio = rps1 / rps0;
  const double med = median(pair_ratio);
  const double lo = *std::min_element(pair_ratio.begin(), pair_ratio.end());
  const double hi = *std::max_element(pair_ratio.begin(), pair_ratio.end());

  std::cout << "\ngateway_bench: inspector overhead on cache hits: " << o.clients
            << " calls in flight on one channel, " << o.requests << " requests of 1 text per run (+"
            << o.warm_requests << " untimed), " << o.pairs
            << " pairs (without / with one Inspector Watch stream at " << o.watch_interval_ms
            << " ms on its own connection), order alternating; load " << fmt(load_start, 2)
            << " at start, " << fmt(load_a, 2) << " -> " << fmt(load_end, 2) << "\n\n";
  std::cout << "| pair | run | req/s | p50 ms | p99 ms | snapshots |\n|---:|---|---:|---:|---:|---:|\n";
  for (auto& r : runs)
    std::cout << "| " << r.pair << " | " << (r.watched ? "with watcher" : "without") << " | "
              << fmt(r.r.rps(), 0) << " | " << fmt(percentile(r.r.latencies_ms, 50), 3) << " | "
              << fmt(percentile(r.r.latencies_ms, 99), 3) << " | "
              << (r.watched ? std::to_string(r.snapshots) : "-") << " |\n";
  std::cout << "| | **without, all pairs** | " << fmt(rps0, 0) << " | "
            << fmt(percentile(lat[0], 50), 3) << " | " << fmt(percentile(lat[0], 99), 3)
            << " | - |\n";
  std::cout << "| | **with watcher, all pairs** | " << fmt(rps1, 0) << " | "
            << fmt(percentile(lat[1], 50), 3) << " | " << fmt(percentile(lat[1], 99), 3) << " | "
            << snaps << " |\n";
  std::cout << "\nper-pair ratios with/without:";
  for (auto x : pair_ratio)
    std::cout << " " << fmt(x, 3);
  std::cout << "\nmedian of pairs " << fmt(med, 3) << " (min " << fmt(lo, 3) << ", max "
            << fmt(hi, 3) << ", spread " << fmt(hi - lo, 3) << "); all runs pooled " << fmt(ratio, 3)
            << "\nsnapshots received during the timed windows: " << snaps << " in "
            << fmt(watched_s, 2) << " s (" << fmt(watched_s * 1000.0 / o.watch_interval_ms, 0)
            << " expected at " << o.watch_interval_ms << " ms), " << total_snapshots
            << " in all; " << actors_seen << " actors per snapshot\n";
  // The verdict: a 95 % confidence interval of the geometric mean of the pair ratios (Student's t
  // on log ratios; the pairs alternate order, so linear drift cancels). Met when the whole
  // interval is >= 0.97, NOT met when it is entirely below, otherwise not resolved (more pairs
  // narrow it). Single pairs on this 2-core machine spread far more than 3 %.
  double mean_log = 0, var_log = 0;
  for (auto x : pair_ratio)
    mean_log += std::log(x);
  mean_log /= double(pair_ratio.size());
  for (auto x : pair_ratio)
    var_log += (std::log(x) - mean_log) * (std::log(x) - mean_log);
  const size_t dof = pair_ratio.size() > 1 ? pair_ratio.size() - 1 : 1;
  var_log /= double(dof);
  static const double t975[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
                                2.228,  2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
                                2.093,  2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
                                2.048,  2.045, 2.042};
  const double t = dof <= 30 ? t975[dof - 1] : 1.96;
  const double half = t * std::sqrt(var_log / double(pair_ratio.size()));
  const double gmean = std::exp(mean_log), ci_lo = std::exp(mean_log - half),
               ci_hi = std::exp(mean_log + half);
  std::cout << "geometric mean of pair ratios " << fmt(gmean, 3) << ", 95% confidence interval "
            << fmt(ci_lo, 3) << " to " << fmt(ci_hi, 3) << " (" << pair_ratio.size()
            << " pairs)\n";
  std::string verdict;
  if (pair_ratio.size() < 2)
    verdict = "not resolved (one pair gives no interval; use --pairs >= 2)";
  else if (ci_lo >= 0.97)
    verdict = "met (the 95% interval " + fmt(ci_lo, 3) + " to " + fmt(ci_hi, 3) + " is >= 0.97)";
  else if (ci_hi < 0.97)
    verdict = "NOT met (the 95% interval " + fmt(ci_lo, 3) + " to " + fmt(ci_hi, 3) +
              " is below 0.97)";
  else
    verdict = "not resolved: the 95% interval " + fmt(ci_lo, 3) + " to " + fmt(ci_hi, 3) +
              " contains 0.97 (more --pairs narrow it)";
  std::cout << "target: with watcher >= 0.97 x without: " << verdict << "\n";
  std::cout << "\n{\"mode\": \"inspector_overhead\", \"clients\": " << o.clients
            << ", \"requests\": " << o.requests << ", \"pairs\": " << o.pairs
            << ", \"watch_interval_ms\": " << o.watch_interval_ms
            << ", \"without_rps\": " << fmt(rps0, 0) << ", \"with_rps\": " << fmt(rps1, 0)
            << ", \"without_p50_ms\": " << fmt(percentile(lat[0], 50), 3)
            << ", \"without_p99_ms\": " << fmt(percentile(lat[0], 99), 3)
            << ", \"with_p50_ms\": " << fmt(percentile(lat[1], 50), 3)
            << ", \"with_p99_ms\": " << fmt(percentile(lat[1], 99), 3)
            << ", \"pooled_ratio\": " << fmt(ratio, 3) << ", \"median_pair_ratio\": " << fmt(med, 3)
            << ", \"min_pair_ratio\": " << fmt(lo, 3) << ", \"max_pair_ratio\": " << fmt(hi, 3)
            << ", \"gmean_pair_ratio\": " << fmt(gmean, 3) << ", \"ci95_low\": " << fmt(ci_lo, 3)
            << ", \"ci95_high\": " << fmt(ci_hi, 3)
            << ", \"snapshots_timed\": " << snaps << ", \"load_start\": " << fmt(load_start, 2)
            << ", \"load_end\": " << fmt(load_end, 2) << "}\n";
  return 0;
}

std::string self_exe() {
  char buf[PATH_MAX];
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return "/proc/self/exe";
  return std::string(buf, size_t(n));
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--serve-echo")
    return run_echo_server(argv[2], argv[3], argv[4]);
  if (argc == 5 && std::string(argv[1]) == "--watch")
    return run_watch(argv[2], std::atoi(argv[3]), argv[4]);
  options o = parse(argc, argv);
  const std::string dir = temp_dir("gateway-bench");
  const double load_start = load_average();
  std::cerr << "gateway_bench: load " << fmt(load_start, 2) << ", binaries " << o.bin_dir
            << ", logs in " << dir << "\n";

  // The real processes: the worker with its built-in model, the gateway in front of it.
  const uint16_t wport = free_port(), wmetrics = free_port();
  const std::string waddr = "127.0.0.1:" + std::to_string(wport);
  child_process worker("gpu-worker",
                       {o.bin_dir + "/gpu-worker", "serve", "--listen", waddr, "--metrics-listen",
                        "127.0.0.1:" + std::to_string(wmetrics), "--log-level", "warn"},
                       dir + "/gpu-worker.log");
  if (!wait_serving(waddr, worker, std::chrono::seconds(180))) {
    std::cerr << "gateway_bench: gpu-worker not SERVING:\n" << worker.log_tail() << "\n";
    return 1;
  }
  const uint16_t gport = free_port(), gmetrics = free_port();
  const std::string gaddr = "127.0.0.1:" + std::to_string(gport);
  if (o.pin) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
      std::cerr << "gateway_bench: --pin: cannot pin to CPU 0: " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  const std::vector<std::string> on_cpu1 =
      o.pin ? std::vector<std::string>{"/usr/bin/taskset", "-c", "1"} : std::vector<std::string>{};
  std::vector<std::string> gargv = on_cpu1;
  std::vector<std::string> gargs{o.bin_dir + "/embedd", "--workers", waddr, "--listen", gaddr,
                                 "--metrics-listen", "127.0.0.1:" + std::to_string(gmetrics),
                                 "--log-level", "warn"};
  gargv.insert(gargv.end(), gargs.begin(), gargs.end());
  gargv.insert(gargv.end(), o.gateway_args.begin(), o.gateway_args.end());
  child_process gateway("embedd", gargv, dir + "/embedd.log");
  if (!wait_serving(gaddr, gateway, std::chrono::seconds(120))) {
    std::cerr << "gateway_bench: embedd not SERVING:\n" << gateway.log_tail() << "\n";
    return 1;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto gstub = ev1::Embedder::NewStub(
      grpc::CreateCustomChannel(gaddr, grpc::InsecureChannelCredentials(), args));
  auto wstub = worker::v1::GpuWorker::NewStub(
      grpc::CreateCustomChannel(waddr, grpc::InsecureChannelCredentials(), args));

  // Warm the cache with the hit texts (each one a miss now, computed and stored).
  std::vector<ev1::EmbedRequest> hit_reqs;
  for (int i = 0; i < o.hit_texts; ++i)
    hit_reqs.push_back(embed_request(short_text("cached text", i)));
  for (auto& req : hit_reqs) {
    grpc::ClientContext ctx;
    ev1::EmbedResponse resp;
    auto st = gstub->Embed(&ctx, req, &resp);
    if (!st.ok()) {
      std::cerr << "gateway_bench: warming Embed failed: " << st.error_message() << "\n";
      return 1;
    }
  }
  // The echo's answer: the gateway's own answer to a cache hit.
  ev1::EmbedResponse hit_response;
  {
    grpc::ClientContext ctx;
    auto st = gstub->Embed(&ctx, hit_reqs.front(), &hit_response);
    if (!st.ok() || hit_response.embeddings_size() != 1 || !hit_response.embeddings(0).cached()) {
      std::cerr << "gateway_bench: the warmed text is not a cache hit (" << st.error_message()
                << ")\n";
      return 1;
    }
  }
  const int dimension = hit_response.embeddings(0).values_size();

  if (o.inspector_overhead) {
    const int rc = inspector_overhead(o, gaddr, *gstub, hit_reqs, load_start, dir);
    const int gateway_exit = gateway.stop(), worker_exit = worker.stop();
    std::cerr << "gateway_bench: embedd exit " << gateway_exit << ", gpu-worker exit "
              << worker_exit << "\n";
    if (!o.keep)
      std::filesystem::remove_all(dir);
    return rc;
  }

  // The echo server: its own process by default (as the gateway is), or in this one.
  std::unique_ptr<child_process> echo_proc;
  std::unique_ptr<echo_embedder> echo_service;
  std::unique_ptr<grpc::Server> echo_server;
  std::string eaddr;
  if (o.echo_in_process) {
    echo_service = std::make_unique<echo_embedder>(hit_response);
    int port = 0;
    echo_server = start_echo_server("127.0.0.1:0", *echo_service, &port);
    if (!echo_server) {
      std::cerr << "gateway_bench: cannot start the echo server\n";
      return 1;
    }
    eaddr = "127.0.0.1:" + std::to_string(port);
  } else {
    const std::string resp_file = dir + "/echo-response.bin", ready = dir + "/echo-ready";
    {
      std::ofstream out(resp_file, std::ios::binary);
      hit_response.SerializeToOstream(&out);
    }
    std::vector<std::string> eargv = on_cpu1;
    for (auto a : {self_exe(), std::string("--serve-echo"), std::string("127.0.0.1:0"), resp_file,
                   ready})
      eargv.push_back(a);
    echo_proc = std::make_unique<child_process>("echo", eargv, dir + "/echo.log");
    if (!wait_file(ready, *echo_proc, std::chrono::seconds(30))) {
      std::cerr << "gateway_bench: echo server did not start:\n" << echo_proc->log_tail() << "\n";
      return 1;
    }
    int port = 0;
    std::ifstream(ready) >> port;
    eaddr = "127.0.0.1:" + std::to_string(port);
  }
  auto estub = ev1::Embedder::NewStub(
      grpc::CreateCustomChannel(eaddr, grpc::InsecureChannelCredentials(), args));

  // (a) the same closed loop against the echo and the gateway, alternating which runs first.
  struct run {
    std::string target;
    int round;
    load_result r;
  };
  std::vector<run> runs;
  const double load_a = load_average();
  for (int round = 0; round < o.rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      const bool gw = (k == 0) == (round % 2 == 1);
      auto& stub = gw ? *gstub : *estub;
      // Each server is measured alone: the one not measured is stopped (SIGSTOP) so that its
      // idle threads take no CPU from the run (the echo in its own process only; the worker,
      // idle in both runs, keeps running).
      const pid_t paused = !echo_proc ? 0 : gw ? echo_proc->pid() : gateway.pid();
      if (paused)
        ::kill(paused, SIGSTOP);
      closed_loop(stub, hit_reqs, o.clients, o.warm_requests);
      auto r = closed_loop(stub, hit_reqs, o.clients, o.requests);
      if (paused)
        ::kill(paused, SIGCONT);
      if (r.errors) {
        std::cerr << "gateway_bench: " << r.errors << " calls to the "
                  << (gw ? "gateway" : "echo") << " failed, first: " << r.first_error << "\n";
        return 1;
      }
      std::cerr << "gateway_bench: round " << round << " " << (gw ? "gateway" : "echo") << " "
                << fmt(r.rps(), 0) << " req/s\n";
      runs.push_back({gw ? "gateway (cache hit)" : "echo server", round, std::move(r)});
    }
  }

  // (b) the miss path: token ids from the gateway's Tokenize, then direct worker vs gateway.
  const std::string nonce = std::to_string(
      std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  const int warm_miss = 10;
  std::vector<std::string> miss_texts;
  for (int i = 0; i < o.miss_texts + warm_miss; ++i)
    miss_texts.push_back(short_text("fresh " + nonce, i));
  std::vector<std::vector<uint32_t>> ids;
  for (size_t b = 0; b < miss_texts.size(); b += 128) {
    ev1::TokenizeRequest treq;
    for (size_t i = b; i < std::min(miss_texts.size(), b + 128); ++i)
      treq.add_inputs(miss_texts[i]);
    ev1::TokenizeResponse tresp;
    grpc::ClientContext ctx;
    auto st = gstub->Tokenize(&ctx, treq, &tresp);
    if (!st.ok() || tresp.tokens_size() != treq.inputs_size()) {
      std::cerr << "gateway_bench: Tokenize failed: " << st.error_message() << "\n";
      return 1;
    }
    for (auto& t : tresp.tokens())
      ids.emplace_back(t.ids().begin(), t.ids().end());
  }
  std::vector<double> direct_ms, gateway_ms, diff_ms;
  double max_vec_diff = 0;
  uint64_t miss_cached = 0;
  for (size_t i = 0; i < miss_texts.size(); ++i) {
    worker::v1::EmbedRequest wreq;
    wreq.set_pooling(worker::v1::POOLING_LAST_TOKEN);
    wreq.set_normalize(true);
    auto* s = wreq.mutable_sequences();
    s->add_offsets(0);
    for (auto id : ids[i])
      s->add_ids(id);
    s->add_offsets(uint32_t(ids[i].size()));
    auto greq = embed_request(miss_texts[i]);
    worker::v1::EmbedResponse wresp;
    ev1::EmbedResponse gresp;
    double d = 0, g = 0;
    auto call_direct = [&] {
      grpc::ClientContext ctx;
      auto t = clock_type::now();
      auto st = wstub->Embed(&ctx, wreq, &wresp);
      d = seconds_since(t) * 1e3;
      return st;
    };
    auto call_gateway = [&] {
      grpc::ClientContext ctx;
      auto t = clock_type::now();
      auto st = gstub->Embed(&ctx, greq, &gresp);
      g = seconds_since(t) * 1e3;
      return st;
    };
    grpc::Status s1, s2;
    if (i % 2 == 0) {
      s1 = call_direct();
      s2 = call_gateway();
    } else {
      s2 = call_gateway();
      s1 = call_direct();
    }
    if (!s1.ok() || !s2.ok()) {
      std::cerr << "gateway_bench: miss-path call failed: " << s1.error_message() << " / "
                << s2.error_message() << "\n";
      return 1;
    }
    if (gresp.embeddings_size() != 1 || int(wresp.vectors().size()) != dimension * 4) {
      std::cerr << "gateway_bench: miss-path answers of the wrong shape\n";
      return 1;
    }
    if (gresp.embeddings(0).cached())
      ++miss_cached;
    for (int k = 0; k < dimension; ++k) {
      float v;
      std::memcpy(&v, wresp.vectors().data() + 4 * k, 4);
      max_vec_diff = std::max(max_vec_diff, double(std::fabs(v - gresp.embeddings(0).values(k))));
    }
    if (int(i) < warm_miss)
      continue;
    direct_ms.push_back(d);
    gateway_ms.push_back(g);
    diff_ms.push_back(g - d);
  }
  // Context for (b): one bare loopback gRPC hop of this message shape (the echo, one at a time).
  std::vector<double> hop_ms;
  for (size_t i = 0; i < miss_texts.size(); ++i) {
    auto req = embed_request(miss_texts[i]);
    ev1::EmbedResponse resp;
    grpc::ClientContext ctx;
    auto t = clock_type::now();
    auto st = estub->Embed(&ctx, req, &resp);
    if (!st.ok()) {
      std::cerr << "gateway_bench: echo call failed: " << st.error_message() << "\n";
      return 1;
    }
    if (int(i) >= warm_miss)
      hop_ms.push_back(seconds_since(t) * 1e3);
  }
  const double load_end = load_average();

  const int gateway_exit = gateway.stop();
  if (echo_proc)
    echo_proc->stop();
  if (echo_server)
    echo_server->Shutdown();
  const int worker_exit = worker.stop();

  // Report.
  double echo_n = 0, echo_s = 0, gw_n = 0, gw_s = 0;
  std::vector<double> echo_lat, gw_lat;
  for (auto& r : runs) {
    const bool gw = r.target.rfind("gateway", 0) == 0;
    (gw ? gw_n : echo_n) += double(r.r.latencies_ms.size());
    (gw ? gw_s : echo_s) += r.r.seconds;
    auto& all = gw ? gw_lat : echo_lat;
    all.insert(all.end(), r.r.latencies_ms.begin(), r.r.latencies_ms.end());
  }
  uint64_t gw_cached = 0, gw_total = 0;
  for (auto& r : runs)
    if (r.target.rfind("gateway", 0) == 0) {
      gw_cached += r.r.cached;
      gw_total += r.r.latencies_ms.size();
    }
  const double echo_rps = echo_n / echo_s, gw_rps = gw_n / gw_s;
  const double ratio = gw_rps / echo_rps;

  std::cout << "\ngateway_bench: (a) cache hits: " << o.clients << " calls in flight on one channel, "
            << o.requests << " requests of 1 text per run (+" << o.warm_requests
            << " untimed), " << o.rounds << " round(s), echo "
            << (o.echo_in_process ? "in the bench process" : "in its own process")
            << ", response dimension " << dimension << ", "
            << hit_response.embeddings(0).token_count() << " tokens per text; load " << fmt(load_a, 2) << " -> "
            << fmt(load_end, 2) << "\n\n";
  std::cout << "| run | round | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|\n";
  for (auto& r : runs)
    std::cout << "| " << r.target << " | " << r.round << " | " << fmt(r.r.rps(), 0) << " | "
              << fmt(percentile(r.r.latencies_ms, 50), 3) << " | "
              << fmt(percentile(r.r.latencies_ms, 99), 3) << " |\n";
  std::cout << "| **echo server, all rounds** | | " << fmt(echo_rps, 0) << " | "
            << fmt(percentile(echo_lat, 50), 3) << " | " << fmt(percentile(echo_lat, 99), 3)
            << " |\n";
  std::cout << "| **gateway cache hit, all rounds** | | " << fmt(gw_rps, 0) << " | "
            << fmt(percentile(gw_lat, 50), 3) << " | " << fmt(percentile(gw_lat, 99), 3)
            << " |\n";
  std::cout << "\ngateway / echo throughput: " << fmt(ratio, 3) << " (target >= 0.6: "
            << (ratio >= 0.6 ? "met" : "NOT met") << "); gateway answers marked cached: "
            << gw_cached << " of " << gw_total << "\n";

  const double dp50 = percentile(diff_ms, 50), dp99 = percentile(diff_ms, 99);
  std::cout << "\ngateway_bench: (b) miss path: " << diff_ms.size()
            << " never-seen texts (+" << warm_miss << " untimed), one call at a time, order "
               "alternating; gateway answers marked cached: "
            << miss_cached << "; max |gateway - worker| vector component " << std::scientific
            << std::setprecision(2) << max_vec_diff << std::defaultfloat << "\n\n";
  std::cout << "| call | p50 ms | p99 ms | mean ms |\n|---|---:|---:|---:|\n";
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (auto x : v)
      s += x;
    return v.empty() ? 0 : s / double(v.size());
  };
  auto row = [&](const std::string& name, const std::vector<double>& v) {
    std::cout << "| " << name << " | " << fmt(percentile(v, 50), 3) << " | "
              << fmt(percentile(v, 99), 3) << " | " << fmt(mean(v), 3) << " |\n";
  };
  row("worker Embed (token ids), direct", direct_ms);
  row("gateway Embed (text, cache miss)", gateway_ms);
  row("per-text difference (gateway - direct)", diff_ms);
  row("for scale: echo Embed, one at a time (one bare gRPC hop)", hop_ms);
  std::cout << "\nadded latency p50 " << fmt(dp50, 3) << " ms (target <= 0.5 ms: "
            << (dp50 <= 0.5 ? "met" : "NOT met") << "), p99 " << fmt(dp99, 3) << " ms\n";

  std::cout << "\n{\"clients\": " << o.clients << ", \"requests\": " << o.requests
            << ", \"rounds\": " << o.rounds << ", \"echo_rps\": " << fmt(echo_rps, 0)
            << ", \"gateway_hit_rps\": " << fmt(gw_rps, 0) << ", \"hit_throughput_ratio\": "
            << fmt(ratio, 3) << ", \"echo_p50_ms\": " << fmt(percentile(echo_lat, 50), 3)
            << ", \"echo_p99_ms\": " << fmt(percentile(echo_lat, 99), 3)
            << ", \"gateway_hit_p50_ms\": " << fmt(percentile(gw_lat, 50), 3)
            << ", \"gateway_hit_p99_ms\": " << fmt(percentile(gw_lat, 99), 3)
            << ", \"miss_texts\": " << diff_ms.size()
            << ", \"direct_p50_ms\": " << fmt(percentile(direct_ms, 50), 3)
            << ", \"direct_p99_ms\": " << fmt(percentile(direct_ms, 99), 3)
            << ", \"gateway_miss_p50_ms\": " << fmt(percentile(gateway_ms, 50), 3)
            << ", \"gateway_miss_p99_ms\": " << fmt(percentile(gateway_ms, 99), 3)
            << ", \"added_p50_ms\": " << fmt(dp50, 3) << ", \"added_p99_ms\": " << fmt(dp99, 3)
            << ", \"echo_sequential_p50_ms\": " << fmt(percentile(hop_ms, 50), 3)
            << ", \"load_start\": " << fmt(load_start, 2) << ", \"load_end\": " << fmt(load_end, 2)
            << ", \"gateway_exit\": " << gateway_exit << ", \"worker_exit\": " << worker_exit
            << "}\n";
  if (!o.keep)
    std::filesystem::remove_all(dir);
  return 0;
}
