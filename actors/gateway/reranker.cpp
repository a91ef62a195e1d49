#include "actors/gateway/reranker.hpp"

#include "actors/inspect/probe.hpp"

#include "logging/log.hpp"
#include "messages/error.hpp"
#include "messages/validate.hpp"
#include "tokenizer/tokenizer.hpp"

#include <algorithm>

namespace embed {

namespace {

using self_ptr = reranker_actor::stateful_pointer<reranker_state>;
using clock = std::chrono::steady_clock;

constexpr const char* prompt_prefix =
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    "and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n";
constexpr const char* prompt_suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

struct request_state {
  rerank_request req;
  caf::typed_response_promise<rerank_result> promise;
  clock::time_point start = clock::now();
  rerank_result result;
};

using request_ptr = std::shared_ptr<request_state>;

void done(self_ptr self, const request_ptr& r, caf::expected<rerank_result> out) {
  auto& st = self->state;
  --st.in_flight;
  st.probe->set_state("in_flight", std::to_string(st.in_flight));
  std::chrono::duration<double> took = clock::now() - r->start;
  if (st.metrics) {
    metric::rerank_done ev{st.model ? st.model->model_id : "unknown",
                           out ? "ok" : "error",
                           static_cast<uint32_t>(r->req.documents.size()),
                           took.count(),
                           {}};
    if (out)
      for (auto& k : out->ranks)
        ev.scores.push_back(k.score);
    self->send(st.metrics, std::move(ev));
  }
  if (out)
    r->promise.deliver(std::move(*out));
  else
    r->promise.deliver(out.error());
}

// With truncate, a pair whose prompt is too long is cut so that the document keeps its room
// (docs/api.md, "Rerank truncation"). The body is instruction + query + document; with `avail`
// body tokens left after the instruction and the labels, the document keeps what the whole query
// leaves, but never less than half of `avail` (or all of itself when shorter); the query keeps
// the rest, cut at its end. A query that fits beside half a document is never cut, and then the
// body is the one encoding of the whole text cut at its end, exactly as the reference code does.
caf::expected<std::vector<uint32_t>> fit_body(self_ptr self, const std::string& instruction,
                                              const std::string& query, const std::string& document,
                                              std::vector<uint32_t> body, size_t room,
                                              const std::string& field) {
  auto& st = self->state;
  tok::encode_options eo;
  eo.add_special_tokens = false;
  // The body split where a pre-token always ends (after a colon, before the space that starts
  // the next word): the pieces' tokens are the whole text's tokens.
  auto labels_a = st.tokenizer->encode("<Instruct>: " + instruction + "\n<Query>:", eo);
  auto query_ids = st.tokenizer->encode(" " + query, eo);
  auto labels_b = st.tokenizer->encode("\n<Document>:", eo);
  auto doc_ids = st.tokenizer->encode(" " + document, eo);
  if (!labels_a || !query_ids || !labels_b || !doc_ids)
    return make_error(ec::internal, field + ": the prompt's parts cannot be tokenized");
  const size_t labels = labels_a->size() + labels_b->size();
  if (labels + 2 > room)
    return make_error(ec::input_too_long,
                      "instruction: the instruction takes " + std::to_string(labels) + " of the " +
                          std::to_string(room) +
                          " tokens a prompt body may have, leaving no room for the query and "
                          "the documents; shorten it or raise --max-rerank-tokens");
  const size_t avail = room - labels;
  const size_t doc_keep =
      std::min(doc_ids->size(), std::max(avail - std::min(avail, query_ids->size()), avail / 2));
  const size_t query_keep = std::min(query_ids->size(), avail - doc_keep);
  if (query_keep == query_ids->size()) {
    body.resize(room); // the whole query fits: the end of the document is cut
    return body;
  }
  std::vector<uint32_t> out;
  out.reserve(room);
  out.insert(out.end(), labels_a->begin(), labels_a->end());
  out.insert(out.end(), query_ids->begin(),
             query_ids->begin() + static_cast<std::ptrdiff_t>(query_keep));
  out.insert(out.end(), labels_b->begin(), labels_b->end());
  out.insert(out.end(), doc_ids->begin(), doc_ids->begin() + static_cast<std::ptrdiff_t>(doc_keep));
  return out;
}

caf::expected<packed_sequences> build_prompts(self_ptr self, const request_ptr& r) {
  auto& st = self->state;
  auto limits = st.cfg.limits;
  limits.max_tokens_per_input = st.cfg.max_prompt_tokens;
  if (st.model && st.model->max_tokens != 0)
    limits.max_tokens_per_input = std::min(limits.max_tokens_per_input, st.model->max_tokens);
  const auto& instruction =
      r->req.instruction.empty() ? st.cfg.default_instruction : r->req.instruction;
  auto fixed = st.prefix_ids.size() + st.suffix_ids.size();
  if (fixed >= limits.max_tokens_per_input)
    return make_error(ec::internal, "the token limit leaves no room for the reranker prompt");
  auto room = limits.max_tokens_per_input - fixed;
  tok::encode_options eo;
  eo.add_special_tokens = false;
  packed_sequences seqs;
  seqs.offsets.push_back(0);
  uint32_t tokens = 0;
  for (size_t i = 0; i < r->req.documents.size(); ++i) {
    auto body =
        st.tokenizer->encode(rerank_body(instruction, r->req.query, r->req.documents[i]), eo);
    auto field = "documents[" + std::to_string(i) + "]";
    if (!body)
      return make_error(code_of(body.error()), field + ": " + message_of(body.error()));
    if (body->size() > room) {
      if (!r->req.truncate)
        return make_error(ec::input_too_long,
                          field + ": the prompt needs " + std::to_string(body->size() + fixed) +
                              " tokens, limit " + std::to_string(limits.max_tokens_per_input) +
                              " (set truncate to cut the document)");
      auto fitted = fit_body(self, instruction, r->req.query, r->req.documents[i], std::move(*body),
                             room, field);
      if (!fitted)
        return fitted.error();
      body = std::move(fitted);
    }
    for (auto id : st.prefix_ids)
      seqs.ids.push_back(static_cast<int32_t>(id));
    for (auto id : *body)
      seqs.ids.push_back(static_cast<int32_t>(id));
    for (auto id : st.suffix_ids)
      seqs.ids.push_back(static_cast<int32_t>(id));
    seqs.offsets.push_back(static_cast<int64_t>(seqs.ids.size()));
    tokens += static_cast<uint32_t>(body->size() + fixed);
  }
  r->result.prompt_tokens = tokens;
  return seqs;
}

void start(self_ptr self, const request_ptr& r) {
  auto& st = self->state;
  log::correlation_scope scope(r->req.correlation_id);
  if (auto err = validate(r->req, st.cfg.limits))
    return done(self, r, err);
  if (!st.model->can_score)
    return done(self, r,
                make_error(ec::unknown_model, "the workers' model " + st.model->model_id +
                                                  " has no output projection and cannot rerank"));
  if (!r->req.model.empty() && r->req.model != st.model->model_id)
    return done(self, r,
                make_error(ec::unknown_model,
                           "model: '" + r->req.model +
                               "' is not served here; available: " + st.model->model_id));
  auto t0 = clock::now();
  auto seqs = build_prompts(self, r);
  if (!seqs)
    return done(self, r, seqs.error());
  r->result.timings.tokenize_ms =
      std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  worker_job job;
  job.id = r->req.request_id;
  job.kind = job_kind::score;
  job.sequences = std::move(*seqs);
  job.yes_id = static_cast<int32_t>(st.model->yes_token_id);
  job.no_id = static_cast<int32_t>(st.model->no_token_id);
  job.deadline_ns = r->req.deadline_ns;
  job.correlation_id = r->req.correlation_id;
  auto timeout = st.cfg.default_timeout;
  if (r->req.deadline_ns != 0)
    timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::nanoseconds(r->req.deadline_ns) -
                  std::chrono::system_clock::now().time_since_epoch()) +
              std::chrono::milliseconds(1000);
  self->request(st.supervisor, timeout, std::move(job))
      .then(
          [self, r](worker_output& out) {
            auto probe_scope = probes::scope(self);
            auto& res = r->result;
            for (uint32_t i = 0; i < out.values.size(); ++i)
              res.ranks.push_back({i, out.values[i]});
            std::stable_sort(res.ranks.begin(), res.ranks.end(),
                             [](const rank& a, const rank& b) { return a.score > b.score; });
            if (r->req.top_k != 0 && r->req.top_k < res.ranks.size())
              res.ranks.resize(r->req.top_k);
            res.model = self->state.model->model_id;
            res.correlation_id = r->req.correlation_id;
            res.timings.queue_ms = out.queue_ms;
            res.timings.inference_ms = out.inference_ms;
            res.timings.total_ms =
                std::chrono::duration<double, std::milli>(clock::now() - r->start).count();
            done(self, r, std::move(res));
          },
          [self, r](caf::error& err) {
            auto probe_scope = probes::scope(self);
            if (code_of(err) == ec::worker_unavailable || code_of(err) == ec::circuit_open)
              self->state.model.reset();
            done(self, r, std::move(err));
          });
}

} // namespace

