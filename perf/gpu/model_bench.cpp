// Embedding-forward throughput of a Qwen3-Embedding-0.6B-shaped model with random weights, and
// the FLOP rate it reaches against a plain matmul measured in the same run. Prints JSON.
#include "gpu/model.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using embed::gpu::model;
using embed::gpu::model_config;
using embed::gpu::packed_batch;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

struct bench_options {
  std::string device = "cpu";
  std::string dtype = "float32";
  int64_t layers = -1; // default: 28 on CUDA, 4 on the CPU
  int64_t sequences = -1;
  int64_t max_batch_tokens = -1;
  int64_t max_batch_sequences = 128;
  int64_t threads = 0;
  int64_t repeats = 1;
  std::string lengths_file;
  bool buckets = true;
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "model_bench: " << error << "\n"
            << "usage: model_bench [--device cpu|cuda] [--dtype float32|bfloat16] [--layers N]\n"
               "  [--sequences N] [--lengths-file workload_lengths.json] [--max-batch-tokens N]\n"
               "  [--max-batch-sequences N] [--threads N] [--repeats N] [--no-buckets]\n";
  std::exit(2);
}

bench_options parse(int argc, char** argv) {
  bench_options o;
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
    if (a == "--device")
      o.device = value();
    else if (a == "--dtype")
      o.dtype = value();
    else if (a == "--layers")
      o.layers = number();
    else if (a == "--sequences")
      o.sequences = number();
    else if (a == "--max-batch-tokens")
      o.max_batch_tokens = number();
    else if (a == "--max-batch-sequences")
      o.max_batch_sequences = number();
    else if (a == "--threads")
      o.threads = number();
    else if (a == "--repeats")
      o.repeats = number();
    else if (a == "--lengths-file")
      o.lengths_file = value();
    else if (a == "--no-buckets")
      o.buckets = false;
    else
      usage("unknown option " + a);
  }
  const bool cuda = o.device.rfind("cuda", 0) == 0;
  if (o.layers < 0)
    o.layers = cuda ? 28 : 4;
  if (o.sequences < 0)
    o.sequences = cuda ? 2048 : 64;
  if (o.max_batch_tokens < 0)
    o.max_batch_tokens = cuda ? 16384 : 4096;
  return o;
}

model_config qwen3_embedding_0_6b(int64_t layers) {
  model_config c = model::builtin_config();
  c.hidden_size = 1024;
  c.intermediate_size = 3072;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 16;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.max_position_embeddings = 32768;
  return c;
}

// Multiply-adds actually needed for one sequence: projections, MLP, and causal attention
// (QK^T and PV over the L(L+1)/2 visible pairs), times 2 FLOPs each. No embedding/lm_head.
double sequence_flops(const model_config& c, int64_t len) {
  const double H = double(c.hidden_size), hd = double(c.head_dim),
               nq = double(c.num_attention_heads), nkv = double(c.num_key_value_heads),
               I = double(c.intermediate_size), L = double(len);
  const double per_token = H * (nq + 2 * nkv) * hd + nq * hd * H + 3 * H * I;
  const double attention = 2 * nq * hd * L * (L + 1) / 2;
  return 2 * double(c.num_hidden_layers) * (L * per_token + attention);
}

struct lcg { // the workload's own tiny PRNG: same ids everywhere
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
};

