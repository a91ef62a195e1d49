#pragma once
// Messages of the inspector (actors/inspect): a snapshot of every actor of a process.

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace embed {

struct actor_row {
  std::string name;
  std::string kind;
  std::string parent;
  uint64_t id = 0;
  uint64_t mailbox_depth = 0;
  uint64_t messages_handled = 0;
  double mean_handling_us = 0; // over the window since the previous snapshot
  double max_handling_us = 0;
  uint32_t restarts = 0;
  std::vector<std::string> state_keys; // role-specific state, parallel to state_values
  std::vector<std::string> state_values;
};

struct process_snapshot {
  std::string process;
  uint32_t pid = 0;
  double uptime_s = 0;
  double requests_per_s = 0;
  double errors_per_s = 0;
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;
  int64_t taken_at_unix_ms = 0;
  std::vector<actor_row> actors;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_row& x) {
  return f(caf::meta::type_name("actor_row"), x.name, x.kind, x.parent, x.id, x.mailbox_depth,
           x.messages_handled, x.mean_handling_us, x.max_handling_us, x.restarts, x.state_keys,
           x.state_values);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_snapshot& x) {
  return f(caf::meta::type_name("process_snapshot"), x.process, x.pid, x.uptime_s, x.requests_per_s,
           x.errors_per_s, x.requests_total, x.errors_total, x.taken_at_unix_ms, x.actors);
}

} // namespace embed
