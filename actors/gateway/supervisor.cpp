#include "actors/gateway/supervisor.hpp"

#include "actors/inspect/probe.hpp"

#include "logging/log.hpp"
#include "messages/error.hpp"

#include <caf/system_messages.hpp>

#include <algorithm>

namespace embed {

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;
using breaker = supervisor_state::breaker;
using clock = std::chrono::steady_clock;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Which outcomes of a call count against the worker's breaker (docs/architecture.md, "Circuit
// breaker"): only the worker's fault. A lost connection, an unreachable worker, a broken or
// malformed answer (worker_unavailable, internal) always count; an expired deadline counts only
// when it was the gateway's own --worker-timeout-ms: a deadline the client chose, a cancellation,
// a refusal caused by the request's content, and an overloaded queue never do.
bool opens_breaker(ec code, bool client_deadline) {
  switch (code) {
  case ec::worker_unavailable:
  case ec::internal: return true;
  case ec::deadline_exceeded: return !client_deadline;
  default: return false;
  }
}

// A call worth trying on another worker: a failure of that worker, a full queue, or the gateway's
// own timeout. A client's deadline that passed leaves no time to retry in anyway.
bool retryable(ec code, bool client_deadline) {
  return opens_breaker(code, client_deadline) || code == ec::overloaded;
}

// What `embedctl top` shows for the supervisor: every breaker and its failure count.
void publish(self_ptr self) {
  auto& st = self->state;
  std::map<std::string, std::string> state;
  for (auto& [addr, ep] : st.endpoints)
    state["breaker:" + addr] = std::string(to_string(ep.state)) +
                               " fails=" + std::to_string(ep.consecutive_failures) + "/" +
                               std::to_string(st.cfg.failure_threshold) +
                               " inflight=" + std::to_string(ep.in_flight);
  state["routed"] = std::to_string(st.routed);
  state["retries"] = std::to_string(st.retries);
  st.probe->set_state(std::move(state));
}

void update_health(self_ptr self) {
  auto& st = self->state;
  publish(self);
  bool any = std::any_of(st.endpoints.begin(), st.endpoints.end(),
                         [](auto& kv) { return kv.second.state == breaker::closed; });
  if (any != st.healthy) {
    st.healthy = any;
    spdlog::info("{} GPU worker reachable: health is now {}", any ? "a" : "no",
                 any ? "SERVING" : "NOT_SERVING");
    if (st.on_health)
      st.on_health(any);
  }
}

void set_state(self_ptr self, supervisor_state::endpoint& ep, breaker to, const std::string& why) {
  if (ep.state == to)
    return;
  auto from = ep.state;
  ep.state = to;
  if (to == breaker::open)
    ep.opened_at = clock::now();
  auto log_level = to == breaker::open ? spdlog::level::warn : spdlog::level::info;
  spdlog::log(log_level, "breaker {}: {} -> {}{}{}", ep.address, to_string(from), to_string(to),
              why.empty() ? "" : ": ", why);
  if (self->state.metrics)
    self->send(self->state.metrics, metric::breaker_state{ep.address, to_string(to)});
  update_health(self);
}

void record_success(self_ptr self, supervisor_state::endpoint& ep) {
  ep.consecutive_failures = 0;
  if (ep.state != breaker::closed && ep.verified)
    set_state(self, ep, breaker::closed, "call succeeded");
}

void record_failure(self_ptr self, supervisor_state::endpoint& ep, const caf::error& err) {
  ++ep.failures;
  publish(self);
  ++ep.consecutive_failures;
  ep.last_error = message_of(err);
  if (ep.state == breaker::closed && self->state.cfg.breaker_enabled &&
      ep.consecutive_failures >= self->state.cfg.failure_threshold)
    set_state(self, ep, breaker::open,
              std::to_string(ep.consecutive_failures) +
                  " consecutive failures, last: " + ep.last_error);
  else if (ep.state == breaker::half_open)
    set_state(self, ep, breaker::open, "probe failed: " + ep.last_error);
}

void probe(self_ptr self, const std::string& address) {
  auto& ep = self->state.endpoints.at(address);
  if (ep.probing)
    return;
  ep.probing = true;
  ep.last_probe = clock::now();
  auto timeout = self->state.cfg.client.probe_timeout + std::chrono::seconds(1);
  self->request(ep.client, timeout, atom::info_v)
      .then(
          [self, address](worker_info& info) {
            auto probe_scope = probes::scope(self);
            auto i = self->state.endpoints.find(address);
            if (i == self->state.endpoints.end())
              return;
            auto& ep = i->second;
            ep.probing = false;
            const auto& want = self->state.cfg.tokenizer_hash;
            if (!want.empty() && info.tokenizer_hash != want) {
              ep.verified = false;
              ep.last_error = "refused: its tokenizer hash '" + info.tokenizer_hash +
                              "' differs from the gateway's '" + want +
                              "'; text would be embedded with the wrong vocabulary";
              spdlog::error("worker {} {}", address, ep.last_error);
              ep.state = breaker::half_open; // force the transition below to log and count
              set_state(self, ep, breaker::open, ep.last_error);
              return;
            }
            if (!ep.verified)
              spdlog::info("worker {} serves {} (dimension {}, {} on {}{})", address, info.model_id,
                           info.dimension, info.dtype, info.device,
                           info.trained ? "" : ", UNTRAINED");
            ep.verified = true;
            ep.info = std::move(info);
            ep.consecutive_failures = 0;
            set_state(self, ep, breaker::closed, "probe succeeded");
          },
          [self, address](caf::error& err) {
            auto probe_scope = probes::scope(self);
            auto i = self->state.endpoints.find(address);
            if (i == self->state.endpoints.end())
              return;
            auto& ep = i->second;
            ep.probing = false;
            ep.last_error = message_of(err);
            if (ep.state == breaker::closed && !self->state.cfg.breaker_enabled) {
              ++ep.failures; // --no-breaker: a verified worker stays in rotation
            } else if (ep.state == breaker::half_open || ep.state == breaker::closed) {
              // A closed endpoint that fails its health probe is unreachable: no traffic needed
              // to find out, and health stops claiming SERVING for a dead fleet.
              ++ep.failures;
              set_state(self, ep, breaker::open, "health probe failed: " + ep.last_error);
            } else {
              ep.opened_at = clock::now(); // still open: restart the cool-down
            }
          });
}

void add_endpoint(self_ptr self, const std::string& address) {
  auto& st = self->state;
  auto cfg = st.cfg.client;
  cfg.endpoint = address;
  supervisor_state::endpoint ep;
  ep.address = address;
  ep.client = spawn_gpu_client(self->system(), cfg, st.metrics);
  self->monitor(ep.client);
  ep.state = breaker::half_open;
  st.endpoints.emplace(address, std::move(ep));
  spdlog::info("worker endpoint {} added; probing it before it gets traffic", address);
  if (st.metrics)
    self->send(st.metrics, metric::breaker_state{address, "half_open"});
  probe(self, address);
}

void remove_endpoint(self_ptr self, const std::string& address) {
  auto i = self->state.endpoints.find(address);
  if (i == self->state.endpoints.end())
    return;
  spdlog::info("worker endpoint {} removed", address);
  self->demonitor(i->second.client.address());
  self->send_exit(i->second.client, caf::exit_reason::user_shutdown);
  self->state.endpoints.erase(i);
  update_health(self);
}

void route(self_ptr self, uint64_t id);

void finish(self_ptr self, uint64_t id, caf::expected<worker_output> out) {
  auto i = self->state.jobs.find(id);
  if (i == self->state.jobs.end())
    return;
  if (out)
    i->second.promise.deliver(std::move(*out));
  else
    i->second.promise.deliver(out.error());
  self->state.jobs.erase(i);
}

void no_endpoint(self_ptr self, uint64_t id) {
  auto& st = self->state;
  auto& p = st.jobs.at(id);
  if (p.last_error)
    return finish(self, id, p.last_error);
  if (st.endpoints.empty())
    return finish(self, id,
                  make_error(ec::worker_unavailable,
                             "no GPU worker available: no worker endpoints are configured or "
                             "discovered"));
  size_t open = 0, half = 0;
  for (auto& [_, ep] : st.endpoints) {
    open += ep.state == breaker::open ? 1 : 0;
    half += ep.state == breaker::half_open ? 1 : 0;
  }
  finish(self, id,
         make_error(ec::circuit_open, "no GPU worker available: " +
                                          std::to_string(st.endpoints.size()) + " endpoint(s), " +
                                          std::to_string(open) + " with an open circuit breaker, " +
                                          std::to_string(half) + " being probed; retry shortly"));
}

void route(self_ptr self, uint64_t id) {
  auto& st = self->state;
  auto pi = st.jobs.find(id);
  if (pi == st.jobs.end())
    return;
  auto& p = pi->second;
  if (p.job.deadline_ns != 0 && p.job.deadline_ns <= now_ns())
    return finish(self, id, make_error(ec::deadline_exceeded, "deadline passed before dispatch"));
  // Least-loaded closed endpoint; ties go round-robin, so that a sequential caller (always one
  // call in flight) still spreads over every worker.
  supervisor_state::endpoint* best = nullptr;
  auto n = st.endpoints.size();
  auto start = n == 0 ? 0 : st.routed % n;
  auto it = st.endpoints.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(start));
  for (size_t k = 0; k < n; ++k, ++it) {
    if (it == st.endpoints.end())
      it = st.endpoints.begin();
    auto& [addr, ep] = *it;
    if (ep.state != breaker::closed || p.tried.count(addr) != 0)
      continue;
    if (best == nullptr || ep.in_flight < best->in_flight)
      best = &ep;
  }
  if (best == nullptr)
    return no_endpoint(self, id);
  auto address = best->address;
  ++best->in_flight;
  ++best->calls;
  p.tried.insert(address);
  p.current = address;
  ++p.attempts;
  ++st.routed;
  publish(self); // the console's routed / inflight stay current
  // The gpu_client answers by the call's gRPC deadline (the client's, or --worker-timeout-ms
  // without one); this bound only catches a client actor that never answers.
  const bool client_deadline = p.job.deadline_ns != 0;
  auto timeout = st.cfg.client.call_timeout + std::chrono::seconds(5);
  if (client_deadline)
    timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::nanoseconds(p.job.deadline_ns - now_ns())) +
              std::chrono::seconds(5);
  self->request(best->client, timeout, p.job)
      .then(
          [self, id, address](worker_output& out) {
            auto probe_scope = probes::scope(self);
            auto& st = self->state;
            if (auto e = st.endpoints.find(address); e != st.endpoints.end()) {
              --e->second.in_flight;
              record_success(self, e->second);
              publish(self);
            }
            finish(self, id, std::move(out));
          },
          [self, id, address, client_deadline](caf::error& err) {
            auto probe_scope = probes::scope(self);
            auto& st = self->state;
            auto code = code_of(err);
            if (auto e = st.endpoints.find(address); e != st.endpoints.end()) {
              --e->second.in_flight;
              if (opens_breaker(code, client_deadline))
                record_failure(self, e->second, err);
            }
            auto pi = st.jobs.find(id);
            if (pi == st.jobs.end())
              return; // cancelled meanwhile
            auto& p = pi->second;
            log::correlation_scope scope(p.job.correlation_id);
            p.last_error = err;
            bool time_left = p.job.deadline_ns == 0 || p.job.deadline_ns > now_ns();
            if (!retryable(code, client_deadline) || p.attempts > st.cfg.max_retries || !time_left)
              return finish(self, id, err);
            if (st.metrics)
              self->send(
                  st.metrics,
                  metric::client_retry{address, p.job.kind == job_kind::embed ? "Embed" : "Score"});
            ++st.retries;
            publish(self);
            // Backoff with jitter in [0.5, 1.5) x base, so that retries of a burst spread out.
            std::uniform_real_distribution<double> jitter(0.5, 1.5);
            auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
                st.cfg.retry_backoff * jitter(st.rng));
            spdlog::debug("retrying job {} elsewhere in {} ms after: {}", id, delay.count(),
                          message_of(err));
            self->delayed_send(self, delay, atom::retry_v, id);
          });
}

} // namespace

