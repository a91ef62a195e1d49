#include "actors/inspect/probe.hpp"

namespace embed::probes {

std::shared_ptr<probe> registry::add(std::string name, std::string kind, std::string parent) {
  std::lock_guard<std::mutex> guard(mu_);
  auto id = next_id_++;
  auto p = std::make_shared<probe>(id, std::move(name), std::move(kind), std::move(parent));
  probes_.emplace(id, p);
  return p;
}

void registry::remove(uint64_t id) {
  std::lock_guard<std::mutex> guard(mu_);
  probes_.erase(id);
}

std::vector<std::shared_ptr<probe>> registry::all() const {
  std::lock_guard<std::mutex> guard(mu_);
  std::vector<std::shared_ptr<probe>> out;
  for (auto& [id, p] : probes_)
    out.push_back(p);
  return out;
}

} // namespace embed::probes

namespace embed::probes {

registry& global() {
  static registry instance;
  return instance;
}

} // namespace embed::probes
