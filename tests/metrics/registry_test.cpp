// Base registry: label domains, declared budgets, series counting, option validation.

#include "messages/error.hpp"
#include "metrics/process_metrics.hpp"

#include <gtest/gtest.h>

using namespace embed;
using namespace embed::metrics;

TEST(label_domain, closed_set_maps_unknown_values_to_fallback) {
  auto d = label_domain::closed("tier", {"l1", "l2"});
  EXPECT_EQ(d->admit("l1"), "l1");
  EXPECT_EQ(d->admit("l3"), "other");
  EXPECT_EQ(d->admit(""), "other");
  EXPECT_EQ(d->cardinality(), 3u); // l1, l2, other
  auto codes = label_domain::closed("code", {"OK", "UNKNOWN"}, "UNKNOWN");
  EXPECT_EQ(codes->admit("TEAPOT"), "UNKNOWN");
  EXPECT_EQ(codes->cardinality(), 2u); // the fallback is already in the set
}

TEST(label_domain, bounded_keeps_first_values_then_other) {
  auto d = label_domain::bounded("endpoint", 2);
  EXPECT_EQ(d->admit("a:1"), "a:1");
  EXPECT_EQ(d->admit("b:1"), "b:1");
  EXPECT_EQ(d->admit("c:1"), "other");
  EXPECT_EQ(d->admit("a:1"), "a:1"); // kept values stay
  EXPECT_EQ(d->admit(""), "other");  // an empty value never takes a slot
  EXPECT_EQ(d->admit("other"), "other");
  EXPECT_EQ(d->cardinality(), 3u);
  EXPECT_EQ(d->values().size(), 2u);
}

TEST(registry_options, validate_rejects_zero_and_huge_caps) {
  EXPECT_FALSE(registry_options{}.validate());
  registry_options zero;
  zero.max_endpoints = 0;
  auto err = zero.validate();
  ASSERT_TRUE(err);
  EXPECT_EQ(code_of(err), ec::invalid_argument);
  EXPECT_NE(message_of(err).find("max_endpoints"), std::string::npos);
  registry_options huge;
  huge.max_models = 100000;
  EXPECT_TRUE(huge.validate());
  EXPECT_FALSE(process_metrics::make(huge));
}

TEST(base_registry, names_budgets_and_series_counts) {
  auto pm = process_metrics::make();
  ASSERT_TRUE(pm);
  auto families = (*pm)->base().families();
  ASSERT_GT(families.size(), 30u);
  for (auto& f : families) {
    EXPECT_EQ(f.name.rfind("embed_", 0), 0u) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    EXPECT_GE(f.max_series, 1u) << f.name;
    // Base units: durations in seconds, sizes in bytes.
    if (f.name.find("duration") != std::string::npos) {
      EXPECT_NE(f.name.find("_seconds"), std::string::npos) << f.name;
    }
    if (f.name.find("memory") != std::string::npos) {
      EXPECT_NE(f.name.find("_bytes"), std::string::npos) << f.name;
    }
    if (f.type == family_type::counter) {
      EXPECT_EQ(f.name.substr(f.name.size() - 6), "_total") << f.name;
    }
    if (f.type == family_type::histogram) {
      EXPECT_FALSE(f.buckets.empty()) << f.name;
    }
  }
  auto& base = (*pm)->base();
  // endpoint (16 + other) x method (4 + other) x code (17)
  EXPECT_EQ(*base.max_series("embed_grpc_client_calls_total"), 17u * 5u * 17u);
  EXPECT_EQ(*base.series_count("embed_cache_entries"), 0u);
  EXPECT_FALSE(base.series_count("embed_no_such_family"));
  (*pm)->cache()->record(embed::metric::cache_size{"l1", 1, 2});
  (*pm)->cache()->record(embed::metric::cache_size{"l2", 1, 2});
  EXPECT_EQ(*base.series_count("embed_cache_entries"), 2u);
}

TEST(buckets, latency_from_half_a_millisecond_to_thirty_seconds) {
  auto b = latency_buckets();
  EXPECT_DOUBLE_EQ(b.front(), 0.0005);
  EXPECT_DOUBLE_EQ(b.back(), 30.0);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(size_buckets(8), (std::vector<double>{1, 2, 4, 8}));
}
