#pragma once
// The model holder: owns the model on one device and runs one merged batch at a time.
// Spawned detached (its own thread), because a forward blocks for milliseconds to seconds.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>

#include <memory>
#include <string>

namespace embed::gpu {
class model;
} // namespace embed::gpu

namespace embed {

struct model_holder_state {
  static inline const char* name = "model_holder";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  std::shared_ptr<gpu::model> model;
  gpu_metrics_actor metrics;
  std::string device;
  std::string model_id;
  uint64_t batches = 0;
};

model_holder_actor::behavior_type
model_holder(model_holder_actor::stateful_pointer<model_holder_state> self,
             std::shared_ptr<gpu::model> model, gpu_metrics_actor metrics);

model_holder_actor spawn_model_holder(caf::actor_system& sys, std::shared_ptr<gpu::model> model,
                                      gpu_metrics_actor metrics);

} // namespace embed
