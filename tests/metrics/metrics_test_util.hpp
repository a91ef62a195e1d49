#pragma once
// Helpers for the metrics tests: flatten a registry into "name{labels}" -> value, and wait for a
// condition with a deadline (actors run on their own threads; no sleeps as synchronisation).

#include "messages/type_ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <prometheus/collectable.h>

#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace embed::metrics::test {

using snapshot = std::map<std::string, double>;

inline std::string series_key(const std::string& name, const prometheus::ClientMetric& m,
                              const std::string& extra = {}) {
  std::string key = name + "{";
  bool first = true;
  for (auto& l : m.label) { // prometheus-cpp keeps labels sorted by name
    key += (first ? "" : ",") + l.name + "=\"" + l.value + "\"";
    first = false;
  }
  if (!extra.empty())
    key += (first ? "" : ",") + extra;
  return key + "}";
}

inline std::string format_le(double bound) {
  std::ostringstream out;
  out << bound;
  return out.str();
}

/// Every sample of every family, histograms expanded to _bucket/_sum/_count.
inline snapshot take_snapshot(const prometheus::Collectable& registry) {
  snapshot out;
  for (auto& family : registry.Collect()) {
    for (auto& m : family.metric) {
      switch (family.type) {
      case prometheus::MetricType::Counter:
        out[series_key(family.name, m)] = m.counter.value;
        break;
      case prometheus::MetricType::Gauge: out[series_key(family.name, m)] = m.gauge.value; break;
      case prometheus::MetricType::Histogram:
        out[series_key(family.name + "_count", m)] = static_cast<double>(m.histogram.sample_count);
        out[series_key(family.name + "_sum", m)] = m.histogram.sample_sum;
        for (auto& b : m.histogram.bucket)
          out[series_key(family.name + "_bucket", m,
                         "le=\"" +
                             (b.upper_bound == std::numeric_limits<double>::infinity()
                                  ? std::string{"+Inf"}
                                  : format_le(b.upper_bound)) +
                             "\"")] = static_cast<double>(b.cumulative_count);
        break;
      default: break;
      }
    }
  }
  return out;
}

/// Samples whose value differs from (or is missing in) `before`.
inline snapshot diff(const snapshot& before, const snapshot& after) {
  snapshot out;
  for (auto& [key, value] : after) {
    auto i = before.find(key);
    if (i == before.end() || i->second != value)
      out[key] = value;
  }
  return out;
}

/// The family (metric name before '{') of every key.
inline std::set<std::string> names_of(const snapshot& s) {
  std::set<std::string> out;
  for (auto& [key, value] : s)
    out.insert(key.substr(0, key.find('{')));
  return out;
}

/// Polls `done` until it holds or `timeout` passes; true if it held.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::microseconds{200}); // poll interval, not a sync
  }
  return true;
}

/// An actor system configured like the real processes (fresh config per system).
struct system_holder {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  system_holder() {
    embed::register_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

} // namespace embed::metrics::test
