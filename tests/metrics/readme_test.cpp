// metrics/README.md documents exactly what the registries register: every registered family has a
// row (with its type and label names), and every documented family is registered.

#include "metrics/process_metrics.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

using namespace embed::metrics;

namespace {

struct row {
  std::string type;
  std::string labels;
};

// Rows look like: | `embed_cache_entries` | gauge | `tier` (l1, l2) | meaning | alert |
std::map<std::string, row> documented() {
  std::ifstream in{EMBED_METRICS_README};
  EXPECT_TRUE(in) << EMBED_METRICS_README;
  std::map<std::string, row> out;
  std::regex pattern{R"(^\|\s*`((embed|process)_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|)"};
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, pattern)) {
      EXPECT_EQ(out.count(m[1]), 0u) << "documented twice: " << m[1];
      out[m[1]] = row{m[3], m[4]};
    }
  }
  return out;
}

TEST(metrics_readme, documents_every_registered_family_and_nothing_else) {
  auto docs = documented();
  auto pm = *process_metrics::make();
  std::set<std::string> registered;
  for (auto& f : pm->base().families()) {
    registered.insert(f.name);
    auto i = docs.find(f.name);
    if (i == docs.end()) {
      ADD_FAILURE() << "not documented in metrics/README.md: " << f.name;
      continue;
    }
    EXPECT_EQ(i->second.type, to_string(f.type)) << f.name;
    for (auto& label : f.labels)
      EXPECT_NE(i->second.labels.find("`" + label->name() + "`"), std::string::npos)
          << f.name << " label " << label->name() << " not documented";
  }
  for (auto& name : process_collector::family_names()) {
    registered.insert(name);
    EXPECT_EQ(docs.count(name), 1u) << "not documented: " << name;
  }
  for (auto& [name, r] : docs)
    EXPECT_EQ(registered.count(name), 1u) << "documented but not registered: " << name;
}

} // namespace
