#pragma once
// What the inspector knows about each actor, written by the actor itself at almost no cost:
// a few relaxed atomics per handled message (no locks, no messages), and a small role-specific
// state map the actor refreshes when it changes. The inspector only reads.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace embed::probes {

class probe {
public:
  probe(uint64_t id, std::string name, std::string kind, std::string parent)
      : id_(id), name_(std::move(name)), kind_(std::move(kind)), parent_(std::move(parent)) {}

  uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  const std::string& kind() const { return kind_; }
  const std::string& parent() const { return parent_; }

  /// Called by the actor around one message (see handler_scope).
  void record(uint64_t mailbox_depth, uint64_t handling_ns) {
    handled_.fetch_add(1, std::memory_order_relaxed);
    total_ns_.fetch_add(handling_ns, std::memory_order_relaxed);
    mailbox_.store(mailbox_depth, std::memory_order_relaxed);
    auto prev = max_ns_.load(std::memory_order_relaxed);
    while (handling_ns > prev &&
           !max_ns_.compare_exchange_weak(prev, handling_ns, std::memory_order_relaxed))
      ;
  }
  void restarted() { restarts_.fetch_add(1, std::memory_order_relaxed); }

  /// Role-specific state ("queue_tokens" -> "1200"); replaces the whole map.
  void set_state(std::map<std::string, std::string> state) {
    std::lock_guard<std::mutex> guard(state_mu_);
    state_ = std::move(state);
  }
  void set_state(const std::string& key, std::string value) {
    std::lock_guard<std::mutex> guard(state_mu_);
    state_[key] = std::move(value);
  }

  // Reads, for the inspector.
  uint64_t handled() const { return handled_.load(std::memory_order_relaxed); }
  uint64_t total_ns() const { return total_ns_.load(std::memory_order_relaxed); }
  uint64_t mailbox() const { return mailbox_.load(std::memory_order_relaxed); }
  uint32_t restarts() const { return restarts_.load(std::memory_order_relaxed); }
  /// The longest handling time since the previous call (the inspector's window).
  uint64_t take_max_ns() { return max_ns_.exchange(0, std::memory_order_relaxed); }
  std::map<std::string, std::string> state() const {
    std::lock_guard<std::mutex> guard(state_mu_);
    return state_;
  }

private:
  uint64_t id_;
  std::string name_, kind_, parent_;
  std::atomic<uint64_t> handled_{0}, total_ns_{0}, mailbox_{0}, max_ns_{0};
  std::atomic<uint32_t> restarts_{0};
  mutable std::mutex state_mu_;
  std::map<std::string, std::string> state_;
};

/// Every probe of the process. Actors add themselves at spawn and leave when they exit.
class registry {
public:
  std::shared_ptr<probe> add(std::string name, std::string kind, std::string parent = "node");
  void remove(uint64_t id);
  std::vector<std::shared_ptr<probe>> all() const;

private:
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<probe>> probes_;
};

/// Times one handler: `probes::handler_scope scope(st.probe, self->mailbox().size());`.
class handler_scope {
public:
  handler_scope(probe* p, uint64_t mailbox_depth)
      : probe_(p), depth_(mailbox_depth), start_(std::chrono::steady_clock::now()) {}
  handler_scope(const std::shared_ptr<probe>& p, uint64_t mailbox_depth)
      : handler_scope(p.get(), mailbox_depth) {}
  ~handler_scope() {
    if (probe_ != nullptr)
      probe_->record(depth_,
                     static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - start_)
                                               .count()));
  }
  handler_scope(const handler_scope&) = delete;
  handler_scope& operator=(const handler_scope&) = delete;

private:
  probe* probe_;
  uint64_t depth_;
  std::chrono::steady_clock::time_point start_;
};

} // namespace embed::probes

namespace embed::probes {

/// The process's registry: every actor of the process registers here.
registry& global();

/// Registers an actor's probe for as long as the actor lives.
template <class Self>
std::shared_ptr<probe> attach(Self* self, std::string name, std::string kind,
                              std::string parent = "node") {
  auto p = global().add(std::move(name), std::move(kind), std::move(parent));
  self->attach_functor([id = p->id()] { global().remove(id); });
  return p;
}

/// Times the current handler of `self` (whose state has a `probe`).
template <class Self>
handler_scope scope(Self* self) {
  return handler_scope(self->state.probe, self->mailbox().size());
}

} // namespace embed::probes
