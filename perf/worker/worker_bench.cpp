// gpu-worker throughput over gRPC at saturation against the same model called in-process with the
// same batching, measured in the same run. Writes one random Qwen3 checkpoint (0.6B layer shape,
// reduced depth and vocabulary) that both sides load, starts the real `gpu-worker serve --model
// DIR`, and runs: in-process, gRPC (K concurrent callback-API calls of 1 sequence), in-process,
// gRPC (8 sequences per call), in-process. Each gRPC pass is compared with the in-process passes
// on either side of it. Prints a table and JSON. See README.md.
#include "gpu/model.hpp"
#include "perf/worker/bench_process.hpp"
#include "worker/v1/worker.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#ifndef EMBED_BENCH_BIN_DIR
#define EMBED_BENCH_BIN_DIR ""
#endif
#ifndef EMBED_SOURCE_DIR
#define EMBED_SOURCE_DIR ""
#endif

namespace {

using embed::gpu::model;
using embed::gpu::model_config;
using embed::gpu::packed_batch;
using namespace embed::perf;

struct options {
  std::string bin_dir;
  int64_t layers = 2;
  int64_t vocab = 32768;
  int64_t sequences = 64;
  int64_t min_len = 16, max_len = 256;
  uint64_t seed = 1;
  uint32_t max_batch_tokens = 2048;
  uint32_t max_batch_requests = 32;
  int64_t in_flight = 64; // sequences in flight: K requests of 1, K/8 requests of 8
  int64_t threads = -1;   // -1: the number of cores; 0: leave the environment alone
  std::string checkpoint_dtype = "float32";
  bool keep = false;
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "worker_bench: " << error << "\n"
            << "usage: worker_bench [--bin-dir DIR (with gpu-worker)] [--layers N (2)]\n"
               "  [--vocab N (32768)] [--sequences N (64)] [--min-len N (16)] [--max-len N (256)]\n"
               "  [--seed N] [--max-batch-tokens N (2048)] [--max-batch-requests N (32)]\n"
               "  [--in-flight N sequences (64)] [--threads N (cores; 0 = leave env alone)]\n"
               "  [--checkpoint-dtype float32|bfloat16] [--keep]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage("missing value for " + a);
      return argv[++i];
    };
    auto number = [&]() -> int64_t {
      std::string v = value();
      try {
        return std::stoll(v);
      } catch (...) {
        usage("not a number for " + a + ": " + v);
      }
    };
    if (a == "--bin-dir")
      o.bin_dir = value();
    else if (a == "--layers")
      o.layers = number();
    else if (a == "--vocab")
      o.vocab = number();
    else if (a == "--sequences")
      o.sequences = number();
    else if (a == "--min-len")
      o.min_len = number();
    else if (a == "--max-len")
      o.max_len = number();
    else if (a == "--seed")
      o.seed = static_cast<uint64_t>(number());
    else if (a == "--max-batch-tokens")
      o.max_batch_tokens = static_cast<uint32_t>(number());
    else if (a == "--max-batch-requests")
      o.max_batch_requests = static_cast<uint32_t>(number());
    else if (a == "--in-flight")
      o.in_flight = number();
    else if (a == "--threads")
      o.threads = number();
    else if (a == "--checkpoint-dtype")
      o.checkpoint_dtype = value();
    else if (a == "--keep")
      o.keep = true;
    else
      usage("unknown option " + a);
  }
  if (o.layers < 1 || o.vocab < 16 || o.sequences < 1 || o.min_len < 1 || o.max_len < o.min_len ||
      o.in_flight < 8 || o.max_batch_requests < 1 ||
      o.max_batch_tokens < static_cast<uint32_t>(o.max_len))
    usage("inconsistent options (need max-len <= max-batch-tokens, in-flight >= 8)");
  if (o.bin_dir.empty()) {
    // This build tree first, then the main build folder.
    for (std::string d : {std::string(EMBED_BENCH_BIN_DIR), std::string(EMBED_SOURCE_DIR) + "/build/bin"})
      if (!d.empty() && file_exists(d + "/gpu-worker")) {
        o.bin_dir = d;
        break;
      }
    if (o.bin_dir.empty())
      usage("no gpu-worker found; pass --bin-dir");
  }
  return o;
}

