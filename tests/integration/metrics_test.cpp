// Metrics of real processes under real traffic: a real embedd + gpu-worker (built-in model).
//  - cardinality: 10,000 requests with random texts, namespaces, correlation ids, options and
//    invalid inputs keep every family within its declared series budget, export no more series
//    than after the first 100 requests of the same mix, and put nothing from a request in a label;
//  - families: every family metrics/README.md documents for a process appears in its /metrics
//    after traffic, and every family a process exports is documented (with that type).
#include "tests/integration/gateway_harness.hpp"

#include "metrics/process_metrics.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace embed;
using namespace embed::testing;
namespace ev1 = embedding::v1;
using namespace std::chrono_literals;

namespace {

// -- Prometheus text exposition ---------------------------------------------------------------

struct exposition {
  std::map<std::string, std::string> types;                  // family -> counter|gauge|histogram
  std::map<std::string, std::set<std::string>> series;       // family -> label sets (no `le`)
  std::set<std::string> label_values;                        // every label value seen
  std::set<std::string> words;                               // every [A-Za-z0-9_.:-]+ run
};

std::map<std::string, size_t> counts(const exposition& e) {
  std::map<std::string, size_t> out;
  for (auto& [family, sets] : e.series)
    out[family] = sets.size();
  return out;
}

exposition parse(const std::string& text) {
  exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream ls(line.substr(7));
      std::string name, type;
      ls >> name >> type;
      e.types[name] = type;
      continue;
    }
    if (line[0] == '#')
      continue;
    auto end = line.find_first_of("{ ");
    auto name = line.substr(0, end);
    std::string family = name;
    if (e.types.count(name) == 0)
      for (std::string suffix : {"_bucket", "_sum", "_count"})
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
          auto base = name.substr(0, name.size() - suffix.size());
          if (e.types.count(base) != 0 && e.types[base] == "histogram")
            family = base;
        }
    // Labels: k="v" pairs with \\, \" and \n escapes. `le` (histogram buckets) is not a series.
    std::map<std::string, std::string> labels;
    if (end != std::string::npos && line[end] == '{') {
      size_t i = end + 1;
      while (i < line.size() && line[i] != '}') {
        auto eq = line.find('=', i);
        auto key = line.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2; // past ="
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        e.label_values.insert(value);
        if (key != "le")
          labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',')
          ++i;
      }
    }
    std::string key;
    for (auto& [k, v] : labels)
      key += k + "=" + v + "\x1f";
    e.series[family].insert(key);
  }
  static const std::regex word("[A-Za-z0-9_.:-]+");
  for (std::sregex_iterator i(text.begin(), text.end(), word), end; i != end; ++i)
    e.words.insert(i->str());
  return e;
}

std::string describe(const std::map<std::string, size_t>& m) {
  std::string out;
  for (auto& [k, v] : m)
    out += "  " + k + ": " + std::to_string(v) + "\n";
  return out;
}

// -- the request mix --------------------------------------------------------------------------

/// Every random string sent (texts' words, namespaces, correlation ids, queries, documents).
class sent_strings {
public:
  void add(const std::string& s) {
    std::lock_guard lock(mtx_);
    all_.push_back(s);
  }
  std::vector<std::string> all() const {
    std::lock_guard lock(mtx_);
    return all_;
  }

private:
  mutable std::mutex mtx_;
  std::vector<std::string> all_;
};

constexpr int kinds = 20;
const char* kind_name(int k) {
  static const char* names[kinds] = {
      "embed",          "embed",           "embed",           "embed",
      "embed twice",          "embed+prompt",    "embed+truncate",  "empty inputs",
      "blank text",     "too many inputs", "unknown prompt",  "bad truncation direction",
      "dimensions too large", "unknown model", "text too long", "rerank",
      "rerank invalid", "tokenize",        "stream",          "info"};
  return names[k];
}

struct mix {
  gateway_proc& g;
  sent_strings& sent;
  std::mutex mtx;
  std::map<std::string, size_t> unexpected; // kind: what came back instead of what was expected
  std::vector<std::string> pool;             // repeated texts: cache hits