std::string rerank_body(const std::string& instruction, const std::string& query,
                        const std::string& document) {
  return "<Instruct>: " + instruction + "\n<Query>: " + query + "\n<Document>: " + document;
}

reranker_actor::behavior_type reranker(reranker_actor::stateful_pointer<reranker_state> self,
                                       reranker_config cfg,
                                       std::shared_ptr<const tok::tokenizer> tokenizer,
                                       supervisor_actor supervisor, rerank_metrics_actor metrics) {
  self->state.probe = probes::attach(self, "reranker", "reranker");
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.tokenizer = std::move(tokenizer);
  st.supervisor = std::move(supervisor);
  st.metrics = std::move(metrics);
  tok::encode_options eo;
  eo.add_special_tokens = false;
  // Constant ASCII text: encoding cannot fail.
  st.prefix_ids = *st.tokenizer->encode(prompt_prefix, eo);
  st.suffix_ids = *st.tokenizer->encode(prompt_suffix, eo);
  return {
      [self](rerank_request& req) -> caf::result<rerank_result> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto r = std::make_shared<request_state>();
        r->req = std::move(req);
        r->promise = self->make_response_promise<rerank_result>();
        ++st.handled;
        ++st.in_flight;
        st.probe->set_state({{"in_flight", std::to_string(st.in_flight)},
                             {"requests", std::to_string(st.handled)}});
        if (st.model) {
          start(self, r);
        } else {
          self->request(st.supervisor, std::chrono::seconds(10), atom::info_v)
              .then(
                  [self, r](worker_info& info) {
                    auto probe_scope = probes::scope(self);
                    self->state.model = std::move(info);
                    start(self, r);
                  },
                  [self, r](caf::error& err) { done(self, r, std::move(err)); });
        }
        return r->promise;
      },
  };
}

caf::expected<reranker_actor> spawn_reranker(caf::actor_system& sys, reranker_config cfg,
                                             std::shared_ptr<const tok::tokenizer> tokenizer,
                                             supervisor_actor supervisor,
                                             rerank_metrics_actor metrics) {
  if (!tokenizer)
    return make_error(ec::invalid_argument, "the reranker needs a tokenizer");
  return sys.spawn(reranker, std::move(cfg), std::move(tokenizer), std::move(supervisor),
                   std::move(metrics));
}

} // namespace embed
