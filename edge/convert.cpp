#include "edge/convert.hpp"

#include <cstring>

namespace embed::edge {

namespace ev1 = embedding::v1;
namespace wv1 = worker::v1;

static_assert(sizeof(float) == 4, "float32 expected");

std::string pack_floats(const float* data, size_t n) {
  // The supported targets (x86-64, aarch64) are little-endian: the bytes are the floats.
  return std::string(reinterpret_cast<const char*>(data), n * sizeof(float));
}

std::vector<float> unpack_floats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

embedding_options from_proto(const ev1::EmbedOptions& in) {
  embedding_options o;
  o.normalize = in.has_normalize() ? in.normalize() : true;
  o.dimensions = in.dimensions();
  o.truncate = in.truncate();
  switch (in.truncation_direction()) {
  case ev1::TRUNCATION_DIRECTION_UNSPECIFIED:
  case ev1::TRUNCATION_DIRECTION_RIGHT: o.direction = truncation_direction::right; break;
  case ev1::TRUNCATION_DIRECTION_LEFT: o.direction = truncation_direction::left; break;
  default:
    // Unknown enum values survive as-is so that validate() can name them; negative and large
    // ones become 255 (a plain uint8_t cast would turn -255 into 1, a valid direction).
    o.direction = static_cast<truncation_direction>(static_cast<uint8_t>(
        in.truncation_direction() < 0 || in.truncation_direction() > 255
            ? 255
            : in.truncation_direction()));
  }
  o.instruction = in.instruction();
  o.prompt_name = in.prompt_name();
  return o;
}

embedding_request from_proto(const ev1::EmbedRequest& in) {
  embedding_request r;
  r.inputs.assign(in.inputs().begin(), in.inputs().end());
  r.model = in.model();
  r.options = from_proto(in.options());
  r.correlation_id = in.correlation_id();
  r.ns = in.namespace_();
  return r;
}

rerank_request from_proto(const ev1::RerankRequest& in) {
  rerank_request r;
  r.query = in.query();
  r.documents.assign(in.documents().begin(), in.documents().end());
  r.top_k = in.top_k();
  r.instruction = in.instruction();
  r.return_documents = in.return_documents();
  r.model = in.model();
  r.correlation_id = in.correlation_id();
  r.truncate = in.truncate();
  return r;
}

void to_proto(const embedding_result& in, ev1::VectorEncoding encoding, ev1::EmbedResponse* out) {
  const auto n = in.size();
  if (encoding == ev1::VECTOR_ENCODING_PACKED) {
    out->set_packed(pack_floats(in.vectors.data(), in.vectors.size()));
  } else {
    out->mutable_embeddings()->Reserve(static_cast<int>(n));
    for (size_t i = 0; i < n; ++i) {
      auto* e = out->add_embeddings();
      e->mutable_values()->Add(in.row(i), in.row(i) + in.dimension);
      e->set_index(static_cast<uint32_t>(i));
      if (i < in.token_counts.size())
        e->set_token_count(in.token_counts[i]);
      e->set_cached(i < in.cached.size() && in.cached[i] != 0);
    }
  }
  out->set_dimension(in.dimension);
  out->set_model(in.model);
  out->set_correlation_id(in.correlation_id);
  out->set_namespace_(in.ns);
  uint32_t tokens = 0;
  for (auto t : in.token_counts)
    tokens += t;
  out->mutable_token_counts()->Add(in.token_counts.begin(), in.token_counts.end());
  out->mutable_usage()->set_prompt_tokens(tokens);
  out->mutable_usage()->set_cache_hits(in.cache_hits);
  auto* t = out->mutable_timings();
  t->set_queue_ms(in.timings.queue_ms);
  t->set_tokenize_ms(in.timings.tokenize_ms);
  t->set_inference_ms(in.timings.inference_ms);
  t->set_total_ms(in.timings.total_ms);
}

void to_proto(const rerank_result& in, const std::vector<std::string>* documents,
              ev1::RerankResponse* out) {
  for (const auto& r : in.ranks) {
    auto* p = out->add_ranks();
    p->set_index(r.index);
    p->set_score(r.score);
    if (documents != nullptr && r.index < documents->size())
      p->set_text((*documents)[r.index]);
  }
  out->set_model(in.model);
  out->set_correlation_id(in.correlation_id);
  out->mutable_usage()->set_prompt_tokens(in.prompt_tokens);
  auto* t = out->mutable_timings();
  t->set_queue_ms(in.timings.queue_ms);
  t->set_tokenize_ms(in.timings.tokenize_ms);
  t->set_inference_ms(in.timings.inference_ms);
  t->set_total_ms(in.timings.total_ms);
}

void to_proto(const packed_sequences& in, wv1::PackedSequences* out) {
  out->mutable_ids()->Reserve(static_cast<int>(in.ids.size()));
  for (auto id : in.ids)
    out->add_ids(static_cast<uint32_t>(id));
  for (auto o : in.offsets)
    out->add_offsets(static_cast<uint32_t>(o));
}

packed_sequences from_proto(const wv1::PackedSequences& in) {
  packed_sequences s;
  s.ids.reserve(in.ids_size());
  for (auto id : in.ids())
    s.ids.push_back(static_cast<int32_t>(id)); // ids past INT32_MAX turn negative: rejected later
  s.offsets.assign(in.offsets().begin(), in.offsets().end());
  return s;
}

worker_job job_from_proto(const wv1::EmbedRequest& in) {
  worker_job j;
  j.kind = job_kind::embed;
  j.sequences = from_proto(in.sequences());
  j.normalize = in.normalize();
  j.dimensions = in.dimensions();
  j.correlation_id = in.correlation_id();
  return j;
}

worker_job job_from_proto(const wv1::ScoreRequest& in) {
  worker_job j;
  j.kind = job_kind::score;
  j.sequences = from_proto(in.sequences());
  j.yes_id = static_cast<int32_t>(in.yes_token_id());
  j.no_id = static_cast<int32_t>(in.no_token_id());
  j.correlation_id = in.correlation_id();
  return j;
}

void to_proto(const worker_output& in, wv1::EmbedResponse* out) {
  out->set_vectors(pack_floats(in.values.data(), in.values.size()));
  out->set_dimension(in.dimension);
  out->set_count(in.count);
  out->set_queue_ms(in.queue_ms);
  out->set_inference_ms(in.inference_ms);
}

void to_proto(const worker_output& in, wv1::ScoreResponse* out) {
  out->mutable_scores()->Add(in.values.begin(), in.values.end());
  out->mutable_yes_logits()->Add(in.yes_logits.begin(), in.yes_logits.end());
  out->mutable_no_logits()->Add(in.no_logits.begin(), in.no_logits.end());
  out->set_queue_ms(in.queue_ms);
  out->set_inference_ms(in.inference_ms);
}

} // namespace embed::edge