  mix(gateway_proc& g, sent_strings& sent, uint64_t seed) : g(g), sent(sent) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 40; ++i)
      pool.push_back(token(rng) + " " + token(rng));
    for (auto& p : pool)
      for (auto w : {p.substr(0, 10), p.substr(11)})
        sent.add(w);
  }

  static std::string token(std::mt19937_64& rng) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(10, ' ');
    for (auto& c : s)
      c = alphabet[rng() % 36];
    return s;
  }

  std::string fresh(std::mt19937_64& rng) {
    auto t = token(rng);
    sent.add(t);
    return t;
  }

  std::string text(std::mt19937_64& rng) {
    if (rng() % 10 < 3)
      return pool[rng() % pool.size()];
    std::string t = fresh(rng);
    for (int n = static_cast<int>(rng() % 3); n > 0; --n)
      t += " " + fresh(rng);
    return t;
  }

  ev1::EmbedRequest valid_embed(std::mt19937_64& rng) {
    ev1::EmbedRequest r;
    for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n)
      r.add_inputs(text(rng));
    static const uint32_t dims[] = {8, 8, 8, 16, 0};
    r.mutable_options()->set_dimensions(dims[rng() % 5]);
    r.mutable_options()->set_normalize(rng() % 2 == 0);
    r.set_encoding(rng() % 2 == 0 ? ev1::VECTOR_ENCODING_PACKED : ev1::VECTOR_ENCODING_FLOATS);
    if (rng() % 4 != 0)
      r.set_namespace_(fresh(rng));
    if (rng() % 4 != 0)
      r.set_correlation_id(fresh(rng));
    return r;
  }

  void expect(int kind, const grpc::Status& st, grpc::StatusCode want) {
    if (st.error_code() == want)
      return;
    std::lock_guard lock(mtx);
    ++unexpected[std::string(kind_name(kind)) + ": got " + std::to_string(st.error_code()) +
                 " want " + std::to_string(want) + " (" + st.error_message().substr(0, 80) + ")"];
  }

  grpc::Status embed(const ev1::EmbedRequest& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    ev1::EmbedResponse resp;
    return g.stub->Embed(&ctx, r, &resp);
  }

  /// Request number `i` of the mix (its kind is i % kinds, so every prefix of 100 covers all).
  void run(uint64_t i, std::mt19937_64& rng) {
    int kind = static_cast<int>(i % kinds);
    using C = grpc::StatusCode;
    switch (kind) {
    case 0: case 1: case 2: case 3:
      return expect(kind, embed(valid_embed(rng)), C::OK);
    case 4: { // the same request twice in a row: the second is a cache hit
      auto r = valid_embed(rng);
      expect(kind, embed(r), C::OK);
      return expect(kind, embed(r), C::OK);
    }
    case 5: {
      auto r = valid_embed(rng);
      r.mutable_options()->set_prompt_name("query");
      return expect(kind, embed(r), C::OK);
    }
    case 6: {
      auto r = valid_embed(rng);
      r.mutable_options()->set_truncate(true);
      r.mutable_options()->set_truncation_direction(rng() % 2 ? ev1::TRUNCATION_DIRECTION_LEFT
                                                              : ev1::TRUNCATION_DIRECTION_RIGHT);
      return expect(kind, embed(r), C::OK);
    }
    case 7: {
      auto r = valid_embed(rng);
      r.clear_inputs();
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 8: {
      auto r = valid_embed(rng);
      r.add_inputs(rng() % 2 ? "   " : "");
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 9: {
      auto r = valid_embed(rng);
      while (r.inputs_size() <= 8)
        r.add_inputs(text(rng));
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 10: {
      auto r = valid_embed(rng);
      r.mutable_options()->set_prompt_name(fresh(rng));
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 11: {
      auto r = valid_embed(rng);
      r.mutable_options()->set_truncate(true);
      r.mutable_options()->set_truncation_direction(
          static_cast<ev1::TruncationDirection>(3 + rng() % 100));
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 12: {
      auto r = valid_embed(rng);
      r.mutable_options()->set_dimensions(257 + static_cast<uint32_t>(rng() % 100000));
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 13: {
      auto r = valid_embed(rng);
      r.set_model(fresh(rng));
      return expect(kind, embed(r), C::NOT_FOUND);
    }
    case 14: {
      auto r = valid_embed(rng);
      std::string long_text;
      while (long_text.size() <= 200)
        long_text += fresh(rng) + " ";
      r.add_inputs(long_text);
      return expect(kind, embed(r), C::INVALID_ARGUMENT);
    }
    case 15:
    case 16: {
      ev1::RerankRequest r;
      r.set_query(text(rng));
      if (kind == 15)
        for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n)
          r.add_documents(text(rng));
      r.set_top_k(static_cast<uint32_t>(rng() % 3));
      r.set_correlation_id(fresh(rng));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 120s);
      ev1::RerankResponse resp;
      return expect(kind, g.stub->Rerank(&ctx, r, &resp),
                    kind == 15 ? C::OK : C::INVALID_ARGUMENT);
    }
    case 17: {
      ev1::TokenizeRequest r;
      r.add_inputs(text(rng));
      if (rng() % 2)
        r.mutable_options()->set_prompt_name("query");
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 120s);
      ev1::TokenizeResponse resp;
      return expect(kind, g.stub->Tokenize(&ctx, r, &resp), C::OK);
    }
    case 18: { // a stream of three: fine, invalid (reported in-band), fine
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 120s);
      auto stream = g.stub->EmbedStream(&ctx);
      auto bad = valid_embed(rng);
      bad.clear_inputs();
      for (auto& r : std::vector<ev1::EmbedRequest>{valid_embed(rng), bad, valid_embed(rng)})
        stream->Write(r);
      stream->WritesDone();
      ev1::EmbedResponse resp;
      int n = 0, errors = 0;
      while (stream->Read(&resp)) {
        ++n;
        errors += resp.has_error() ? 1 : 0;
      }
      auto st = stream->Finish();
      if (st.ok() && (n != 3 || errors != 1))
        st = grpc::Status(C::DATA_LOSS, std::to_string(n) + " answers, " +
                                            std::to_string(errors) + " errors");
      return expect(kind, st, C::OK);
    }
    default: {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 120s);
      ev1::InfoResponse resp;
      return expect(kind, g.stub->Info(&ctx, ev1::InfoRequest{}, &resp), C::OK);
    }
    }
  }

  /// Requests [from, to) over `threads` client threads.
  void send(uint64_t from, uint64_t to, int threads, uint64_t seed) {
    std::atomic<uint64_t> next{from};
    std::vector<std::thread> pool_threads;
    for (int t = 0; t < threads; ++t)
      pool_threads.emplace_back([&, t] {
        std::mt19937_64 rng(seed * 131 + static_cast<uint64_t>(t));
        for (uint64_t i; (i = next.fetch_add(1)) < to;)
          run(i, rng);
      });
    for (auto& t : pool_threads)
      t.join();
  }
};