// Splits sequences (in the given order) into batches under the token and sequence budgets.
std::vector<packed_batch> make_batches(const std::vector<std::vector<int32_t>>& seqs,
                                       const std::vector<size_t>& order, int64_t max_tokens,
                                       int64_t max_seqs) {
  std::vector<packed_batch> out;
  packed_batch cur;
  for (size_t i : order) {
    const auto& s = seqs[i];
    if (cur.size() > 0 &&
        (int64_t(cur.ids.size() + s.size()) > max_tokens || int64_t(cur.size()) >= max_seqs)) {
      out.push_back(std::move(cur));
      cur = {};
    }
    cur.add(s);
  }
  if (cur.size() > 0)
    out.push_back(std::move(cur));
  return out;
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Runs every batch; the host copy of the embeddings synchronises CUDA.
double run_batches(model& m, const std::vector<packed_batch>& batches) {
  auto t = clock_type::now();
  for (const auto& b : batches)
    m.embed(b, true, 0);
  return seconds_since(t);
}

// FLOP/s of an m x k by k x n matmul in the run's dtype on the run's device.
double matmul_flops(const std::string& device, at::ScalarType type, int64_t m, int64_t k,
                    int64_t n) {
  c10::InferenceMode guard;
  auto opts = at::TensorOptions().dtype(type).device(at::Device(device));
  at::Tensor a = at::randn({m, k}, opts), b = at::randn({k, n}, opts);
  auto sync = [&] {
    if (a.is_cuda())
      (void)at::sum(a).item<float>(); // a host read waits for the stream
  };
  for (int i = 0; i < 2; ++i)
    at::mm(a, b);
  sync();
  int reps = 1;
  double t = 0;
  while (true) {
    auto start = clock_type::now();
    for (int i = 0; i < reps; ++i)
      at::mm(a, b);
    sync();
    t = seconds_since(start);
    if (t > 0.5 || reps > 10000)
      break;
    reps *= 2;
  }
  return 2.0 * double(m) * double(k) * double(n) * reps / t;
}

} // namespace

