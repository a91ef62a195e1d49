#include "metrics/rerank_registry.hpp"

#include <algorithm>
#include <cmath>

namespace embed::metrics {

rerank_registry::rerank_registry(base_registry& base, const registry_options& options)
    : model_(label_domain::bounded("model", options.max_models)),
      outcome_(label_domain::closed("outcome", {"ok", "error", "cancelled", "rejected"})) {
  requests_ = base.counter("rerank_requests_total", "Rerank requests finished, by outcome.",
                           {model_, outcome_});
  pairs_ = base.counter("rerank_pairs_total", "Query-document pairs scored.", {model_});
  duration_ = base.histogram("rerank_duration_seconds", "Wall time of one rerank request.",
                             {model_}, latency_buckets());
  batch_size_ = base.histogram("rerank_batch_size_pairs", "Pairs per rerank request.", {model_},
                               size_buckets(1024));
  scores_ = base.histogram("rerank_score", "Relevance scores returned (sigmoid, in [0, 1]).",
                           {model_}, unit_interval_buckets());
}

void rerank_registry::record(const metric::rerank_done& event) {
  requests_.at({event.model, event.outcome}).Increment();
  duration_.at({event.model}).Observe(event.seconds);
  if (event.outcome != "ok")
    return; // a failed request scored nothing worth counting
  pairs_.at({event.model}).Increment(event.pairs);
  batch_size_.at({event.model}).Observe(event.pairs);
  if (event.scores.empty())
    return;
  // One bucket pass for all scores: a request may carry hundreds of them.
  static const auto bounds = unit_interval_buckets();
  std::vector<double> increments(bounds.size() + 1, 0.0);
  double sum = 0;
  for (float s : event.scores) {
    if (std::isnan(s))
      continue; // a NaN would poison the sum for good
    double v = std::clamp(static_cast<double>(s), 0.0, 1.0);
    auto bucket = std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin();
    increments[static_cast<size_t>(bucket)] += 1;
    sum += v;
  }
  scores_.at({event.model}).ObserveMultiple(increments, sum);
}

} // namespace embed::metrics