/// Declared budgets: the same registries the processes build (process_metrics::make() with the
/// default registry_options, as cmd/embedd and cmd/gpu-worker call it). process_* have no labels.
std::map<std::string, size_t> declared_budgets() {
  std::map<std::string, size_t> out;
  auto pm = metrics::process_metrics::make();
  EXPECT_TRUE(pm) << "process_metrics::make failed";
  if (!pm)
    return out;
  for (auto& f : (*pm)->base().families())
    out[f.name] = f.max_series;
  return out;
}

// The end of a process's log, for a failure message (why a process stopped answering).
std::string tail(const char* who, const std::string& log) {
  constexpr size_t keep = 4000;
  return std::string(who) + " log" + (log.size() > keep ? " (end)" : "") + ":\n" +
         (log.size() > keep ? log.substr(log.size() - keep) : log) + "\n";
}

void check_budgets(const char* who, const exposition& e,
                   const std::map<std::string, size_t>& budgets) {
  for (auto& [family, sets] : e.series) {
    if (family.rfind("process_", 0) == 0) {
      EXPECT_EQ(sets.size(), 1u) << who << ": " << family;
      continue;
    }
    auto b = budgets.find(family);
    ASSERT_NE(b, budgets.end()) << who << " exports " << family
                                << ", a family the registry does not declare";
    EXPECT_LE(sets.size(), b->second) << who << ": " << family << " over its budget";
  }
}

