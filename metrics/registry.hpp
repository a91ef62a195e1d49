#pragma once
// The base registry: what every domain registry shares. One prometheus::Registry per process,
// the `embed_` naming and base units, bucket choices, and label domains that keep the number of
// series bounded whatever clients send. Domain registries (gpu_registry.hpp, ...) register their
// families here; the cardinality tests read the declared budgets and live series counts back.

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace embed::metrics {

/// Every family this project registers starts with this; process_* families are the exception
/// because Prometheus tooling expects those standard names.
inline constexpr std::string_view name_prefix = "embed_";

/// The label value that stands for "outside the allowed set".
inline constexpr std::string_view other_value = "other";

/// Latency buckets in seconds: 0.5 ms to 30 s, about 2-2.5x per step (15 buckets).
std::vector<double> latency_buckets();

/// Powers of two from 1 to `max` (sizes counted in sequences, pairs or tokens).
std::vector<double> size_buckets(double max);

/// 0.1, 0.2, ... 1.0: for ratios and scores in [0, 1].
std::vector<double> unit_interval_buckets();

/// Per-process caps for label values that are open but bounded (first N distinct values kept).
struct registry_options {
  size_t max_endpoints = 16; // worker endpoints a gateway may talk to
  size_t max_devices = 8;    // devices a worker may drive
  size_t max_models = 4;     // models a process may serve

  caf::error validate() const;
};

/// The values one label may take. Closed domains have a fixed list; bounded domains keep the first
/// `cap` distinct values they see. Anything else maps to the fallback. Not thread-safe: a domain
/// belongs to one domain registry, whose metrics actor is its only writer.
class label_domain {
public:
  /// A fixed set. `fallback` is used for values outside it (it may itself be in the set).
  static std::shared_ptr<label_domain> closed(std::string name, std::vector<std::string> values,
                                              std::string fallback = std::string{other_value});

  /// The first `cap` distinct values seen, then `other`.
  static std::shared_ptr<label_domain> bounded(std::string name, size_t cap);

  const std::string& name() const { return name_; }
  bool is_closed() const { return closed_; }
  /// Closed: the allowed values; bounded: the values admitted so far.
  const std::vector<std::string>& values() const { return values_; }
  const std::string& fallback() const { return fallback_; }

  /// Maps a raw value into the domain.
  const std::string& admit(std::string_view value);

  /// How many distinct values admit() can ever return.
  size_t cardinality() const;

private:
  label_domain(std::string name, bool closed, std::vector<std::string> values, size_t cap,
               std::string fallback);

  std::string name_;
  bool closed_;
  std::vector<std::string> values_;
  size_t cap_;
  std::string fallback_;
  bool fallback_in_set_;
};

using label_domain_ptr = std::shared_ptr<label_domain>;

enum class family_type { counter, gauge, histogram };

const char* to_string(family_type type);

/// What the base registry knows about one family (for docs, budgets and cardinality tests).
struct family_info {
  std::string name;
  std::string help;
  family_type type;
  std::vector<label_domain_ptr> labels;
  std::vector<double> buckets; // histograms only
  size_t max_series = 1;       // declared budget: product of label cardinalities
};

/// A family whose label values pass through label domains before they reach prometheus-cpp.
/// Single writer (the domain's actor), like the label domains it uses.
template <class T>
class guarded_family {
public:
  guarded_family() = default;
  guarded_family(prometheus::Family<T>* family, std::vector<label_domain_ptr> labels,
                 std::vector<double> buckets)
      : family_(family), labels_(std::move(labels)), buckets_(std::move(buckets)) {}

  /// The series for these raw label values, in declaration order; values outside a label's
  /// domain become its fallback. The number of values must match the declared labels.
  T& at(std::initializer_list<std::string_view> values) {
    // Admitted values are bounded, so this cache is too (at most max_series entries). It saves
    // building a prometheus::Labels map and the family's locked lookup on every event.
    key_.clear();
    auto value = values.begin();
    for (auto& domain : labels_) {
      std::string_view raw = value != values.end() ? *value++ : std::string_view{};
      key_ += domain->admit(raw);
      key_ += '\x1f'; // unit separator: cannot be confused with value text
    }
    if (auto i = series_.find(key_); i != series_.end())
      return *i->second;
    prometheus::Labels labels;
    value = values.begin();
    for (auto& domain : labels_) {
      std::string_view raw = value != values.end() ? *value++ : std::string_view{};
      labels.emplace(domain->name(), domain->admit(raw));
    }
    T* series;
    if constexpr (std::is_same_v<T, prometheus::Histogram>)
      series = &family_->Add(labels, buckets_);
    else
      series = &family_->Add(labels);
    series_.emplace(key_, series);
    return *series;
  }

  /// Drops a series (e.g. a model-info series replaced by a reload).
  void remove(T& series) {
    for (auto i = series_.begin(); i != series_.end(); ++i)
      if (i->second == &series) {
        series_.erase(i);
        break;
      }
    family_->Remove(&series);
  }

private:
  prometheus::Family<T>* family_ = nullptr;
  std::vector<label_domain_ptr> labels_;
  std::vector<double> buckets_;
  std::unordered_map<std::string, T*> series_; // admitted values joined -> series
  std::string key_;                            // reused to avoid an allocation per event
};

/// One per process: owns the prometheus::Registry and the table of registered families.
class base_registry {
public:
  explicit base_registry(
      std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>());

  const std::shared_ptr<prometheus::Registry>& prometheus() const { return registry_; }

  /// Registers `embed_<suffix>`. Names must be unique per process; a clash is a programming error
  /// (prometheus-cpp throws std::invalid_argument).
  guarded_family<prometheus::Counter> counter(std::string_view suffix, std::string help,
                                              std::vector<label_domain_ptr> labels);
  guarded_family<prometheus::Gauge> gauge(std::string_view suffix, std::string help,
                                          std::vector<label_domain_ptr> labels);
  guarded_family<prometheus::Histogram> histogram(std::string_view suffix, std::string help,
                                                  std::vector<label_domain_ptr> labels,
                                                  std::vector<double> buckets);

  /// Every family registered so far, in registration order.
  std::vector<family_info> families() const;

  /// The declared series budget of a family (label combinations, not histogram buckets).
  caf::expected<size_t> max_series(std::string_view name) const;

  /// Label combinations a family currently exports (0 for a registered family with none yet).
  caf::expected<size_t> series_count(std::string_view name) const;

private:
  void remember(family_info info);

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mtx_; // domain registries may be built on different threads
  std::vector<family_info> families_;
};

using base_registry_ptr = std::shared_ptr<base_registry>;

} // namespace embed::metrics
