#pragma once
// Protobuf <-> typed message conversions. No logic beyond copying fields and packing floats:
// validation happens in messages/validate.hpp, not here.

#include "messages/embedding.hpp"
#include "messages/worker.hpp"

#include "embedding/v1/embedding.pb.h"
#include "worker/v1/worker.pb.h"

#include <string>
#include <vector>

namespace embed::edge {

// public API
embedding_request from_proto(const embedding::v1::EmbedRequest& in);
embedding_options from_proto(const embedding::v1::EmbedOptions& in);
rerank_request from_proto(const embedding::v1::RerankRequest& in);
void to_proto(const embedding_result& in, embedding::v1::VectorEncoding encoding,
              embedding::v1::EmbedResponse* out);
void to_proto(const rerank_result& in, const std::vector<std::string>* documents,
              embedding::v1::RerankResponse* out);

// worker API: the gateway builds requests, the worker reads them into jobs
void to_proto(const packed_sequences& in, worker::v1::PackedSequences* out);
packed_sequences from_proto(const worker::v1::PackedSequences& in);
worker_job job_from_proto(const worker::v1::EmbedRequest& in);
worker_job job_from_proto(const worker::v1::ScoreRequest& in);
void to_proto(const worker_output& in, worker::v1::EmbedResponse* out);
void to_proto(const worker_output& in, worker::v1::ScoreResponse* out);

/// Little-endian float32 bytes <-> floats.
std::string pack_floats(const float* data, size_t n);
std::vector<float> unpack_floats(const std::string& bytes);

} // namespace embed::edge
