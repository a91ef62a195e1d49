#include "cmd/gpu-worker/offline_commands.hpp"

#include "gpu/model.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace embed::worker_cli {

namespace {

namespace json = boost::json;
using gpu::model;

struct offline_options {
  std::string model_dir; // empty: the built-in untrained model
  std::string device = "cpu";
  std::string dtype = "float32";
  size_t batch = 1;
  // embed-ids
  int64_t dimensions = 0;
  bool no_normalize = false;
  // score-ids
  int64_t yes_id = -1, no_id = -1;
};

void add_common(CLI::App& cmd, offline_options& o) {
  cmd.add_option("--model", o.model_dir,
                 "Hugging Face checkpoint folder (default: the built-in untrained model)");
  cmd.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "float32 or bfloat16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))
      ->capture_default_str();
  cmd.add_option("--batch", o.batch, "lines run per forward pass")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
}

std::unique_ptr<model> load(const offline_options& o) {
  gpu::model_options opts{o.device, gpu::parse_dtype(o.dtype)};
  if (o.model_dir.empty()) {
    std::cerr << "gpu-worker: no --model given: using the built-in UNTRAINED Qwen3 (its vectors "
                 "and scores carry no meaning); pass --model DIR for a real checkpoint\n";
    return model::builtin(opts);
  }
  return model::load(o.model_dir, opts);
}

void append_float(std::string& out, float v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc() || !std::isfinite(v)) {
    out += "null"; // JSON has no NaN/Inf
    return;
  }
  out.append(buf, end);
}

std::string error_line(size_t line, const std::string& what) {
  return json::serialize(json::object{{"error", "line " + std::to_string(line) + ": " + what}});
}

// One input line: its token ids or why it is unusable.
struct parsed_line {
  size_t number;
  std::vector<int32_t> ids;
  std::string error;
};

parsed_line parse_line(size_t number, const std::string& text) {
  parsed_line p{number, {}, {}};
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    p.error = "not valid JSON: " + ec.message();
    return p;
  }
  const json::value* ids = v.is_object() ? v.as_object().if_contains("ids") : nullptr;
  if (!ids || !ids->is_array()) {
    p.error = "expected an object {\"ids\": [token ids...]}";
    return p;
  }
  for (const auto& id : ids->as_array()) {
    if (!id.is_int64() || id.as_int64() < 0 || id.as_int64() > INT32_MAX) {
      p.error = "'ids' must hold non-negative integers, got " + json::serialize(id);
      return p;
    }
    p.ids.push_back(static_cast<int32_t>(id.as_int64()));
  }
  if (p.ids.empty())
    p.error = "'ids' is empty";
  return p;
}

// Reads stdin in groups of `batch` usable lines; `run` turns a packed batch into one output line
// per sequence. A batch that fails is retried line by line so the error names its line.
// Returns the number of lines that failed.
template <class Run>
size_t process(size_t batch, Run run) {
  size_t failures = 0, number = 0;
  std::vector<parsed_line> pending;
  auto flush = [&] {
    gpu::packed_batch packed;
    for (const auto& p : pending)
      if (p.error.empty())
        packed.add(p.ids);
    std::vector<std::string> results;
    bool batch_failed = false;
    try {
      results = run(packed);
    } catch (const gpu::model_error&) {
      batch_failed = true;
    }
    size_t next = 0;
    for (const auto& p : pending) {
      if (!p.error.empty()) {
        ++failures;
        std::cout << error_line(p.number, p.error) << '\n';
        continue;
      }
      if (!batch_failed) {
        std::cout << results[next++] << '\n';
        continue;
      }
      try {
        gpu::packed_batch one;
        one.add(p.ids);
        std::cout << run(one).front() << '\n';
      } catch (const gpu::model_error& e) {
        ++failures;
        std::cout << error_line(p.number, e.what()) << '\n';
      }
    }
    std::cout.flush();
    pending.clear();
  };
  std::string text;
  size_t usable = 0;
  while (std::getline(std::cin, text)) {
    pending.push_back(parse_line(++number, text));
    if (pending.back().error.empty() && ++usable == batch) {
      flush();
      usable = 0;
    }
  }
  if (!pending.empty())
    flush();
  return failures;
}

void finish(size_t failures) {
  if (failures > 0) {
    std::cerr << "gpu-worker: " << failures << " line(s) failed\n";
    throw CLI::RuntimeError(1);
  }
}

void run_embed(const offline_options& o) {
  auto m = load(o);
  finish(process(o.batch, [&](const gpu::packed_batch& b) {
    std::vector<float> v = m->embed(b, !o.no_normalize, o.dimensions);
    std::vector<std::string> lines(b.size());
    const size_t dim = b.size() ? v.size() / b.size() : 0;
    for (size_t i = 0; i < b.size(); ++i) {
      std::string& s = lines[i];
      s = "{\"embedding\":[";
      for (size_t d = 0; d < dim; ++d) {
        if (d)
          s += ',';
        append_float(s, v[i * dim + d]);
      }
      s += "]}";
    }
    return lines;
  }));
}

void run_score(const offline_options& o) {
  auto m = load(o);
  finish(process(o.batch, [&](const gpu::packed_batch& b) {
    std::vector<gpu::score_result> r = m->score(b, o.yes_id, o.no_id);
    std::vector<std::string> lines(r.size());
    for (size_t i = 0; i < r.size(); ++i) {
      std::string& s = lines[i];
      s = "{\"score\":";
      append_float(s, r[i].score);
      s += ",\"yes_logit\":";
      append_float(s, r[i].yes_logit);
      s += ",\"no_logit\":";
      append_float(s, r[i].no_logit);
      s += '}';
    }
    return lines;
  }));
}

// Turns model errors at start-up (bad folder, bad device) into a clean exit.
template <class F>
void guarded(F f) {
  try {
    f();
  } catch (const gpu::model_error& e) {
    std::cerr << "gpu-worker: " << e.what() << '\n';
    throw CLI::RuntimeError(1);
  }
}

} // namespace

void add_offline_commands(CLI::App& app) {
  auto opts = std::make_shared<offline_options>();
  auto* embed = app.add_subcommand(
      "embed-ids",
      "Embed token-id sequences: stdin {\"ids\": [...]} lines → {\"embedding\": [...]}");
  add_common(*embed, *opts);
  embed->add_option("--dimensions", opts->dimensions,
                    "keep the first K dimensions, then re-normalise (0: all)");
  embed->add_flag("--no-normalize", opts->no_normalize, "return the raw last-token hidden state");
  embed->callback([opts] { guarded([&] { run_embed(*opts); }); });

  auto* score = app.add_subcommand(
      "score-ids", "Reranker scores: stdin {\"ids\": [...]} lines → {\"score\", \"yes_logit\", "
                   "\"no_logit\"}");
  add_common(*score, *opts);
  score->add_option("--yes-id", opts->yes_id, "token id of \"yes\" (9693 in Qwen3-Reranker)")
      ->required();
  score->add_option("--no-id", opts->no_id, "token id of \"no\" (2152 in Qwen3-Reranker)")
      ->required();
  score->callback([opts] { guarded([&] { run_score(*opts); }); });
}

} // namespace embed::worker_cli
