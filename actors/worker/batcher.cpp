#include "actors/worker/batcher.hpp"

#include "actors/inspect/probe.hpp"

#include "logging/log.hpp"
#include "messages/error.hpp"

#include <algorithm>
#include <cmath>

namespace embed {

namespace {

using self_ptr = batcher_actor::stateful_pointer<batcher_state>;
using clock = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double ms_since(clock::time_point t) {
  return std::chrono::duration<double, std::milli>(clock::now() - t).count();
}

uint64_t waiting_jobs(const batcher_state& st) {
  uint64_t n = 0;
  for (auto& [id, e] : st.jobs)
    n += e.started ? 0 : 1;
  return n;
}

void report_depth(self_ptr self) {
  auto& st = self->state;
  st.probe->set_state({{"queue_requests", std::to_string(waiting_jobs(st))},
                       {"queue_tokens", std::to_string(st.queued_tokens)},
                       {"running", st.busy ? "yes" : "no"},
                       {"batches", std::to_string(st.batches)}});
  if (st.metrics)
    self->send(st.metrics, metric::queue_depth{st.cfg.device, st.cfg.model, waiting_jobs(st),
                                               st.queued_tokens});
}

void notify_drained(self_ptr self) {
  auto& st = self->state;
  if (st.jobs.empty() && !st.busy) {
    for (auto& rp : st.drain_waiters)
      rp.deliver(true);
    st.drain_waiters.clear();
  }
}

// Removes a job's queued sequences and answers it with an error.
void fail_job(self_ptr self, uint64_t id, caf::error err) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  if (i == st.jobs.end())
    return;
  for (auto p = st.queue.begin(); p != st.queue.end();) {
    if (p->job == id) {
      st.queued_tokens -= p->length;
      p = st.queue.erase(p);
    } else {
      ++p;
    }
  }
  i->second.promise.deliver(std::move(err));
  st.jobs.erase(i);
}

// Drops queued work whose deadline passed: it must not reach the model.
void drop_expired(self_ptr self) {
  auto& st = self->state;
  auto now = now_ns();
  std::vector<uint64_t> expired;
  for (auto& [id, e] : st.jobs)
    if (e.job.deadline_ns != 0 && e.job.deadline_ns <= now)
      expired.push_back(id);
  for (auto id : expired) {
    log::correlation_scope scope(st.jobs[id].job.correlation_id);
    spdlog::debug("dropping job {}: deadline passed while queued", id);
    fail_job(self, id, make_error(ec::deadline_exceeded, "deadline passed while queued"));
  }
}

bool same_group(const worker_job& a, const worker_job& b) {
  if (a.kind != b.kind)
    return false;
  return a.kind == job_kind::embed || (a.yes_id == b.yes_id && a.no_id == b.no_id);
}

// Post-processes a batch's rows into the jobs they belong to.
void deliver_rows(self_ptr self, const std::vector<batcher_state::pending>& picked,
                  const worker_output& out) {
  auto& st = self->state;
  for (size_t r = 0; r < picked.size(); ++r) {
    auto i = st.jobs.find(picked[r].job);
    if (i == st.jobs.end())
      continue; // cancelled while running
    auto& e = i->second;
    auto idx = picked[r].index;
    if (e.job.kind == job_kind::embed) {
      const float* row = out.values.data() + r * out.dimension;
      float* dst = e.out.values.data() + static_cast<size_t>(idx) * e.dimension;
      std::copy(row, row + e.dimension, dst);
      if (e.job.normalize) {
        double sum = 0;
        for (uint32_t k = 0; k < e.dimension; ++k)
          sum += static_cast<double>(dst[k]) * dst[k];
        auto inv = static_cast<float>(1.0 / std::max(std::sqrt(sum), 1e-12));
        for (uint32_t k = 0; k < e.dimension; ++k)
          dst[k] *= inv;
      }
    } else {
      e.out.values[idx] = out.values[r];
      e.out.yes_logits[idx] = out.yes_logits[r];
      e.out.no_logits[idx] = out.no_logits[r];
    }
    if (--e.remaining == 0) {
      e.promise.deliver(std::move(e.out));
      st.jobs.erase(i);
    }
  }
}

void dispatch(self_ptr self) {
  auto& st = self->state;
  if (st.busy)
    return;
  drop_expired(self);
  if (st.queue.empty()) {
    report_depth(self);
    notify_drained(self);
    return;
  }
  // Anchor: the oldest sequence (fairness). Then the queued sequences of the same kind whose
  // lengths are closest to it, while sequences x longest stays within the token budget.
  const auto anchor = st.queue.front();
  const auto& anchor_job = st.jobs.at(anchor.job).job;
  std::vector<size_t> candidates;
  for (size_t q = 0; q < st.queue.size(); ++q)
    if (same_group(st.jobs.at(st.queue[q].job).job, anchor_job))
      candidates.push_back(q);
  std::stable_sort(candidates.begin(), candidates.end(), [&](size_t a, size_t b) {
    auto da = std::abs(static_cast<int64_t>(st.queue[a].length) - anchor.length);
    auto db = std::abs(static_cast<int64_t>(st.queue[b].length) - anchor.length);
    return da < db;
  });
  std::vector<size_t> chosen;
  uint32_t longest = 0;
  for (auto q : candidates) {
    auto len = st.queue[q].length;
    auto l = std::max(longest, len);
    if (!chosen.empty() &&
        (chosen.size() + 1 > st.cfg.max_batch_requests ||
         static_cast<uint64_t>(l) * (chosen.size() + 1) > st.cfg.max_batch_tokens))
      continue;
    chosen.push_back(q);
    longest = l;
    if (chosen.size() >= st.cfg.max_batch_requests)
      break;
  }
  // Keep queue order inside the batch, then take the chosen entries out of the queue.
  std::sort(chosen.begin(), chosen.end());
  std::vector<batcher_state::pending> picked;
  worker_job batch;
  batch.kind = anchor_job.kind;
  batch.yes_id = anchor_job.yes_id;
  batch.no_id = anchor_job.no_id;
  batch.correlation_id = anchor_job.correlation_id;
  batch.sequences.offsets.push_back(0);
  for (auto q : chosen) {
    const auto& p = st.queue[q];
    auto& e = st.jobs.at(p.job);
    if (!e.started) {
      e.started = true;
      e.out.queue_ms = ms_since(e.enqueued);
    }
    const auto& s = e.job.sequences;
    batch.sequences.ids.insert(batch.sequences.ids.end(), s.ids.begin() + s.offsets[p.index],
                               s.ids.begin() + s.offsets[p.index + 1]);
    batch.sequences.offsets.push_back(static_cast<int64_t>(batch.sequences.ids.size()));
    picked.push_back(p);
    st.queued_tokens -= p.length;
  }
  for (auto it = chosen.rbegin(); it != chosen.rend(); ++it)
    st.queue.erase(st.queue.begin() + static_cast<std::ptrdiff_t>(*it));
  st.busy = true;
  ++st.batches;
  report_depth(self);
  self->request(st.holder, caf::infinite, atom::run_v, std::move(batch))
      .then(
          [self, picked](worker_output& out) {
            auto probe_scope = probes::scope(self);
            for (const auto& p : picked) {
              auto i = self->state.jobs.find(p.job);
              if (i != self->state.jobs.end())
                i->second.out.inference_ms += out.inference_ms;
            }
            deliver_rows(self, picked, out);
            self->state.busy = false;
            dispatch(self);
          },
          [self, picked](caf::error& err) {
            auto probe_scope = probes::scope(self);
            for (const auto& p : picked)
              fail_job(self, p.job, err);
            self->state.busy = false;
            dispatch(self);
          });
}

} // namespace

