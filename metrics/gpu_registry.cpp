#include "metrics/gpu_registry.hpp"

#include <algorithm>

namespace embed::metrics {

gpu_registry::gpu_registry(base_registry& base, const registry_options& options)
    : device_(label_domain::bounded("device", options.max_devices)),
      model_(label_domain::bounded("model", options.max_models)),
      dtype_(
          label_domain::closed("dtype", {"f32", "f16", "bf16", "float32", "float16", "bfloat16"})) {
  memory_used_ = base.gauge("gpu_memory_used_bytes", "Device memory in use, in bytes.", {device_});
  memory_total_ =
      base.gauge("gpu_memory_total_bytes", "Device memory in total, in bytes.", {device_});
  model_load_ = base.gauge("gpu_model_load_seconds",
                           "Seconds the last model load took on a device.", {device_, model_});
  model_info_ = base.gauge("gpu_model_info", "The model a device serves (always 1).",
                           {device_, model_, dtype_});
  batches_ = base.counter("gpu_batches_total", "Forward passes run.", {device_, model_});
  batch_sequences_ = base.histogram("gpu_batch_size_sequences", "Sequences per forward batch.",
                                    {device_, model_}, size_buckets(1024));
  batch_tokens_ =
      base.histogram("gpu_batch_size_tokens", "Real (non-padding) tokens per forward batch.",
                     {device_, model_}, size_buckets(65536));
  tokens_ = base.counter("gpu_tokens_total", "Real (non-padding) tokens run through the model.",
                         {device_, model_});
  padding_tokens_ =
      base.counter("gpu_padding_tokens_total",
                   "Padding tokens the forward computed and threw away.", {device_, model_});
  padding_ratio_ = base.histogram("gpu_padding_waste_ratio",
                                  "Share of a batch's computed tokens that were padding.",
                                  {device_, model_}, unit_interval_buckets());
  queue_requests_ = base.gauge("gpu_queue_depth_requests", "Jobs waiting in the batcher queue.",
                               {device_, model_});
  queue_tokens_ = base.gauge("gpu_queue_depth_tokens", "Tokens waiting in the batcher queue.",
                             {device_, model_});
  forward_ = base.histogram("gpu_forward_duration_seconds", "Wall time of one forward batch.",
                            {device_, model_}, latency_buckets());
}

void gpu_registry::record(const metric::model_loaded& event) {
  model_load_.at({event.device, event.model}).Set(event.load_seconds);
  auto& info = model_info_.at({event.device, event.model, event.dtype});
  auto& previous = info_by_device_[device_->admit(event.device)];
  if (previous != nullptr && previous != &info)
    model_info_.remove(*previous);
  previous = &info;
  info.Set(1);
}

void gpu_registry::record(const metric::batch_done& event) {
  batches_.at({event.device, event.model}).Increment();
  batch_sequences_.at({event.device, event.model}).Observe(event.sequences);
  batch_tokens_.at({event.device, event.model}).Observe(event.tokens);
  tokens_.at({event.device, event.model}).Increment(event.tokens);
  // padded_tokens counts everything computed; a sender that reports fewer than the real tokens
  // (no padding) must not make the counter go backwards.
  auto computed = std::max(event.padded_tokens, event.tokens);
  auto waste = computed - event.tokens;
  padding_tokens_.at({event.device, event.model}).Increment(waste);
  if (computed > 0)
    padding_ratio_.at({event.device, event.model})
        .Observe(static_cast<double>(waste) / static_cast<double>(computed));
  forward_.at({event.device, event.model}).Observe(event.forward_seconds);
}

void gpu_registry::record(const metric::queue_depth& event) {
  queue_requests_.at({event.device, event.model}).Set(static_cast<double>(event.requests));
  queue_tokens_.at({event.device, event.model}).Set(static_cast<double>(event.tokens));
}

void gpu_registry::record(const metric::device_memory& event) {
  memory_used_.at({event.device}).Set(static_cast<double>(event.used_bytes));
  memory_total_.at({event.device}).Set(static_cast<double>(event.total_bytes));
}

} // namespace embed::metrics
