#include "actors/gateway/discovery.hpp"

#include "actors/inspect/probe.hpp"

#include "logging/log.hpp"
#include "messages/error.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <fstream>
#include <netdb.h>
#include <set>
#include <sstream>

namespace embed {

namespace {

using self_ptr = discovery_actor::stateful_pointer<discovery_state>;

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::vector<std::string> collect(self_ptr self) {
  auto& st = self->state;
  std::set<std::string> out(st.cfg.endpoints.begin(), st.cfg.endpoints.end());
  if (!st.cfg.dns.empty()) {
    auto r = resolve_endpoints(st.cfg.dns);
    if (r) {
      out.insert(r->begin(), r->end());
    } else {
      // Keep the last known addresses of the name: a DNS hiccup must not drop every worker.
      spdlog::warn("discovery: {}; keeping the previous endpoints", message_of(r.error()));
      for (auto& e : st.current)
        out.insert(e);
    }
  }
  if (!st.cfg.file.empty()) {
    std::ifstream in(st.cfg.file);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      for (auto& e : parse_endpoint_list(ss.str()))
        out.insert(e);
    } else {
      spdlog::warn("discovery: cannot read endpoint file {}", st.cfg.file);
    }
  }
  ++st.resolutions;
  return {out.begin(), out.end()};
}

void refresh(self_ptr self) {
  auto& st = self->state;
  auto next = collect(self);
  if (next == st.current)
    return;
  std::string list;
  for (auto& e : next)
    list += (list.empty() ? "" : ", ") + e;
  spdlog::info("discovery: {} worker endpoint(s): {}", next.size(), list.empty() ? "none" : list);
  st.current = next;
  st.probe->set_state({{"endpoints", std::to_string(next.size())}, {"list", list}});
  self->send(st.supervisor, atom::put_v, std::move(next));
}

} // namespace

caf::error discovery_config::validate() const {
  if (endpoints.empty() && dns.empty() && file.empty())
    return make_error(ec::invalid_argument,
                      "no workers: give --workers HOST:PORT[,...], --workers-dns NAME:PORT or "
                      "--workers-file PATH");
  for (auto& e : endpoints)
    if (e.rfind(':') == std::string::npos)
      return make_error(ec::invalid_argument, "--workers: '" + e + "' is not HOST:PORT");
  if (!dns.empty() && dns.rfind(':') == std::string::npos)
    return make_error(ec::invalid_argument, "--workers-dns: '" + dns + "' is not NAME:PORT");
  if (interval.count() <= 0)
    return make_error(ec::invalid_argument, "discovery interval must be > 0");
  return {};
}

std::vector<std::string> parse_endpoint_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (auto hash = line.find('#'); hash != std::string::npos)
      line.erase(hash);
    std::stringstream ls(line);
    while (std::getline(ls, item, ','))
      if (auto t = trim(item); !t.empty())
        out.push_back(t);
  }
  return out;
}

caf::expected<std::vector<std::string>> resolve_endpoints(const std::string& name_port) {
  auto colon = name_port.rfind(':');
  if (colon == std::string::npos)
    return make_error(ec::invalid_argument, "'" + name_port + "' is not NAME:PORT");
  auto host = name_port.substr(0, colon);
  auto port = name_port.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return make_error(ec::worker_unavailable,
                      "cannot resolve " + name_port + ": " + gai_strerror(rc));
  std::set<std::string> out;
  for (auto* p = res; p != nullptr; p = p->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (p->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr, buf, sizeof buf);
      out.insert(std::string(buf) + ":" + port);
    } else if (p->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr, buf, sizeof buf);
      out.insert("[" + std::string(buf) + "]:" + port);
    }
  }
  freeaddrinfo(res);
  return std::vector<std::string>(out.begin(), out.end());
}

discovery_actor::behavior_type discovery(discovery_actor::stateful_pointer<discovery_state> self,
                                         discovery_config cfg, supervisor_actor supervisor) {
  self->state.probe = probes::attach(self, "discovery", "discovery");
  self->state.cfg = std::move(cfg);
  self->state.supervisor = std::move(supervisor);
  refresh(self);
  if (!self->state.cfg.dns.empty() || !self->state.cfg.file.empty())
    self->delayed_send(self, self->state.cfg.interval, atom::tick_v);
  return {
      [self](atom::tick) {
        auto probe_scope = probes::scope(self);
        refresh(self);
        self->delayed_send(self, self->state.cfg.interval, atom::tick_v);
      },
      [self](atom::get) { return self->state.current; },
  };
}

caf::expected<discovery_actor> spawn_discovery(caf::actor_system& sys, discovery_config cfg,
                                               supervisor_actor supervisor) {
  if (auto err = cfg.validate())
    return err;
  // Detached: getaddrinfo blocks, and must not hold up a scheduler thread.
  return sys.spawn<caf::detached>(discovery, std::move(cfg), std::move(supervisor));
}

} // namespace embed