caf::error batcher_config::validate() const {
  if (max_batch_tokens == 0)
    return make_error(ec::invalid_argument, "--max-batch-tokens must be > 0");
  if (max_batch_requests == 0)
    return make_error(ec::invalid_argument, "--max-batch-requests must be > 0");
  if (max_queue_tokens < max_batch_tokens)
    return make_error(ec::invalid_argument, "--max-queue-tokens (" +
                                                std::to_string(max_queue_tokens) +
                                                ") must be >= --max-batch-tokens (" +
                                                std::to_string(max_batch_tokens) + ")");
  return {};
}

batcher_actor::behavior_type batcher(batcher_actor::stateful_pointer<batcher_state> self,
                                     model_holder_actor holder, batcher_config cfg,
                                     worker_limits limits, gpu_metrics_actor metrics) {
  self->state.probe = probes::attach(self, "batcher", "batcher");
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.limits = limits;
  // A sequence longer than a batch can hold could never run.
  st.limits.max_tokens = std::min<uint32_t>(limits.max_tokens, st.cfg.max_batch_tokens);
  st.holder = std::move(holder);
  st.metrics = std::move(metrics);
  st.probe->set_state(
      {{"queue_requests", "0"}, {"queue_tokens", "0"}, {"running", "no"}, {"batches", "0"}});
  return {
      [self](worker_job& job) -> caf::result<worker_output> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        log::correlation_scope scope(job.correlation_id);
        if (auto err = validate(job, st.limits))
          return err;
        uint64_t tokens = job.sequences.ids.size();
        if (tokens > st.cfg.max_queue_tokens) {
          // Not overload: even an empty queue could not take it, so "retry later" would never work.
          return make_error(ec::input_too_long,
                            "request of " + std::to_string(tokens) +
                                " tokens can never fit this worker's whole queue of " +
                                std::to_string(st.cfg.max_queue_tokens) +
                                " tokens (--max-queue-tokens): send fewer or shorter inputs "
                                "per request");
        }
        if (st.queued_tokens + tokens > st.cfg.max_queue_tokens) {
          spdlog::warn("rejecting job of {} tokens: queue holds {} of {} tokens", tokens,
                       st.queued_tokens, st.cfg.max_queue_tokens);
          return make_error(ec::overloaded,
                            "worker overloaded: its queue holds " +
                                std::to_string(st.queued_tokens) + " tokens, this request adds " +
                                std::to_string(tokens) + ", limit " +
                                std::to_string(st.cfg.max_queue_tokens) +
                                " (--max-queue-tokens); retry later or on another worker");
        }
        if (job.deadline_ns != 0 && job.deadline_ns <= now_ns())
          return make_error(ec::deadline_exceeded, "deadline passed before the job was queued");
        if (st.jobs.count(job.id) != 0)
          return make_error(ec::internal, "duplicate job id " + std::to_string(job.id));
        auto id = job.id;
        auto n = static_cast<uint32_t>(job.sequences.size());
        batcher_state::job_entry e;
        e.promise = self->make_response_promise<worker_output>();
        e.remaining = n;
        e.enqueued = clock::now();
        e.out.count = n;
        if (job.kind == job_kind::embed) {
          e.dimension = job.dimensions != 0 ? job.dimensions : st.limits.hidden_size;
          e.out.dimension = e.dimension;
          e.out.values.resize(static_cast<size_t>(n) * e.dimension);
        } else {
          e.out.values.resize(n);
          e.out.yes_logits.resize(n);
          e.out.no_logits.resize(n);
        }
        for (uint32_t i = 0; i < n; ++i)
          st.queue.push_back({id, i, static_cast<uint32_t>(job.sequences.length(i))});
        st.queued_tokens += tokens;
        e.job = std::move(job);
        auto rp = e.promise;
        st.jobs.emplace(id, std::move(e));
        dispatch(self);
        report_depth(self); // dispatch returns early while the model is busy
        return rp;
      },
      [self](atom::cancel, uint64_t id) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto i = st.jobs.find(id);
        if (i == st.jobs.end())
          return;
        log::correlation_scope scope(i->second.job.correlation_id);
        spdlog::debug("job {} cancelled by its caller", id);
        fail_job(self, id, make_error(ec::cancelled, "the caller cancelled the request"));
        report_depth(self);
        notify_drained(self);
      },
      [self](atom::limits) -> worker_limits { return self->state.limits; },
      [self](atom::status) -> caf::result<uint64_t, uint64_t> {
        auto probe_scope = probes::scope(self);
        return {waiting_jobs(self->state), self->state.queued_tokens};
      },
      [self](atom::drain) -> caf::result<bool> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        if (st.jobs.empty() && !st.busy)
          return true;
        auto rp = self->make_response_promise<bool>();
        st.drain_waiters.push_back(rp);
        return rp;
      },
  };
}

caf::expected<batcher_actor> spawn_batcher(caf::actor_system& sys, model_holder_actor holder,
                                           batcher_config cfg, worker_limits limits,
                                           gpu_metrics_actor metrics) {
  if (auto err = cfg.validate())
    return err;
  return sys.spawn(batcher, std::move(holder), std::move(cfg), limits, std::move(metrics));
}

} // namespace embed
