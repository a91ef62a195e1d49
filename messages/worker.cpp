#include "messages/worker.hpp"

#include "messages/error.hpp"

#include <string>

namespace embed {

caf::error validate(const worker_job& job, const worker_limits& limits) {
  const auto& s = job.sequences;
  if (s.offsets.size() < 2)
    return make_error(ec::empty_input,
                      "sequences: empty batch; offsets needs n + 1 >= 2 entries, got " +
                          std::to_string(s.offsets.size()));
  if (s.size() > limits.max_sequences_per_job)
    return make_error(ec::too_many_inputs, "sequences: " + std::to_string(s.size()) +
                                               " sequences, limit " +
                                               std::to_string(limits.max_sequences_per_job));
  if (s.offsets.front() != 0)
    return make_error(ec::invalid_argument,
                      "sequences.offsets[0]: " + std::to_string(s.offsets.front()) + ", must be 0");
  if (s.offsets.back() != static_cast<int64_t>(s.ids.size()))
    return make_error(ec::invalid_argument,
                      "sequences.offsets[" + std::to_string(s.offsets.size() - 1) +
                          "]: " + std::to_string(s.offsets.back()) + ", must equal ids size " +
                          std::to_string(s.ids.size()));
  for (size_t i = 1; i < s.offsets.size(); ++i) {
    auto len = s.offsets[i] - s.offsets[i - 1];
    if (len <= 0)
      return make_error(len < 0 ? ec::invalid_argument : ec::empty_input,
                        "sequences.offsets[" + std::to_string(i) +
                            "]: " + std::to_string(s.offsets[i]) + " after " +
                            std::to_string(s.offsets[i - 1]) +
                            (len < 0 ? "; offsets must not decrease"
                                     : "; sequence " + std::to_string(i - 1) + " is empty"));
    if (limits.max_tokens != 0 && static_cast<uint64_t>(len) > limits.max_tokens)
      return make_error(ec::input_too_long, "sequences[" + std::to_string(i - 1) +
                                                "]: " + std::to_string(len) + " tokens, limit " +
                                                std::to_string(limits.max_tokens));
  }
  for (size_t i = 0; i < s.ids.size(); ++i)
    if (s.ids[i] < 0 || static_cast<uint32_t>(s.ids[i]) >= limits.vocab_size)
      return make_error(ec::invalid_argument, "sequences.ids[" + std::to_string(i) +
                                                  "]: token id " +
                                                  std::to_string(static_cast<uint32_t>(s.ids[i])) +
                                                  " is outside the vocabulary (size " +
                                                  std::to_string(limits.vocab_size) + ")");
  if (job.kind == job_kind::embed && job.dimensions > limits.hidden_size)
    return make_error(ec::invalid_argument, "dimensions: " + std::to_string(job.dimensions) +
                                                " exceeds the model dimension " +
                                                std::to_string(limits.hidden_size));
  if (job.kind == job_kind::score) {
    if (!limits.can_score)
      return make_error(ec::invalid_argument,
                        "this worker's model has no output projection and cannot score");
    for (auto [name, id] :
         {std::pair{"yes_token_id", job.yes_id}, std::pair{"no_token_id", job.no_id}}) {
      if (id < 0)
        return make_error(ec::invalid_argument,
                          std::string(name) +
                              ": not given, and this worker has no default (its tokenizer has no "
                              "'yes'/'no' tokens); set yes_token_id and no_token_id");
      if (static_cast<uint32_t>(id) >= limits.vocab_size)
        return make_error(ec::invalid_argument, std::string(name) + ": " + std::to_string(id) +
                                                    " is outside the vocabulary (size " +
                                                    std::to_string(limits.vocab_size) + ")");
    }
    if (job.yes_id == job.no_id)
      return make_error(ec::invalid_argument, "yes_token_id and no_token_id are both " +
                                                  std::to_string(job.yes_id) +
                                                  "; they must differ");
  }
  return {};
}

} // namespace embed