// The same thread count on both sides: libgomp and OpenBLAS read their variables when they load,
// so the benchmark re-executes itself once with them set; the worker inherits them.
void pin_threads(const options& o, char** argv) {
  if (o.threads == 0 || std::getenv("EMBED_WORKER_BENCH_THREADS"))
    return;
  int64_t n = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  auto s = std::to_string(n);
  for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                          "EMBED_WORKER_BENCH_THREADS"})
    ::setenv(var, s.c_str(), 1);
  ::execv("/proc/self/exe", argv);
  std::perror("worker_bench: re-exec failed");
  std::exit(1);
}

struct lcg { // the workload's own tiny PRNG: same ids everywhere
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
  double normal() { // Irwin-Hall, good enough for random weights
    double sum = 0;
    for (int i = 0; i < 4; ++i)
      sum += next() * (1.0 / 4294967296.0) * 2; // next() is 31 bits: [0, 1)
    return (sum - 2.0) * 1.7320508075688772;
  }
};

model_config bench_config(const options& o) {
  model_config c = model::builtin_config();
  c.vocab_size = o.vocab;
  c.hidden_size = 1024;
  c.intermediate_size = 3072;
  c.num_hidden_layers = o.layers;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.max_position_embeddings = 32768;
  c.tie_word_embeddings = true; // no lm_head tensor to write
  c.attention_bias = false;
  return c;
}

// Every tensor model::load asks for (gpu/model.cpp assemble()), random, norms at 1.
void write_checkpoint(const std::string& dir, const model_config& c, uint64_t seed,
                      embed::gpu::dtype type) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim,
                nq = c.num_attention_heads, nkv = c.num_key_value_heads;
  lcg rng{seed * 7919 + 17};
  std::vector<embed::gpu::checkpoint_tensor> ts;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto d : shape)
      n *= d;
    embed::gpu::checkpoint_tensor t{"model." + name, shape, std::vector<float>(size_t(n))};
    const bool is_norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    for (auto& v : t.values)
      v = is_norm ? 1.0f : static_cast<float>(rng.normal() * 0.02);
    ts.push_back(std::move(t));
  };
  add("embed_tokens.weight", {c.vocab_size, H});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {H});
    add(p + "self_attn.q_proj.weight", {nq * hd, H});
    add(p + "self_attn.k_proj.weight", {nkv * hd, H});
    add(p + "self_attn.v_proj.weight", {nkv * hd, H});
    add(p + "self_attn.q_norm.weight", {hd});
    add(p + "self_attn.k_norm.weight", {hd});
    add(p + "self_attn.o_proj.weight", {H, nq * hd});
    add(p + "post_attention_layernorm.weight", {H});
    add(p + "mlp.gate_proj.weight", {I, H});
    add(p + "mlp.up_proj.weight", {I, H});
    add(p + "mlp.down_proj.weight", {H, I});
  }
  add("norm.weight", {H});
  embed::gpu::save_checkpoint(dir, c, ts, type);
}

struct workload {
  std::vector<std::vector<int32_t>> seqs;
  uint64_t tokens = 0;
};

workload make_workload(const options& o) {
  workload w;
  lcg rng{o.seed};
  for (int64_t i = 0; i < o.sequences; ++i) {
    auto len = o.min_len + int64_t(rng.next() % uint64_t(o.max_len - o.min_len + 1));
    std::vector<int32_t> s(static_cast<size_t>(len));
    for (auto& id : s)
      id = static_cast<int32_t>(rng.next() % uint64_t(o.vocab));
    w.tokens += s.size();
    w.seqs.push_back(std::move(s));
  }
  return w;
}

void normalize(float* row, int64_t n) {
  double sum = 0;
  for (int64_t k = 0; k < n; ++k)
    sum += double(row[k]) * row[k];
  auto inv = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
  for (int64_t k = 0; k < n; ++k)
    row[k] *= inv;
}

