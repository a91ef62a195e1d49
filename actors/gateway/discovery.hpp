#pragma once
// Worker endpoints from a static list, a DNS name re-resolved periodically (every address is an
// endpoint: a Kubernetes headless Service), or a watched file (one HOST:PORT per line, '#'
// comments). Changes reach the supervisor without a restart.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace embed {

struct discovery_config {
  std::vector<std::string> endpoints; // static HOST:PORT list
  std::string dns;                    // NAME:PORT, resolved to every A/AAAA address
  std::string file;                   // watched file of HOST:PORT lines
  std::chrono::milliseconds interval{5000};
  caf::error validate() const;
};

struct discovery_state {
  static inline const char* name = "discovery";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  discovery_config cfg;
  supervisor_actor supervisor;
  std::vector<std::string> current;
  std::filesystem::file_time_type file_mtime{};
  uint64_t resolutions = 0;
};

/// Parses "a:1, b:2" or newline-separated lists; skips blanks and '#' comments.
std::vector<std::string> parse_endpoint_list(const std::string& text);

/// Every address NAME resolves to, as HOST:PORT ("[v6]:PORT" for IPv6), sorted.
caf::expected<std::vector<std::string>> resolve_endpoints(const std::string& name_port);

discovery_actor::behavior_type discovery(discovery_actor::stateful_pointer<discovery_state> self,
                                         discovery_config cfg, supervisor_actor supervisor);

caf::expected<discovery_actor> spawn_discovery(caf::actor_system& sys, discovery_config cfg,
                                               supervisor_actor supervisor);

} // namespace embed
