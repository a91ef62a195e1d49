#include "actors/worker/model_holder.hpp"

#include "actors/inspect/probe.hpp"

#include "gpu/model.hpp"
#include "logging/log.hpp"
#include "messages/error.hpp"

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>

namespace embed {

namespace {

/// Test control (docs/architecture.md, "Test controls"): while the file named by
/// EMBED_TEST_HOLD_FORWARD_FILE exists, a forward waits before it starts. Tests use it to hold
/// work in progress without depending on how long a real forward takes. Unset in production:
/// the check is one getenv at start.
const char* hold_forward_file() {
  static const char* path = std::getenv("EMBED_TEST_HOLD_FORWARD_FILE");
  return path != nullptr && *path != 0 ? path : nullptr;
}

void wait_while_held() {
  auto* path = hold_forward_file();
  if (path == nullptr)
    return;
  // Bounded: a forgotten file cannot hold a worker for more than ten minutes.
  auto until = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (::access(path, F_OK) == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

gpu::packed_batch to_batch(const packed_sequences& s) {
  gpu::packed_batch b;
  b.ids = s.ids;
  b.offsets = s.offsets;
  return b;
}

} // namespace

model_holder_actor::behavior_type
model_holder(model_holder_actor::stateful_pointer<model_holder_state> self,
             std::shared_ptr<gpu::model> model, gpu_metrics_actor metrics) {
  self->state.probe = probes::attach(self, "model_holder", "model_holder");
  if (auto* path = hold_forward_file())
    spdlog::warn("test control: forwards wait while {} exists (EMBED_TEST_HOLD_FORWARD_FILE)",
                 path);
  self->state.model = std::move(model);
  self->state.metrics = std::move(metrics);
  self->state.device = self->state.model->device_name();
  self->state.model_id = self->state.model->id();
  self->state.probe->set_state({{"model", self->state.model_id},
                                {"device", self->state.device},
                                {"dtype", self->state.model->dtype_name()}});
  return {
      [self](atom::run, const worker_job& batch) -> caf::result<worker_output> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        log::correlation_scope scope(batch.correlation_id);
        wait_while_held();
        worker_output out;
        out.count = static_cast<uint32_t>(batch.sequences.size());
        auto start = std::chrono::steady_clock::now();
        try {
          auto b = to_batch(batch.sequences);
          if (batch.kind == job_kind::embed) {
            out.values = st.model->last_hidden(b);
            out.dimension = static_cast<uint32_t>(st.model->config().hidden_size);
          } else {
            auto scores = st.model->score(b, batch.yes_id, batch.no_id);
            out.values.reserve(scores.size());
            for (const auto& s : scores) {
              out.values.push_back(s.score);
              out.yes_logits.push_back(s.yes_logit);
              out.no_logits.push_back(s.no_logit);
            }
          }
        } catch (const std::exception& e) {
          spdlog::error("forward failed: {}", e.what());
          return make_error(ec::internal, std::string("forward failed: ") + e.what());
        }
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        out.inference_ms = took.count() * 1e3;
        ++st.batches;
        st.probe->set_state("batches", std::to_string(st.batches));
        if (st.metrics) {
          size_t longest = 0;
          for (size_t i = 0; i < batch.sequences.size(); ++i)
            longest = std::max(longest, batch.sequences.length(i));
          auto tokens = static_cast<uint32_t>(batch.sequences.ids.size());
          // CUDA right-pads a batch to its longest sequence; the CPU path runs packed sequences.
          auto padded =
              st.device == "cpu" ? tokens : static_cast<uint32_t>(longest * batch.sequences.size());
          self->send(st.metrics, metric::batch_done{st.device, st.model_id, out.count, tokens,
                                                    padded, took.count()});
          self->send(st.metrics, metric::device_memory{st.device, st.model->device_memory_used(),
                                                       st.model->device_memory_total()});
        }
        return out;
      },
  };
}

model_holder_actor spawn_model_holder(caf::actor_system& sys, std::shared_ptr<gpu::model> model,
                                      gpu_metrics_actor metrics) {
  return sys.spawn<caf::detached>(model_holder, std::move(model), std::move(metrics));
}

} // namespace embed