// One long-lived thread that runs every in-process forward, as the worker runs its forwards on
// the model holder's own (detached actor) thread: LibTorch's allocations then come from a malloc
// thread arena in both processes, not from the main arena here and a thread arena there.
class forward_thread {
public:
  forward_thread() : thread_([this] { loop(); }) {}
  ~forward_thread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void run(std::function<void()> f) {
    std::unique_lock<std::mutex> lock(mu_);
    task_ = std::move(f);
    cv_.notify_all();
    cv_.wait(lock, [&] { return !task_; });
  }

private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || task_; });
      if (stop_)
        return;
      lock.unlock();
      task_();
      lock.lock();
      task_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;
  bool stop_ = false;
  std::thread thread_;
};

// CPU seconds (user + system) of this process, and of another one from /proc/PID/stat.
double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

double proc_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) // fields 14 and 15: utime, stime
    if (i == 14 || i == 15)
      ticks += std::stod(field);
  return ticks / double(::sysconf(_SC_CLK_TCK));
}

struct pass_result {
  double seconds = 0;
  uint64_t tokens = 0;
  uint64_t batches = 0;
  std::vector<float> vectors; // sequences x hidden, normalised
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  std::string first_error;
  double tokens_per_s() const { return seconds > 0 ? double(tokens) / seconds : 0; }
};

// The worker's batcher (actors/worker/batcher.cpp dispatch()) over a closed-loop window of
// `window` sequences: anchor = oldest queued sequence, then the queued sequences closest to it in
// length while count <= max requests and count x longest <= max tokens. As over gRPC, the
// sequences of a finished batch are replaced one batch later (their answers travel back and the
// new requests arrive while the next batch is already running).
pass_result run_in_process(model& m, const workload& w, const options& o, int64_t window) {
  pass_result r;
  const int64_t H = m.config().hidden_size;
  r.vectors.assign(w.seqs.size() * size_t(H), 0.f);
  std::deque<size_t> queue;
  size_t next = 0;
  auto refill = [&](size_t n) {
    while (n-- > 0 && next < w.seqs.size())
      queue.push_back(next++);
  };
  refill(size_t(window));
  size_t replace_later = 0;
  auto start = clock_type::now();
  while (!queue.empty()) {
    const size_t anchor_len = w.seqs[queue.front()].size();
    std::vector<size_t> cand(queue.size());
    for (size_t q = 0; q < cand.size(); ++q)
      cand[q] = q;
    std::stable_sort(cand.begin(), cand.end(), [&](size_t a, size_t b) {
      auto da = std::llabs(int64_t(w.seqs[queue[a]].size()) - int64_t(anchor_len));
      auto db = std::llabs(int64_t(w.seqs[queue[b]].size()) - int64_t(anchor_len));
      return da < db;
    });
    std::vector<size_t> chosen;
    uint64_t longest = 0;
    for (auto q : cand) {
      uint64_t l = std::max<uint64_t>(longest, w.seqs[queue[q]].size());
      if (!chosen.empty() && (chosen.size() + 1 > o.max_batch_requests ||
                              l * (chosen.size() + 1) > o.max_batch_tokens))
        continue;
      chosen.push_back(q);
      longest = l;
      if (chosen.size() >= o.max_batch_requests)
        break;
    }
    std::sort(chosen.begin(), chosen.end());
    packed_batch b;
    std::vector<size_t> rows;
    for (auto q : chosen) {
      b.add(w.seqs[queue[q]]);
      rows.push_back(queue[q]);
    }
    for (auto it = chosen.rbegin(); it != chosen.rend(); ++it)
      queue.erase(queue.begin() + std::ptrdiff_t(*it));
    refill(replace_later);
    replace_later = rows.size();
    auto out = m.last_hidden(b);
    ++r.batches;
    for (size_t i = 0; i < rows.size(); ++i) {
      float* dst = r.vectors.data() + rows[i] * size_t(H);
      std::copy(out.begin() + std::ptrdiff_t(i * size_t(H)),
                out.begin() + std::ptrdiff_t((i + 1) * size_t(H)), dst);
      normalize(dst, H);
      r.tokens += w.seqs[rows[i]].size();
    }
    if (queue.empty()) {
      refill(replace_later);
      replace_later = 0;
    }
  }
  r.seconds = seconds_since(start);
  return r;
}