const char* to_string(supervisor_state::breaker b) {
  switch (b) {
  case breaker::closed: return "closed";
  case breaker::open: return "open";
  case breaker::half_open: return "half_open";
  }
  return "unknown";
}

caf::error supervisor_config::validate() const {
  if (failure_threshold == 0)
    return make_error(ec::invalid_argument, "breaker failure threshold must be > 0");
  if (cool_down.count() <= 0 || tick_interval.count() <= 0)
    return make_error(ec::invalid_argument, "breaker cool-down and tick interval must be > 0");
  if (client.call_timeout.count() <= 0 || client.probe_timeout.count() <= 0)
    return make_error(ec::invalid_argument, "worker call and probe timeouts must be > 0");
  return {};
}

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self, supervisor_config cfg,
           http_metrics_actor metrics, std::function<void(bool)> on_health) {
  self->state.probe = probes::attach(self, "supervisor", "supervisor");
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.metrics = std::move(metrics);
  st.on_health = std::move(on_health);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (auto& [addr, ep] : st.endpoints) {
      if (ep.client.address() != dm.source)
        continue;
      // A crashed client is replaced; its calls failed and were retried by their callers.
      spdlog::warn("gpu client for {} went down ({}); respawning it", addr,
                   self->system().render(dm.reason));
      auto ccfg = st.cfg.client;
      ccfg.endpoint = addr;
      ep.client = spawn_gpu_client(self->system(), ccfg, st.metrics);
      self->monitor(ep.client);
      ep.in_flight = 0;
      break;
    }
  });
  self->delayed_send(self, st.cfg.tick_interval, atom::tick_v);
  return {
      [self](worker_job& job) -> caf::result<worker_output> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto id = job.id;
        if (st.jobs.count(id) != 0)
          return make_error(ec::internal, "duplicate job id " + std::to_string(id));
        if (auto c = std::find(st.cancelled_early.begin(), st.cancelled_early.end(), id);
            c != st.cancelled_early.end()) {
          st.cancelled_early.erase(c);
          return make_error(ec::cancelled, "the caller cancelled the request");
        }
        supervisor_state::pending p;
        p.job = std::move(job);
        p.promise = self->make_response_promise<worker_output>();
        auto rp = p.promise;
        st.jobs.emplace(id, std::move(p));
        route(self, id);
        return rp;
      },
      [self](atom::cancel, uint64_t id) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto i = st.jobs.find(id);
        if (i == st.jobs.end()) {
          // Not dispatched yet (still tokenizing): remember it, so that the job is refused.
          st.cancelled_early.push_back(id);
          if (st.cancelled_early.size() > supervisor_state::max_cancelled_early)
            st.cancelled_early.pop_front();
          return;
        }
        if (auto e = st.endpoints.find(i->second.current); e != st.endpoints.end())
          self->send(e->second.client, atom::cancel_v, id);
        finish(self, id, make_error(ec::cancelled, "the caller cancelled the request"));
      },
      [self](atom::put, std::vector<std::string>& addresses) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        std::set<std::string> want(addresses.begin(), addresses.end());
        std::vector<std::string> gone;
        for (auto& [addr, _] : st.endpoints)
          if (want.count(addr) == 0)
            gone.push_back(addr);
        for (auto& addr : gone)
          remove_endpoint(self, addr);
        for (auto& addr : want)
          if (st.endpoints.count(addr) == 0)
            add_endpoint(self, addr);
      },
      [self](atom::status) -> std::vector<endpoint_status> {
        auto probe_scope = probes::scope(self);
        std::vector<endpoint_status> out;
        for (auto& [addr, ep] : self->state.endpoints) {
          endpoint_status s;
          s.endpoint = addr;
          s.state = to_string(ep.state);
          s.consecutive_failures = ep.consecutive_failures;
          s.in_flight = ep.in_flight;
          s.calls = ep.calls;
          s.failures = ep.failures;
          s.last_error = ep.last_error;
          s.model_id = ep.info.model_id;
          out.push_back(std::move(s));
        }
        return out;
      },
      [self](atom::info) -> caf::result<worker_info> {
        auto probe_scope = probes::scope(self);
        for (auto& [addr, ep] : self->state.endpoints)
          if (ep.state == breaker::closed && ep.verified)
            return ep.info;
        return make_error(ec::worker_unavailable, "no GPU worker is reachable yet");
      },
      [self](atom::tick) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto now = clock::now();
        for (auto& [addr, ep] : st.endpoints) {
          // An endpoint that never answered yet (a worker still starting) is probed every few
          // ticks rather than after the full cool-down.
          auto wait = ep.verified ? st.cfg.cool_down : 4 * st.cfg.tick_interval;
          if (ep.state == breaker::open && !ep.probing && now - ep.opened_at >= wait) {
            set_state(self, ep, breaker::half_open, "cool-down over; probing");
            probe(self, addr);
          } else if (ep.state == breaker::half_open && !ep.probing) {
            probe(self, addr);
          } else if (ep.state == breaker::closed && !ep.probing &&
                     now - ep.last_probe >= st.cfg.health_interval) {
            probe(self, addr);
          }
        }
        self->delayed_send(self, st.cfg.tick_interval, atom::tick_v);
      },
      [self](atom::retry, uint64_t id) { route(self, id); },
  };
}

caf::expected<supervisor_actor> spawn_supervisor(caf::actor_system& sys, supervisor_config cfg,
                                                 http_metrics_actor metrics,
                                                 std::function<void(bool)> on_health) {
  if (auto err = cfg.validate())
    return err;
  return sys.spawn(supervisor, std::move(cfg), std::move(metrics), std::move(on_health));
}

} // namespace embed