int main(int argc, char** argv) {
  bench_options o = parse(argc, argv);
  if (o.threads > 0)
    at::set_num_threads(static_cast<int>(o.threads));
  const embed::gpu::dtype type = embed::gpu::parse_dtype(o.dtype);
  const at::ScalarType st = type == embed::gpu::dtype::float32    ? at::kFloat
                            : type == embed::gpu::dtype::bfloat16 ? at::kBFloat16
                                                                  : at::kHalf;
  if (o.device.rfind("cuda", 0) == 0)
    embed::gpu::set_allow_tf32(false);

  std::vector<int64_t> lengths;
  if (!o.lengths_file.empty()) {
    std::ifstream in(o.lengths_file);
    std::stringstream text;
    text << in.rdbuf();
    json::value parsed = json::parse(text.str());
    for (const auto& v : parsed.as_array())
      lengths.push_back(v.as_int64());
    if (o.sequences < int64_t(lengths.size()))
      lengths.resize(size_t(o.sequences));
  } else {
    lcg rng{1};
    for (int64_t i = 0; i < o.sequences; ++i)
      lengths.push_back(16 + rng.next() % 497);
  }
  const model_config cfg = qwen3_embedding_0_6b(o.layers);
  lcg ids{7};
  std::vector<std::vector<int32_t>> seqs;
  int64_t total_tokens = 0;
  double total_flops = 0;
  for (auto len : lengths) {
    seqs.emplace_back(size_t(len));
    for (auto& id : seqs.back())
      id = int32_t(ids.next() % uint32_t(cfg.vocab_size));
    total_tokens += len;
    total_flops += sequence_flops(cfg, len);
  }

  json::object report;
  try {
    auto load_start = clock_type::now();
    auto m = model::random(cfg, {o.device, type}, 42);
    report["device"] = m->device_name();
    report["dtype"] = m->dtype_name();
    report["threads"] = at::get_num_threads();
    report["model"] = json::object{{"shape", "Qwen3-Embedding-0.6B (random weights)"},
                                   {"layers", cfg.num_hidden_layers},
                                   {"hidden", cfg.hidden_size},
                                   {"heads", cfg.num_attention_heads},
                                   {"kv_heads", cfg.num_key_value_heads},
                                   {"head_dim", cfg.head_dim},
                                   {"intermediate", cfg.intermediate_size},
                                   {"build_s", seconds_since(load_start)}};
    m->warm_up();

    // The matmul ceiling, measured now: square 1024 and the MLP's shape.
    const double mm_square = matmul_flops(o.device, st, 1024, 1024, 1024);
    const double mm_mlp = matmul_flops(o.device, st, 2048, 1024, 3072);
    const double ceiling = std::max(mm_square, mm_mlp);
    report["matmul_gflops"] =
        json::object{{"1024x1024x1024", mm_square / 1e9}, {"2048x1024x3072", mm_mlp / 1e9}};

    double before = mm_mlp;
    auto record = [&](const std::vector<packed_batch>& batches, double flops, int64_t tokens) {
      if (m->device_name() != "cpu")
        run_batches(*m, {batches.front()}); // allocator, kernels
      std::vector<double> times;
      for (int64_t r = 0; r < std::max<int64_t>(1, o.repeats); ++r)
        times.push_back(run_batches(*m, batches));
      std::sort(times.begin(), times.end());
      const double t = times[times.size() / 2];
      // The matmul rate again right after: on a shared machine the rate drifts, so each figure
      // is also given against the mean of the rates measured around it.
      const double after = matmul_flops(o.device, st, 2048, 1024, 3072);
      const double local = (before + after) / 2;
      before = after;
      return json::object{{"seconds", t},
                          {"tokens_per_s", double(tokens) / t},
                          {"gflops", flops / t / 1e9},
                          {"fraction_of_matmul", flops / t / ceiling},
                          {"matmul_gflops_around", local / 1e9},
                          {"fraction_of_matmul_around", flops / t / local},
                          {"batches", batches.size()}};
    };

    std::vector<size_t> arrival(seqs.size()), sorted;
    for (size_t i = 0; i < arrival.size(); ++i)
      arrival[i] = i;
    sorted = arrival;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](size_t a, size_t b) { return seqs[a].size() < seqs[b].size(); });
    json::object mixed;
    mixed["sequences"] = seqs.size();
    mixed["tokens"] = total_tokens;
    mixed["arrival_order"] =
        record(make_batches(seqs, arrival, o.max_batch_tokens, o.max_batch_sequences), total_flops,
               total_tokens);
    mixed["sorted_by_length"] =
        record(make_batches(seqs, sorted, o.max_batch_tokens, o.max_batch_sequences), total_flops,
               total_tokens);
    report["mixed_16_512"] = mixed;

    if (o.buckets) {
      // Fixed lengths: one full batch (up to the token budget) per bucket.
      json::object buckets;
      for (int64_t len : {16, 32, 64, 128, 256, 512}) {
        const int64_t n =
            std::max<int64_t>(1, std::min(o.max_batch_sequences, o.max_batch_tokens / len));
        std::vector<std::vector<int32_t>> bucket(static_cast<size_t>(n),
                                                 std::vector<int32_t>(static_cast<size_t>(len)));
        for (auto& s : bucket)
          for (auto& id : s)
            id = int32_t(ids.next() % uint32_t(cfg.vocab_size));
        std::vector<size_t> order(bucket.size());
        for (size_t i = 0; i < order.size(); ++i)
          order[i] = i;
        auto res = record(make_batches(bucket, order, o.max_batch_tokens, o.max_batch_sequences),
                          double(n) * sequence_flops(cfg, len), n * len);
        res["sequences"] = n;
        buckets[std::to_string(len)] = res;
      }
      report["fixed_length_buckets"] = buckets;
    }
    report["memory_used_bytes"] = m->device_memory_used();
  } catch (const std::exception& e) {
    report["error"] = e.what();
    std::cout << json::serialize(report) << "\n";
    return 1;
  }
  report["options"] = json::object{{"max_batch_tokens", o.max_batch_tokens},
                                   {"max_batch_sequences", o.max_batch_sequences},
                                   {"lengths_file", o.lengths_file},
                                   {"repeats", o.repeats}};
  std::cout << json::serialize(report) << "\n";
  return 0;
}