// K = window / per_request calls in flight on one channel; each completion sends the next request.
pass_result run_grpc(worker::v1::GpuWorker::Stub& stub, const workload& w, int64_t hidden,
                     int64_t per_request, int64_t window) {
  std::vector<worker::v1::EmbedRequest> reqs;
  std::vector<std::vector<size_t>> members;
  for (size_t i = 0; i < w.seqs.size(); i += size_t(per_request)) {
    worker::v1::EmbedRequest req;
    req.set_pooling(worker::v1::POOLING_LAST_TOKEN);
    req.set_normalize(true);
    auto* s = req.mutable_sequences();
    s->add_offsets(0);
    std::vector<size_t> m;
    for (size_t j = i; j < std::min(w.seqs.size(), i + size_t(per_request)); ++j) {
      for (auto id : w.seqs[j])
        s->add_ids(uint32_t(id));
      s->add_offsets(uint32_t(s->ids_size()));
      m.push_back(j);
    }
    req.set_correlation_id("worker-bench-" + std::to_string(reqs.size()));
    reqs.push_back(std::move(req));
    members.push_back(std::move(m));
  }
  const size_t n = reqs.size();
  const size_t k = std::min(n, size_t(std::max<int64_t>(1, window / per_request)));
  struct call {
    grpc::ClientContext ctx;
    worker::v1::EmbedResponse resp;
    clock_type::time_point sent;
  };
  std::vector<std::unique_ptr<call>> calls(n);
  pass_result r;
  r.vectors.assign(w.seqs.size() * size_t(hidden), 0.f);
  r.latencies_ms.assign(n, 0);
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<size_t> next{0};
  size_t done = 0;
  std::function<void(size_t)> issue = [&](size_t i) {
    calls[i] = std::make_unique<call>();
    auto* c = calls[i].get();
    c->sent = clock_type::now();
    stub.async()->Embed(&c->ctx, &reqs[i], &c->resp, [&, i, c](grpc::Status st) {
      r.latencies_ms[i] = seconds_since(c->sent) * 1e3;
      size_t j = next.fetch_add(1);
      if (j < n)
        issue(j);
      std::lock_guard<std::mutex> lock(mu);
      if (!st.ok()) {
        if (r.errors++ == 0)
          r.first_error = std::to_string(int(st.error_code())) + " " + st.error_message();
      } else if (c->resp.count() != members[i].size() || int64_t(c->resp.dimension()) != hidden ||
                 c->resp.vectors().size() != members[i].size() * size_t(hidden) * 4) {
        if (r.errors++ == 0)
          r.first_error = "response of the wrong shape";
      } else {
        std::memcpy(r.vectors.data() + members[i].front() * size_t(hidden), c->resp.vectors().data(),
                    c->resp.vectors().size());
        for (auto s : members[i])
          r.tokens += w.seqs[s].size();
      }
      if (++done == n)
        cv.notify_all();
    });
  };
  auto start = clock_type::now();
  for (size_t i = 0; i < k; ++i)
    issue(next.fetch_add(1));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == n; });
  }
  r.seconds = seconds_since(start);
  return r;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

