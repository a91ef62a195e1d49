#include "metrics/registry.hpp"

#include "messages/error.hpp"

#include <algorithm>
#include <stdexcept>

namespace embed::metrics {

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
          0.25,   0.5,   1.0,    2.5,   5.0,  10.0,  30.0};
}

std::vector<double> size_buckets(double max) {
  std::vector<double> result;
  for (double b = 1; b <= max; b *= 2)
    result.push_back(b);
  return result;
}

std::vector<double> unit_interval_buckets() {
  return {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
}

caf::error registry_options::validate() const {
  auto check = [](size_t value, const char* field) -> caf::error {
    // A cap of 0 would send everything to `other`; beyond 256 the series budget stops being small.
    if (value == 0 || value > 256)
      return make_error(ec::invalid_argument, std::string{"metrics."} + field +
                                                  " must be in [1, 256], got " +
                                                  std::to_string(value));
    return {};
  };
  if (auto err = check(max_endpoints, "max_endpoints"))
    return err;
  if (auto err = check(max_devices, "max_devices"))
    return err;
  return check(max_models, "max_models");
}

// -- label_domain ---------------------------------------------------------------------------------

label_domain::label_domain(std::string name, bool closed, std::vector<std::string> values,
                           size_t cap, std::string fallback)
    : name_(std::move(name)), closed_(closed), values_(std::move(values)), cap_(cap),
      fallback_(std::move(fallback)) {
  fallback_in_set_ = std::find(values_.begin(), values_.end(), fallback_) != values_.end();
}

std::shared_ptr<label_domain>
label_domain::closed(std::string name, std::vector<std::string> values, std::string fallback) {
  return std::shared_ptr<label_domain>(
      new label_domain(std::move(name), true, std::move(values), 0, std::move(fallback)));
}

std::shared_ptr<label_domain> label_domain::bounded(std::string name, size_t cap) {
  std::vector<std::string> values;
  values.reserve(cap);
  return std::shared_ptr<label_domain>(
      new label_domain(std::move(name), false, std::move(values), cap, std::string{other_value}));
}

const std::string& label_domain::admit(std::string_view value) {
  // Linear search: domains hold at most a few dozen values, and it needs no allocation.
  for (auto& v : values_)
    if (v == value)
      return v;
  if (!closed_ && values_.size() < cap_ && !value.empty() && value != fallback_) {
    values_.emplace_back(value);
    return values_.back();
  }
  return fallback_;
}

size_t label_domain::cardinality() const {
  if (closed_)
    return values_.size() + (fallback_in_set_ ? 0 : 1);
  return cap_ + 1;
}

const char* to_string(family_type type) {
  switch (type) {
  case family_type::counter: return "counter";
  case family_type::gauge: return "gauge";
  case family_type::histogram: return "histogram";
  }
  return "unknown";
}

// -- base_registry --------------------------------------------------------------------------------

namespace {

family_info make_info(std::string_view suffix, std::string help, family_type type,
                      std::vector<label_domain_ptr> labels, std::vector<double> buckets) {
  family_info info{std::string{name_prefix} + std::string{suffix},
                   std::move(help),
                   type,
                   std::move(labels),
                   std::move(buckets),
                   1};
  for (auto& label : info.labels)
    info.max_series *= label->cardinality();
  return info;
}

} // namespace

base_registry::base_registry(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {}

guarded_family<prometheus::Counter> base_registry::counter(std::string_view suffix,
                                                           std::string help,
                                                           std::vector<label_domain_ptr> labels) {
  auto info = make_info(suffix, std::move(help), family_type::counter, std::move(labels), {});
  auto& family = prometheus::BuildCounter().Name(info.name).Help(info.help).Register(*registry_);
  guarded_family<prometheus::Counter> result{&family, info.labels, {}};
  remember(std::move(info));
  return result;
}

guarded_family<prometheus::Gauge> base_registry::gauge(std::string_view suffix, std::string help,
                                                       std::vector<label_domain_ptr> labels) {
  auto info = make_info(suffix, std::move(help), family_type::gauge, std::move(labels), {});
  auto& family = prometheus::BuildGauge().Name(info.name).Help(info.help).Register(*registry_);
  guarded_family<prometheus::Gauge> result{&family, info.labels, {}};
  remember(std::move(info));
  return result;
}

guarded_family<prometheus::Histogram> base_registry::histogram(std::string_view suffix,
                                                               std::string help,
                                                               std::vector<label_domain_ptr> labels,
                                                               std::vector<double> buckets) {
  auto info = make_info(suffix, std::move(help), family_type::histogram, std::move(labels),
                        std::move(buckets));
  auto& family = prometheus::BuildHistogram().Name(info.name).Help(info.help).Register(*registry_);
  guarded_family<prometheus::Histogram> result{&family, info.labels, info.buckets};
  remember(std::move(info));
  return result;
}

void base_registry::remember(family_info info) {
  std::lock_guard<std::mutex> guard{mtx_};
  families_.push_back(std::move(info));
}

std::vector<family_info> base_registry::families() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return families_;
}

caf::expected<size_t> base_registry::max_series(std::string_view name) const {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& info : families_)
    if (info.name == name)
      return info.max_series;
  return make_error(ec::invalid_argument, "no metric family named " + std::string{name});
}

caf::expected<size_t> base_registry::series_count(std::string_view name) const {
  if (auto known = max_series(name); !known)
    return known.error();
  // Collect() is thread-safe in prometheus-cpp and omits families without series.
  for (auto& family : registry_->Collect())
    if (family.name == name)
      return family.metric.size();
  return size_t{0};
}

} // namespace embed::metrics
