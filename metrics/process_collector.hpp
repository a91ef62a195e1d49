#pragma once
// The standard process_* metrics (as the Go and Python clients export them), read from /proc on
// each scrape so that dashboards and alerts written for any Prometheus client work here too.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace embed::metrics {

class process_collector : public prometheus::Collectable {
public:
  std::vector<prometheus::MetricFamily> Collect() const override;

  /// The family names Collect() returns (for the README check).
  static const std::vector<std::string>& family_names();
};

} // namespace embed::metrics
