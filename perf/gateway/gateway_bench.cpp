// Gateway overhead, measured against baselines in the same run:
//  (a) cache-hit Embed throughput and latency of the real embedd against a bare gRPC echo
//      Embedder that answers the same EmbedResponse (the gateway's own cache-hit answer), same
//      closed-loop load (C calls in flight on one channel, N requests of 1 short text);
//  (b) the latency the gateway adds on the miss path: for never-seen texts, the direct worker
//      Embed of the gateway's token ids against the gateway Embed of the text, one call at a time,
//      alternating which goes first; p50/p99 of both and of the per-text difference.
// Starts the real gpu-worker (built-in model) and embedd on free loopback ports. See README.md.
#include "embedding/v1/embedding.grpc.pb.h"
#include "perf/gateway/echo_server.hpp"
#include "perf/worker/bench_process.hpp"
#include "worker/v1/worker.grpc.pb.h"

#include <grpcpp/grpcpp.h>

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
  int rounds = 3;          // each round: echo and gateway runs (order alternates)
  int hit_texts = 64;      // distinct cached texts the hit load cycles through
  int miss_texts = 300;    // never-seen texts for the miss path
  bool echo_in_process = false;
  bool keep = false;
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "gateway_bench: " << error << "\n"
            << "usage: gateway_bench [--bin-dir DIR (gpu-worker, embedd)] [--clients C (8)]\n"
               "  [--requests N (10000)] [--warm-requests N (500)] [--rounds R (3)]\n"
               "  [--hit-texts N (64)] [--miss-texts N (300)] [--echo-in-process] [--keep]\n";
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
    else if (a == "--hit-texts")
      o.hit_texts = number();
    else if (a == "--miss-texts")
      o.miss_texts = number();
    else if (a == "--echo-in-process")
      o.echo_in_process = true;
    else if (a == "--keep")
      o.keep = true;
    else
      usage("unknown option " + a);
  }
  if (o.clients < 1 || o.requests < 1 || o.warm_requests < 0 || o.rounds < 1 ||
      o.hit_texts < 1 || o.miss_texts < 2)
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
  child_process gateway("embedd",
                        {o.bin_dir + "/embedd", "--workers", waddr, "--listen", gaddr,
                         "--metrics-listen", "127.0.0.1:" + std::to_string(gmetrics),
                         "--log-level", "warn"},
                        dir + "/embedd.log");
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
    echo_proc = std::make_unique<child_process>(
        "echo", std::vector<std::string>{self_exe(), "--serve-echo", "127.0.0.1:0", resp_file, ready},
        dir + "/echo.log");
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
      closed_loop(stub, hit_reqs, o.clients, o.warm_requests);
      auto r = closed_loop(stub, hit_reqs, o.clients, o.requests);
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
