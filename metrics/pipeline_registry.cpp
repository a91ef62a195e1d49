#include "metrics/pipeline_registry.hpp"

namespace embed::metrics {

const std::vector<std::string>& pipeline_stages() {
  static const std::vector<std::string> stages{"validate", "tokenize", "cache_lookup", "dispatch",
                                               "infer",    "score",    "assemble",     "store"};
  return stages;
}

pipeline_registry::pipeline_registry(base_registry& base, const registry_options&)
    : stage_(label_domain::closed("stage", pipeline_stages())),
      outcome_(label_domain::closed("outcome", {"ok", "error", "cancelled", "rejected"})),
      pipeline_(label_domain::closed("pipeline", {"embed", "rerank"})) {
  executions_ = base.counter("pipeline_stage_executions_total", "Stage executions, by outcome.",
                             {stage_, outcome_});
  duration_ = base.histogram("pipeline_stage_duration_seconds", "Wall time of one stage execution.",
                             {stage_}, latency_buckets());
  in_flight_ =
      base.gauge("pipeline_in_flight_requests", "Requests inside a pipeline now.", {pipeline_});
  queue_depth_ =
      base.gauge("pipeline_queue_depth", "Work items waiting in front of a stage.", {stage_});
}

void pipeline_registry::record(const metric::stage_done& event) {
  executions_.at({event.stage, event.outcome}).Increment();
  duration_.at({event.stage}).Observe(event.seconds);
}

void pipeline_registry::record(const metric::in_flight& event) {
  in_flight_.at({event.pipeline}).Increment(static_cast<double>(event.delta));
}

void pipeline_registry::record(const metric::stage_queue_depth& event) {
  queue_depth_.at({event.stage}).Increment(static_cast<double>(event.delta));
}

} // namespace embed::metrics