void check_no_request_content(const char* who, const exposition& e,
                              const std::vector<std::string>& sent) {
  size_t leaks = 0;
  for (auto& s : sent) {
    bool leak = e.words.count(s) != 0;
    for (auto& v : e.label_values)
      leak = leak || v.find(s) != std::string::npos;
    if (leak && ++leaks <= 10)
      ADD_FAILURE() << who << "'s /metrics contains request content: " << s;
  }
  EXPECT_EQ(leaks, 0u) << who << ": of " << sent.size() << " random strings sent";
}

} // namespace

TEST(metrics_cardinality, ten_thousand_random_requests_keep_every_family_within_budget) {
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  worker_proc w;
  // A small L1 cache: capacity evictions start within the first 100 requests.
  gateway_proc g({w.address()}, {"--prompt", "query=Given a question, find the answer",
                                  "--max-inputs", "8", "--max-chars", "200", "--cache-bytes",
                                  "16384"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  auto seed = std::random_device{}();
  std::printf("seed %u; processes serving after %.1f s\n", seed, elapsed());

  auto budgets = declared_budgets();
  ASSERT_FALSE(budgets.empty());
  sent_strings sent;
  mix m(g, sent, seed);

  // Metrics arrive asynchronously (request counts per API batch, cache figures per cache tick,
  // docs/metrics.md): poll until the scrape shows every request sent and the cache's families,
  // instead of reading once.
  auto settled = [&](uint64_t requests) {
    exposition ge, we;
    bool ok = poll_until(
        [&] {
          auto gt = g.metrics();
          ge = parse(gt);
          we = parse(w.metrics());
          return metric_sum(gt, "embed_grpc_server_requests_total") >= double(requests) &&
                 metric_sum(gt, "embed_cache_lookups_total") > 0 &&
                 gt.find("\nembed_cache_entries") != std::string::npos &&
                 gt.find("\nembed_cache_size_bytes") != std::string::npos &&
                 !we.series.empty();
        },
        std::chrono::seconds(120), std::chrono::milliseconds(50));
    EXPECT_TRUE(ok) << "the scrape never showed " << requests << " requests and the cache\n"
                    << tail("embedd", g.proc->log()) << tail("gpu-worker", w.proc->log());
    return std::make_pair(ge, we);
  };
  m.send(0, 100, 8, seed);
  auto [g100, w100] = settled(100);
  ASSERT_FALSE(g100.series.empty()) << "no gateway /metrics";
  ASSERT_FALSE(w100.series.empty()) << "no worker /metrics";
  std::printf("first 100 requests after %.1f s\n", elapsed());

  m.send(100, 10000, 8, seed + 1);
  auto [g10k, w10k] = settled(10000);
  std::printf("10,000 requests after %.1f s (%zu random strings)\n", elapsed(), sent.all().size());

  {
    std::lock_guard lock(m.mtx);
    std::string what;
    for (auto& [k, n] : m.unexpected)
      what += "  " + std::to_string(n) + "x " + k + "\n";
    EXPECT_TRUE(m.unexpected.empty()) << "requests that did not get the expected status:\n"
                                      << what << tail("embedd", g.proc->log());
  }
  // (a) within the declared budgets
  check_budgets("embedd", g10k, budgets);
  check_budgets("gpu-worker", w10k, budgets);
  // (b) no growth after the first 100 requests of the same mix
  EXPECT_EQ(counts(g100), counts(g10k)) << "embedd series per family after 100:\n"
                                        << describe(counts(g100)) << "after 10,000:\n"
                                        << describe(counts(g10k));
  EXPECT_EQ(counts(w100), counts(w10k)) << "gpu-worker series per family after 100:\n"
                                        << describe(counts(w100)) << "after 10,000:\n"
                                        << describe(counts(w10k));
  // nothing from a request in the exposition
  auto all = sent.all();
  check_no_request_content("embedd", g10k, all);
  check_no_request_content("gpu-worker", w10k, all);
  std::printf("embedd: %zu families, gpu-worker: %zu families; checked after %.1f s\n",
              g10k.series.size(), w10k.series.size(), elapsed());
  std::printf("embedd series per family:\n%s", describe(counts(g10k)).c_str());
  std::printf("gpu-worker series per family:\n%s", describe(counts(w10k)).c_str());
}

// -- documented families ----------------------------------------------------------------------

namespace {

/// Rows of metrics/README.md: `| \`name\` | type | ...`.
std::map<std::string, std::string> documented_families() {
  std::ifstream in(std::string(EMBED_SOURCE_DIR) + "/metrics/README.md");
  std::map<std::string, std::string> out;
  static const std::regex row(R"(^\|\s*`((?:embed|process)_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|)");
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_search(line, m, row))
      out[m[1]] = m[2];
  return out;
}

bool starts_with_any(const std::string& s, std::initializer_list<const char*> prefixes) {
  for (auto* p : prefixes)
    if (s.rfind(p, 0) == 0)
      return true;
  return false;
}

} // namespace

TEST(metrics_families, every_documented_family_appears_and_every_exported_one_is_documented) {
  auto docs = documented_families();
  ASSERT_GT(docs.size(), 30u) << "could not read the table of metrics/README.md";
  worker_proc w1;
  worker_proc w2; // killed under load: its in-flight calls are retried on w1
  port_reservation dead_redis_port; // bound, never listening: connections are refused
  uint16_t dead_redis = dead_redis_port.port();
  gateway_proc g({w1.address(), w2.address()},
                 {"--redis", "127.0.0.1:" + std::to_string(dead_redis), "--cache-bytes", "4096",
                  "--prompt", "query=Given a question, find the answer", "--max-inputs", "8",
                  "--max-chars", "200"});
  ASSERT_TRUE(w1.wait_serving()) << w1.proc->log();
  ASSERT_TRUE(w2.wait_serving()) << w2.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();

  sent_strings sent;
  mix m(g, sent, 7);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent_count{0};
  std::thread load([&] {
    std::mt19937_64 rng(11);
    for (uint64_t i = 0; !stop; ++i, ++sent_count)
      m.run(i, rng);
  });
  auto calls_to = [&](const std::string& endpoint) {
    auto text = g.metrics();
    double n = 0;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("embed_grpc_client_calls_total{", 0) == 0 &&
          line.find("endpoint=\"" + endpoint + "\"") != std::string::npos)
        n += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    return n;
  };
  // Both workers in rotation (each joins it after a successful probe) before one is killed.
  EXPECT_TRUE(poll_until(
      [&] { return calls_to(w1.address()) >= 5 && calls_to(w2.address()) >= 5; }, 120s, 50ms))
      << "the gateway never called both workers";
  w2.proc->signal(SIGKILL);
  EXPECT_TRUE(poll_until([&] { return metric_sum(g.metrics(), "embed_grpc_client_retries_total") > 0; },
                         120s, 50ms))
      << "no retry after a worker was killed under load";
  // At least one full round of the mix after the kill.
  auto after_kill = sent_count.load();
  EXPECT_TRUE(poll_until([&] { return sent_count >= after_kill + 2 * kinds; }, 120s, 50ms));
  stop = true;
  load.join();

  auto ge = parse(g.metrics()), we = parse(w1.metrics());
  auto check = [&](const char* who, const exposition& e,
                   std::initializer_list<const char*> relevant) {
    for (auto& [family, type] : docs) {
      if (!starts_with_any(family, relevant))
        continue;
      // worker.v1 has no streaming RPC: the worker has no stream messages to count.
      if (std::string(who) == "gpu-worker" && family == "embed_grpc_server_stream_messages_total")
        continue;
      auto s = e.series.find(family);
      EXPECT_TRUE(s != e.series.end() && !s->second.empty())
          << who << ": documented family " << family << " has no series after traffic";
    }
    for (auto& [family, type] : e.types) {
      auto d = docs.find(family);
      if (d == docs.end()) {
        ADD_FAILURE() << who << " exports " << family << ", which metrics/README.md does not document";
        continue;
      }
      EXPECT_EQ(d->second, type) << who << ": " << family << " type";
    }
  };
  check("embedd", ge,
        {"embed_grpc_server_", "embed_grpc_client_", "embed_pipeline_", "embed_cache_",
         "embed_rerank_", "process_"});
  check("gpu-worker", we, {"embed_gpu_", "embed_grpc_server_", "process_"});
  std::printf("embedd exports %zu families, gpu-worker %zu, after %llu requests\n",
              ge.types.size(), we.types.size(),
              static_cast<unsigned long long>(sent_count.load()));
}
