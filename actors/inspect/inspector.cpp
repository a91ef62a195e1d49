#include "actors/inspect/inspector.hpp"

#include <unistd.h>

namespace embed {

inspector_actor::behavior_type inspector(inspector_actor::stateful_pointer<inspector_state> self,
                                         std::string process,
                                         std::shared_ptr<probes::registry> registry,
                                         std::shared_ptr<request_counters> counters) {
  auto& st = self->state;
  st.process = std::move(process);
  st.registry = std::move(registry);
  st.counters = std::move(counters);
  st.probe = st.registry->add("inspector", "inspector");
  self->attach_functor([reg = st.registry, id = st.probe->id()] { reg->remove(id); });
  return {
      [self](atom::snapshot) -> process_snapshot {
        auto& st = self->state;
        probes::handler_scope scope(st.probe, self->mailbox().size());
        auto now = std::chrono::steady_clock::now();
        process_snapshot snap;
        snap.process = st.process;
        snap.pid = static_cast<uint32_t>(::getpid());
        snap.uptime_s = std::chrono::duration<double>(now - st.started).count();
        snap.taken_at_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
        if (st.counters) {
          snap.requests_total = st.counters->requests.load();
          snap.errors_total = st.counters->errors.load();
          auto dt = std::chrono::duration<double>(now - st.last).count();
          if (dt > 0) {
            snap.requests_per_s = static_cast<double>(snap.requests_total - st.last_requests) / dt;
            snap.errors_per_s = static_cast<double>(snap.errors_total - st.last_errors) / dt;
          }
          st.last_requests = snap.requests_total;
          st.last_errors = snap.errors_total;
        }
        st.last = now;
        for (auto& p : st.registry->all()) {
          actor_row row;
          row.name = p->name();
          row.kind = p->kind();
          row.parent = p->parent();
          row.id = p->id();
          row.mailbox_depth = p->mailbox();
          row.messages_handled = p->handled();
          row.restarts = p->restarts();
          row.max_handling_us = static_cast<double>(p->take_max_ns()) / 1e3;
          auto& prev = st.prev[p->id()];
          auto total = p->total_ns();
          if (row.messages_handled > prev.handled)
            prev.mean_us = static_cast<double>(total - prev.total_ns) / 1e3 /
                           static_cast<double>(row.messages_handled - prev.handled);
          row.mean_handling_us = prev.mean_us;
          prev.handled = row.messages_handled;
          prev.total_ns = total;
          for (auto& [k, v] : p->state()) {
            row.state_keys.push_back(k);
            row.state_values.push_back(v);
          }
          snap.actors.push_back(std::move(row));
        }
        return snap;
      },
  };
}

inspector_actor spawn_inspector(caf::actor_system& sys, std::string process,
                                std::shared_ptr<probes::registry> registry,
                                std::shared_ptr<request_counters> counters) {
  return sys.spawn(inspector, std::move(process), std::move(registry), std::move(counters));
}

} // namespace embed