std::string fmt(double v, int prec = 1) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(prec) << v;
  return s.str();
}

} // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  pin_threads(o, argv);
  const char* threads_env = std::getenv("OMP_NUM_THREADS");
  const std::string threads = threads_env ? threads_env : "libtorch default";

  const auto cfg = bench_config(o);
  const auto w = make_workload(o);
  const std::string dir = temp_dir("worker-bench");
  const std::string ckpt = dir + "/model";
  std::cerr << "worker_bench: load " << fmt(load_average(), 2) << ", threads " << threads << ", "
            << w.seqs.size() << " sequences, " << w.tokens << " tokens; writing " << ckpt << "\n";
  auto t0 = clock_type::now();
  write_checkpoint(ckpt, cfg, o.seed, embed::gpu::parse_dtype(o.checkpoint_dtype));
  std::cerr << "worker_bench: checkpoint written in " << fmt(seconds_since(t0), 1) << " s\n";

  embed::gpu::model_options mopts; // cpu, float32: what `gpu-worker serve` uses by default
  auto m = model::load(ckpt, mopts);
  // Warm-up, the same on both sides: one batch of the first sequences within the budgets (every
  // weight page touched, buffers of a full batch allocated), untimed.
  workload warm;
  {
    uint64_t longest = 0;
    for (auto& s : w.seqs) {
      longest = std::max<uint64_t>(longest, s.size());
      if (warm.seqs.size() + 1 > o.max_batch_requests ||
          longest * (warm.seqs.size() + 1) > o.max_batch_tokens)
        break;
      warm.seqs.push_back(s);
      warm.tokens += s.size();
    }
  }
  m->warm_up();
  forward_thread model_thread;
  model_thread.run([&] {
    packed_batch b;
    for (auto& s : warm.seqs)
      b.add(s);
    m->last_hidden(b);
  });
  const int64_t H = m->config().hidden_size;

  // The worker: the same checkpoint, the same batching limits, the same thread environment.
  const uint16_t port = free_port(), metrics_port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  child_process worker("gpu-worker",
                       {o.bin_dir + "/gpu-worker", "serve", "--model", ckpt, "--listen", address,
                        "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port),
                        "--max-batch-tokens", std::to_string(o.max_batch_tokens),
                        "--max-batch-requests", std::to_string(o.max_batch_requests),
                        "--log-level", "warn"},
                       dir + "/gpu-worker.log");
  if (!wait_serving(address, worker, std::chrono::seconds(180))) {
    std::cerr << "worker_bench: gpu-worker did not become SERVING; log " << worker.log_path()
              << ":\n"
              << worker.log_tail() << "\n";
    return 1;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  auto stub = worker::v1::GpuWorker::NewStub(channel);
  { // the same warm-up batch in one call (also connects the channel), untimed
    auto r = run_grpc(*stub, warm, H, int64_t(warm.seqs.size()), int64_t(warm.seqs.size()));
    if (r.errors) {
      std::cerr << "worker_bench: warm-up call failed: " << r.first_error << "\n";
      return 1;
    }
  }

  // Passes interleaved so that each gRPC pass has an in-process pass just before and just after
  // it (the shared machine's speed drifts): in-process, gRPC x1, in-process, gRPC x8, in-process.
  struct pass {
    std::string name;
    int64_t per_request; // 0: in-process
    pass_result r;
    double batches = 0, batch_tokens = 0;
    double server_cpu = 0, client_cpu = 0; // CPU seconds: the model's process, the load generator
  };
  std::vector<pass> passes;
  const double load_before = load_average();
  auto in_process = [&] {
    std::cerr << "worker_bench: in-process pass (load " << fmt(load_average(), 2) << ")\n";
    pass_result res;
    const double c0 = self_cpu_seconds();
    model_thread.run([&] { res = run_in_process(*m, w, o, o.in_flight); });
    pass p{"in-process", 0, std::move(res)};
    p.server_cpu = self_cpu_seconds() - c0;
    p.batches = double(p.r.batches);
    p.batch_tokens = double(p.r.tokens);
    passes.push_back(std::move(p));
  };
  in_process();
  for (int64_t per : {int64_t(1), int64_t(8)}) {
    std::cerr << "worker_bench: over gRPC, " << per << " sequence(s) per request, "
              << o.in_flight / per << " requests in flight (load " << fmt(load_average(), 2)
              << ")\n";
    auto before = http_get(metrics_port, "/metrics");
    const double w0 = proc_cpu_seconds(worker.pid()), c0 = self_cpu_seconds();
    pass g{"gRPC, " + std::to_string(per) + " seq/request", per,
           run_grpc(*stub, w, H, per, o.in_flight)};
    g.server_cpu = proc_cpu_seconds(worker.pid()) - w0;
    g.client_cpu = self_cpu_seconds() - c0;
    auto after = http_get(metrics_port, "/metrics");
    g.batches = metric_sum(after, "embed_gpu_batches_total") -
                metric_sum(before, "embed_gpu_batches_total");
    g.batch_tokens = metric_sum(after, "embed_gpu_tokens_total") -
                     metric_sum(before, "embed_gpu_tokens_total");
    if (g.r.errors) {
      std::cerr << "worker_bench: " << g.r.errors << " calls failed, first: " << g.r.first_error
                << "\n";
      return 1;
    }
    passes.push_back(std::move(g));
    in_process();
  }
  const double load_after = load_average();
  const int worker_exit = worker.stop();

  double in_sum = 0;
  int in_n = 0;
  for (auto& p : passes)
    if (p.per_request == 0) {
      in_sum += p.r.tokens_per_s();
      ++in_n;
    }
  const double in_mean = in_sum / in_n;
  // A gRPC pass against the mean of the in-process passes either side of it.
  auto around = [&](size_t i) {
    return (passes[i - 1].r.tokens_per_s() + passes[i + 1].r.tokens_per_s()) / 2;
  };

  std::cout << "\nworker_bench: " << o.layers << " layers, hidden 1024, vocab " << o.vocab << ", "
            << w.seqs.size() << " sequences (" << o.min_len << ".." << o.max_len << " tokens, "
            << w.tokens << " in all), --max-batch-tokens " << o.max_batch_tokens
            << " --max-batch-requests " << o.max_batch_requests << ", " << o.in_flight
            << " sequences in flight, threads " << threads << ", load " << fmt(load_before, 2)
            << " -> " << fmt(load_after, 2) << "\n\n";
  std::cout << "| pass | tokens/s | seconds | batches | tokens/batch | p50 ms | p99 ms | "
               "in-process around | ratio to around | ratio to mean in-process | model CPU s / s | "
               "client CPU s / s |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  bool met = true;
  std::ostringstream js_grpc;
  for (size_t i = 0; i < passes.size(); ++i) {
    auto& p = passes[i];
    const bool g = p.per_request != 0;
    const double ar = g ? around(i) : 0, ratio = g ? p.r.tokens_per_s() / ar : 0;
    std::cout << "| " << p.name << " | " << fmt(p.r.tokens_per_s()) << " | "
              << fmt(p.r.seconds, 2) << " | " << fmt(p.batches, 0) << " | "
              << fmt(p.batches > 0 ? p.batch_tokens / p.batches : 0) << " | "
              << (g ? fmt(percentile(p.r.latencies_ms, 50), 0) : "") << " | "
              << (g ? fmt(percentile(p.r.latencies_ms, 99), 0) : "") << " | "
              << (g ? fmt(ar) : "") << " | " << (g ? fmt(ratio, 3) : "") << " | "
              << fmt(p.r.tokens_per_s() / in_mean, 3) << " | " << fmt(p.server_cpu / p.r.seconds, 2)
              << " | " << (g ? fmt(p.client_cpu / p.r.seconds, 2) : "") << " |\n";
    if (g) {
      met = met && ratio >= 0.9;
      auto key = "grpc_" + std::to_string(p.per_request) + "_per_request";
      js_grpc << ", \"" << key << "_tokens_per_s\": " << fmt(p.r.tokens_per_s()) << ", \"" << key
              << "_in_process_around\": " << fmt(ar) << ", \"" << key
              << "_ratio\": " << fmt(ratio, 3) << ", \"" << key << "_max_abs_diff\": "
              << std::scientific << std::setprecision(2)
              << max_abs_diff(p.r.vectors, passes.front().r.vectors) << std::defaultfloat;
    }
  }
  std::cout << "\n{\"layers\": " << o.layers << ", \"vocab\": " << o.vocab
            << ", \"sequences\": " << w.seqs.size() << ", \"tokens\": " << w.tokens
            << ", \"max_batch_tokens\": " << o.max_batch_tokens
            << ", \"max_batch_requests\": " << o.max_batch_requests
            << ", \"in_flight_sequences\": " << o.in_flight << ", \"threads\": \"" << threads
            << "\", \"load_before\": " << fmt(load_before, 2)
            << ", \"load_after\": " << fmt(load_after, 2) << ", \"in_process_tokens_per_s\": [";
  for (size_t i = 0, k = 0; i < passes.size(); ++i)
    if (passes[i].per_request == 0)
      std::cout << (k++ ? ", " : "") << fmt(passes[i].r.tokens_per_s());
  std::cout << "]" << js_grpc.str() << ", \"worker_exit\": " << worker_exit << "}\n";
  std::cout << "target gRPC >= 0.9 x in-process (around): " << (met ? "met" : "NOT met") << "\n";

  if (!o.keep)
    std::filesystem::remove_all(dir);
  else
    std::cerr << "worker_bench: kept " << dir << "\n";
  return 0;
}
