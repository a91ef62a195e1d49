#include "actors/gateway/embedding_stage.hpp"

#include "actors/inspect/probe.hpp"

#include "actors/gateway/cache_key.hpp"
#include "logging/log.hpp"
#include "messages/error.hpp"
#include "messages/validate.hpp"
#include "tokenizer/tokenizer.hpp"

#include <unordered_map>

namespace embed {

namespace {

using self_ptr = embedding_stage_actor::stateful_pointer<embedding_stage_state>;
using clock = std::chrono::steady_clock;

double ms_since(clock::time_point t) {
  return std::chrono::duration<double, std::milli>(clock::now() - t).count();
}

struct key_hash {
  size_t operator()(const cache_key& k) const { return static_cast<size_t>(k.lo ^ k.hi); }
};

} // namespace

// Everything one request carries between its asynchronous steps.
struct stage_request {
  embedding_request req;
  caf::typed_response_promise<embedding_result> promise;
  bool tokenize_only = false;
  caf::typed_response_promise<packed_sequences> tokens_promise;
  clock::time_point start = clock::now();
  worker_info model;
  uint32_t max_tokens = 0;
  std::vector<std::vector<uint32_t>> ids; // per input
  std::vector<cache_key> unique_keys;     // deduplicated, in first-seen order
  std::vector<size_t> key_of_input;       // input -> index into unique_keys
  embedding_result result;
  std::vector<uint8_t> filled;       // per unique key
  std::vector<float> unique_vectors; // per unique key, result.dimension each
  clock::time_point lookup_start;    // when its cache lookup was sent
};

namespace {

using request_ptr = std::shared_ptr<stage_request>;

std::string& metric_key(metric::in_flight& e) {
  return e.pipeline;
}
std::string& metric_key(metric::stage_queue_depth& e) {
  return e.stage;
}

void schedule_tick(self_ptr self) {
  auto& st = self->state;
  if (st.tick_scheduled)
    return;
  auto& m = st.metrics_pending;
  if (st.lookups.empty() && m.done.empty() && m.in_flights.empty() && m.depths.empty())
    return;
  st.tick_scheduled = true;
  self->delayed_send(self, st.cfg.tick, atom::tick_v);
}

void flush_metrics(self_ptr self) {
  auto& st = self->state;
  auto& m = st.metrics_pending;
  if (m.done.empty() && m.in_flights.empty() && m.depths.empty())
    return;
  metric::pipeline_batch out;
  std::swap(out, m);
  if (st.metrics)
    self->send(st.metrics, std::move(out));
}

void stage_metric(self_ptr self, const char* stage, const char* outcome, double seconds) {
  auto& st = self->state;
  if (!st.metrics)
    return;
  st.metrics_pending.done.push_back({stage, outcome, seconds});
  if (st.metrics_pending.done.size() >= st.cfg.max_metric_batch)
    flush_metrics(self);
  else
    schedule_tick(self);
}

template <class Event>
void add_delta(std::vector<Event>& pending, std::string name, int64_t delta) {
  for (auto& e : pending)
    if (metric_key(e) == name) {
      e.delta += delta;
      return;
    }
  Event e;
  metric_key(e) = std::move(name);
  e.delta = delta;
  pending.push_back(std::move(e));
}

void in_flight(self_ptr self, int64_t delta) {
  auto& st = self->state;
  st.in_flight = static_cast<uint64_t>(static_cast<int64_t>(st.in_flight) + delta);
  st.probe->set_state(
      {{"in_flight", std::to_string(st.in_flight)}, {"requests", std::to_string(st.handled)}});
  if (st.metrics) {
    // Changes: every stage actor adds its own to the one gauge.
    add_delta(st.metrics_pending.in_flights, "embed", delta);
    // Requests the stage actors hold (tokenized, waiting on the cache or a worker).
    add_delta(st.metrics_pending.depths, "dispatch", delta);
    schedule_tick(self);
  }
}

void fail(self_ptr self, const request_ptr& r, const char* stage, caf::error err) {
  log::correlation_scope scope(r->req.correlation_id);
  auto code = code_of(err);
  spdlog::debug("{} failed at {}: {}", "embed", stage, message_of(err));
  stage_metric(self, stage, code == ec::cancelled ? "cancelled" : "error", 0);
  if (r->tokenize_only)
    r->tokens_promise.deliver(std::move(err));
  else
    r->promise.deliver(std::move(err));
  in_flight(self, -1);
}

void reply(self_ptr self, const request_ptr& r) {
  auto t0 = clock::now();
  auto& res = r->result;
  auto dim = res.dimension;
  res.vectors.resize(r->req.inputs.size() * static_cast<size_t>(dim));
  for (size_t i = 0; i < r->req.inputs.size(); ++i) {
    auto k = r->key_of_input[i];
    std::copy_n(r->unique_vectors.begin() + static_cast<std::ptrdiff_t>(k * dim), dim,
                res.vectors.begin() + static_cast<std::ptrdiff_t>(i * dim));
  }
  res.model = r->model.model_id;
  res.ns = r->req.ns;
  res.correlation_id = r->req.correlation_id;
  res.timings.total_ms = ms_since(r->start);
  stage_metric(self, "assemble", "ok", std::chrono::duration<double>(clock::now() - t0).count());
  r->promise.deliver(std::move(res));
  in_flight(self, -1);
}

void dispatch(self_ptr self, const request_ptr& r, std::vector<size_t> misses) {
  auto& st = self->state;
  worker_job job;
  job.id = r->req.request_id;
  job.kind = job_kind::embed;
  job.normalize = r->req.options.normalize;
  job.dimensions = r->req.options.dimensions;
  job.deadline_ns = r->req.deadline_ns;
  job.correlation_id = r->req.correlation_id;
  job.sequences.offsets.push_back(0);
  for (auto k : misses) {
    // The first input with this key carries its token ids.
    size_t input = 0;
    while (r->key_of_input[input] != k)
      ++input;
    const auto& ids = r->ids[input];
    for (auto id : ids)
      job.sequences.ids.push_back(static_cast<int32_t>(id));
    job.sequences.offsets.push_back(static_cast<int64_t>(job.sequences.ids.size()));
  }
  auto timeout = st.cfg.default_timeout;
  if (r->req.deadline_ns != 0) {
    auto left = std::chrono::nanoseconds(r->req.deadline_ns) -
                std::chrono::system_clock::now().time_since_epoch();
    timeout = std::chrono::duration_cast<std::chrono::milliseconds>(left) +
              std::chrono::milliseconds(1000);
  }
  auto t0 = clock::now();
  self->request(st.supervisor, timeout, std::move(job))
      .then(
          [self, r, misses, t0](worker_output& out) {
            auto probe_scope = probes::scope(self);
            auto& st = self->state;
            stage_metric(self, "infer", "ok",
                         std::chrono::duration<double>(clock::now() - t0).count());
            auto dim = r->result.dimension;
            if (out.dimension != dim || out.count != misses.size()) {
              if (st.cache)
                self->send(st.cache, atom::cancel_v, r->unique_keys);
              return fail(self, r, "infer",
                          make_error(ec::internal,
                                     "worker answered " + std::to_string(out.count) +
                                         " vectors of dimension " + std::to_string(out.dimension) +
                                         ", expected " + std::to_string(misses.size()) + " of " +
                                         std::to_string(dim)));
            }
            r->result.timings.queue_ms += out.queue_ms;
            r->result.timings.inference_ms += out.inference_ms;
            cache_store store;
            store.dimension = dim;
            for (size_t m = 0; m < misses.size(); ++m) {
              auto k = misses[m];
              std::copy_n(out.values.begin() + static_cast<std::ptrdiff_t>(m * dim), dim,
                          r->unique_vectors.begin() + static_cast<std::ptrdiff_t>(k * dim));
              store.keys.push_back(r->unique_keys[k]);
              size_t input = 0;
              while (r->key_of_input[input] != k)
                ++input;
              store.token_counts.push_back(r->result.token_counts[input]);
            }
            store.vectors = std::move(out.values);
            auto t1 = clock::now();
            if (st.cache)
              self->send(st.cache, atom::put_v, std::move(store));
            stage_metric(self, "store", "ok",
                         std::chrono::duration<double>(clock::now() - t1).count());
            reply(self, r);
          },
          [self, r, misses](caf::error& err) {
            auto probe_scope = probes::scope(self);
            auto& st = self->state;
            if (st.cache) {
              std::vector<cache_key> owed;
              for (auto k : misses)
                owed.push_back(r->unique_keys[k]);
              self->send(st.cache, atom::cancel_v, std::move(owed));
            }
            if (code_of(err) == ec::worker_unavailable || code_of(err) == ec::circuit_open)
              st.model.reset(); // learn the model again once a worker is back
            fail(self, r, "infer", std::move(err));
          });
}

// Lookups the cache has not answered within cache_timeout are computed without it.
void sweep(self_ptr self) {
  auto& st = self->state;
  auto now = clock::now();
  std::vector<request_ptr> late;
  for (auto it = st.lookups.begin(); it != st.lookups.end();) {
    if (now - it->second->lookup_start >= st.cfg.cache_timeout) {
      late.push_back(std::move(it->second));
      it = st.lookups.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& r : late) {
    log::correlation_scope scope(r->req.correlation_id);
    spdlog::warn("the cache did not answer a lookup in {} ms; computing without it",
                 st.cfg.cache_timeout.count());
    std::vector<size_t> all(r->unique_keys.size());
    for (size_t k = 0; k < all.size(); ++k)
      all[k] = k;
    dispatch(self, r, std::move(all));
  }
}

void lookup(self_ptr self, const request_ptr& r) {
  auto& st = self->state;
  auto all = [&] {
    std::vector<size_t> v(r->unique_keys.size());
    for (size_t k = 0; k < v.size(); ++k)
      v[k] = k;
    return v;
  };
  if (!st.cache)
    return dispatch(self, r, all());
  auto t0 = clock::now();
  auto lookup_id = ++st.next_lookup;
  r->lookup_start = t0;
  st.lookups.emplace(lookup_id, r);
  schedule_tick(self);
  self->request(st.cache, caf::infinite, atom::get_v, r->unique_keys)
      .then(
          [self, r, t0, lookup_id](cache_lookup_result& found) {
            auto probe_scope = probes::scope(self);
            if (self->state.lookups.erase(lookup_id) == 0)
              return; // given up by the sweep: already computed without the cache
            stage_metric(self, "cache_lookup", "ok",
                         std::chrono::duration<double>(clock::now() - t0).count());
            auto dim = r->result.dimension;
            std::vector<size_t> misses;
            size_t hit_index = 0;
            for (size_t k = 0; k < found.statuses.size(); ++k) {
              if (found.statuses[k] == cache_lookup_result::hit && found.dimension == dim) {
                std::copy_n(found.vectors.begin() +
                                static_cast<std::ptrdiff_t>(hit_index * found.dimension),
                            dim, r->unique_vectors.begin() + static_cast<std::ptrdiff_t>(k * dim));
                ++hit_index;
              } else {
                if (found.statuses[k] == cache_lookup_result::hit)
                  ++hit_index;
                misses.push_back(k);
              }
            }
            // Hits count per input: two identical inputs served from one cached entry are two hits.
            r->result.cached.assign(r->key_of_input.size(), 0);
            for (size_t i = 0; i < r->key_of_input.size(); ++i)
              if (std::find(misses.begin(), misses.end(), r->key_of_input[i]) == misses.end()) {
                ++r->result.cache_hits;
                r->result.cached[i] = 1;
              }
            if (misses.empty())
              return reply(self, r);
            dispatch(self, r, std::move(misses));
          },
          [self, r, all, lookup_id](caf::error& err) {
            auto probe_scope = probes::scope(self);
            if (self->state.lookups.erase(lookup_id) == 0)
              return;
            // The cache is an optimisation: if it fails, compute everything.
            spdlog::warn("cache lookup failed ({}); computing without it", message_of(err));
            dispatch(self, r, all());
          });
}

// Validation and tokenization: the synchronous part of a request.
caf::error prepare(self_ptr self, const request_ptr& r) {
  auto& st = self->state;
  auto limits = effective_limits(st.cfg.limits, r->model);
  auto t0 = clock::now();
  if (auto err = validate(r->req, limits))
    return err;
  if (!r->req.model.empty() && r->req.model != r->model.model_id)
    return make_error(ec::unknown_model,
                      "model: '" + r->req.model +
                          "' is not served here; available: " + r->model.model_id);
  auto t1 = clock::now();
  stage_metric(self, "validate", "ok", std::chrono::duration<double>(t1 - t0).count());
  auto instruction = resolve_instruction(r->req.options, limits);
  r->max_tokens = limits.max_tokens_per_input;
  tok::encode_options eo;
  eo.add_special_tokens = true;
  if (r->req.options.truncate) {
    eo.max_tokens = r->max_tokens;
    eo.side = r->req.options.direction == truncation_direction::left ? tok::truncation_side::left
                                                                     : tok::truncation_side::right;
  }
  auto n = r->req.inputs.size();
  r->ids.resize(n);
  r->result.token_counts.resize(n);
  std::unordered_map<cache_key, size_t, key_hash> seen;
  for (size_t i = 0; i < n; ++i) {
    auto text = apply_instruction(instruction, r->req.inputs[i]);
    auto ids = st.tokenizer->encode(text, eo);
    auto field = "inputs[" + std::to_string(i) + "]";
    if (!ids)
      return make_error(code_of(ids.error()), field + ": " + message_of(ids.error()));
    if (ids->empty())
      return make_error(ec::empty_input, field + ": no tokens");
    if (auto err = check_token_count(field, ids->size(), limits))
      return err;
    r->result.token_counts[i] = static_cast<uint32_t>(ids->size());
    r->ids[i] = std::move(*ids);
    auto key = make_cache_key(r->model.model_id, r->req.options, r->max_tokens, r->req.ns, text);
    auto [it, fresh] = seen.emplace(key, r->unique_keys.size());
    if (fresh)
      r->unique_keys.push_back(key);
    r->key_of_input.push_back(it->second);
  }
  auto t2 = clock::now();
  r->result.timings.tokenize_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  stage_metric(self, "tokenize", "ok", std::chrono::duration<double>(t2 - t1).count());
  r->result.dimension =
      r->req.options.dimensions != 0 ? r->req.options.dimensions : r->model.dimension;
  r->unique_vectors.resize(r->unique_keys.size() * static_cast<size_t>(r->result.dimension));
  return {};
}

void start(self_ptr self, const request_ptr& r) {
  log::correlation_scope scope(r->req.correlation_id);
  if (auto err = prepare(self, r))
    return fail(self, r, "validate", std::move(err));
  if (r->tokenize_only) {
    packed_sequences out;
    out.offsets.push_back(0);
    for (auto& ids : r->ids) {
      for (auto id : ids)
        out.ids.push_back(static_cast<int32_t>(id));
      out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
    }
    r->tokens_promise.deliver(std::move(out));
    in_flight(self, -1);
    return;
  }
  lookup(self, r);
}

// Runs `start` once the fleet's model is known (asked once, then remembered).
void with_model(self_ptr self, const request_ptr& r) {
  auto& st = self->state;
  ++st.handled;
  in_flight(self, +1);
  if (st.model) {
    r->model = *st.model;
    return start(self, r);
  }
  self->request(st.supervisor, std::chrono::seconds(10), atom::info_v)
      .then(
          [self, r](worker_info& info) {
            auto probe_scope = probes::scope(self);
            self->state.model = info;
            r->model = std::move(info);
            start(self, r);
          },
          [self, r](caf::error& err) { fail(self, r, "validate", std::move(err)); });
}

} // namespace

std::string apply_instruction(const std::string& instruction, const std::string& text) {
  if (instruction.empty())
    return text;
  return "Instruct: " + instruction + "\nQuery:" + text;
}

request_limits effective_limits(const request_limits& configured, const worker_info& model) {
  auto l = configured;
  l.model_dimension = model.dimension;
  if (model.max_tokens != 0)
    l.max_tokens_per_input = std::min(l.max_tokens_per_input, model.max_tokens);
  return l;
}

embedding_stage_actor::behavior_type
embedding_stage(embedding_stage_actor::stateful_pointer<embedding_stage_state> self,
                stage_config cfg, std::shared_ptr<const tok::tokenizer> tokenizer,
                supervisor_actor supervisor, cache_actor cache, pipeline_metrics_actor metrics) {
  self->state.probe =
      probes::attach(self, "embedding_stage#" + std::to_string(self->id()), "embedding_stage");
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.tokenizer = std::move(tokenizer);
  st.supervisor = std::move(supervisor);
  st.cache = std::move(cache);
  st.metrics = std::move(metrics);
  // A stopping stage still sends the metric events it holds.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (!msg.reason)
      return; // a normal exit of a linked actor: CAF's default handler ignores it too
    flush_metrics(self);
    self->quit(msg.reason);
  });
  return {
      [self](embedding_request& req) -> caf::result<embedding_result> {
        auto probe_scope = probes::scope(self);
        auto r = std::make_shared<stage_request>();
        r->req = std::move(req);
        r->promise = self->make_response_promise<embedding_result>();
        with_model(self, r);
        return r->promise;
      },
      [self](atom::tokenize, embedding_request& req) -> caf::result<packed_sequences> {
        auto probe_scope = probes::scope(self);
        auto r = std::make_shared<stage_request>();
        r->req = std::move(req);
        r->tokenize_only = true;
        r->tokens_promise = self->make_response_promise<packed_sequences>();
        with_model(self, r);
        return r->tokens_promise;
      },
      [self](atom::tick) {
        auto probe_scope = probes::scope(self);
        self->state.tick_scheduled = false;
        flush_metrics(self);
        sweep(self);
        schedule_tick(self);
      },
  };
}

caf::expected<embedding_stage_actor>
spawn_embedding_stage(caf::actor_system& sys, stage_config cfg,
                      std::shared_ptr<const tok::tokenizer> tokenizer, supervisor_actor supervisor,
                      cache_actor cache, pipeline_metrics_actor metrics) {
  if (!tokenizer)
    return make_error(ec::invalid_argument, "the embedding stage needs a tokenizer");
  if (auto err = cfg.limits.validate())
    return err;
  return sys.spawn(embedding_stage, std::move(cfg), std::move(tokenizer), std::move(supervisor),
                   std::move(cache), std::move(metrics));
}

} // namespace embed
