#include "tests/embedctl/stand_in_embedder.hpp"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <thread>

namespace embed::cli::test {

namespace ev1 = embedding::v1;

std::vector<float> stand_in_vector(const std::string& text, uint32_t dimension, bool normalize) {
  uint32_t h = 2166136261u; // FNV-1a: different texts, different vectors
  for (unsigned char c : text)
    h = (h ^ c) * 16777619u;
  std::vector<float> v(dimension);
  double norm = 0;
  for (uint32_t j = 0; j < dimension; ++j) {
    v[j] = static_cast<float>((h >> (j % 24)) % 97) + 1.0f + 0.25f * static_cast<float>(j);
    norm += static_cast<double>(v[j]) * v[j];
  }
  if (normalize)
    for (auto& x : v)
      x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

namespace {

// The names of the codes the stand-in uses, as the gateway writes them in RequestError.status.
const char* code_name(grpc::StatusCode code) {
  switch (code) {
  case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
  case grpc::StatusCode::INTERNAL: return "INTERNAL";
  default: return "UNKNOWN";
  }
}

} // namespace

float stand_in_score(const std::string& query, const std::string& document) {
  double d = std::fabs(static_cast<double>(document.size()) - static_cast<double>(query.size()));
  return static_cast<float>(1.0 / (1.0 + d));
}

grpc::Status stand_in_embedder::answer(const ev1::EmbedRequest& req, ev1::EmbedResponse* resp) {
  for (int i = 0; i < req.inputs_size(); ++i)
    if (req.inputs(i) == fail_text)
      return {grpc::StatusCode::INVALID_ARGUMENT,
              "inputs[" + std::to_string(i) + "]: rejected by the stand-in"};
  const uint32_t dim = req.options().dimensions() ? req.options().dimensions() : stand_in_dimension;
  const bool normalize = !req.options().has_normalize() || req.options().normalize();
  const bool packed = req.encoding() == ev1::VECTOR_ENCODING_PACKED;
  std::string bytes;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const std::string& text = req.inputs(i);
    auto v = stand_in_vector(text, dim, normalize);
    if (packed) {
      bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    } else {
      auto* e = resp->add_embeddings();
      e->mutable_values()->Add(v.begin(), v.end());
      e->set_index(static_cast<uint32_t>(i));
      e->set_token_count(static_cast<uint32_t>(text.size()));
      e->set_cached(text.rfind("cached:", 0) == 0);
    }
    resp->add_token_counts(static_cast<uint32_t>(text.size()));
  }
  if (packed)
    resp->set_packed(std::move(bytes));
  resp->set_dimension(dim);
  resp->set_model(req.model().empty() ? stand_in_model : req.model());
  resp->set_correlation_id(req.correlation_id());
  resp->set_namespace_(req.namespace_());
  return grpc::Status::OK;
}

void stand_in_embedder::note_outstanding(int n) {
  int seen = max_outstanding_.load();
  while (n > seen && !max_outstanding_.compare_exchange_weak(seen, n)) {
  }
}

std::vector<ev1::EmbedRequest> stand_in_embedder::embed_requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return embed_requests_;
}

std::vector<ev1::EmbedRequest> stand_in_embedder::stream_requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stream_requests_;
}

void stand_in_embedder::record_stream_request(const ev1::EmbedRequest& req) {
  std::lock_guard<std::mutex> lk(mu_);
  stream_requests_.push_back(req);
}

std::vector<ev1::RerankRequest> stand_in_embedder::rerank_requests() const {
  std::lock_guard<std::mutex> lk(mu_);
  return rerank_requests_;
}

std::vector<std::vector<std::string>> stand_in_embedder::answered_stream_inputs() const {
  std::lock_guard<std::mutex> lk(mu_);
  return answered_stream_inputs_;
}

void stand_in_embedder::record_answered(const ev1::EmbedRequest& req) {
  std::lock_guard<std::mutex> lk(mu_);
  answered_stream_inputs_.emplace_back(req.inputs().begin(), req.inputs().end());
}

grpc::ServerUnaryReactor* stand_in_embedder::Embed(grpc::CallbackServerContext* ctx,
                                                   const ev1::EmbedRequest* req,
                                                   ev1::EmbedResponse* resp) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    embed_requests_.push_back(*req);
  }
  auto* r = ctx->DefaultReactor();
  r->Finish(answer(*req, resp));
  return r;
}

namespace {

// Reads ahead as fast as the client sends (so that the number of requests read and not answered
// shows the client's window), answers in order from a worker thread after a short delay.
class stream_reactor final : public grpc::ServerBidiReactor<ev1::EmbedRequest, ev1::EmbedResponse> {
public:
  explicit stream_reactor(stand_in_embedder& owner) : owner_(owner) {
    StartRead(&in_);
    worker_ = std::thread([this] { work(); });
  }

  void OnReadDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!ok) {
        reads_done_ = true;
        cv_.notify_all();
        return;
      }
      owner_.record_stream_request(in_);
      queue_.push_back(std::move(in_));
      in_.Clear();
      owner_.note_outstanding(++outstanding_);
      cv_.notify_all();
      if (finished_)
        return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lk(mu_);
    writing_ = false;
    write_failed_ = !ok;
    cv_.notify_all();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lk(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

  void OnDone() override {
    worker_.join();
    delete this;
  }

private:
  void finish(const grpc::Status& st) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      finished_ = true;
    }
    Finish(st);
  }

  void work() {
    for (;;) {
      ev1::EmbedRequest req;
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return !queue_.empty() || reads_done_ || cancelled_; });
      if (cancelled_ || queue_.empty()) {
        // Cancelled, or the client is done and everything is answered.
        bool cancelled = cancelled_;
        lk.unlock();
        return finish(cancelled ? grpc::Status::CANCELLED : grpc::Status::OK);
      }
      req = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      std::this_thread::sleep_for(owner_.stream_delay);
      auto holds = [&](const char* text) {
        return std::find(req.inputs().begin(), req.inputs().end(), text) != req.inputs().end();
      };
      if (holds(stall_text)) {
        lk.lock();
        cv_.wait(lk, [&] { return cancelled_; });
        lk.unlock();
        return finish(grpc::Status::CANCELLED);
      }
      if (holds(drop_text) && owner_.take_drop())
        return finish({grpc::StatusCode::UNAVAILABLE, "the stand-in dropped the stream"});
      out_.Clear();
      grpc::Status st = owner_.answer(req, &out_);
      if (!st.ok()) {
        // Rejected: answered in band, the stream goes on.
        out_.Clear();
        auto* e = out_.mutable_error();
        e->set_code(static_cast<int32_t>(st.error_code()));
        e->set_status(code_name(st.error_code()));
        e->set_message(st.error_message());
        out_.set_correlation_id(req.correlation_id());
      }
      const int misnumber_at = owner_.misnumber_at.load();
      out_.set_sequence(sequence_ + (sequence_ == misnumber_at ? 1 : 0));
      ++sequence_;
      lk.lock();
      --outstanding_;
      writing_ = true;
      lk.unlock();
      StartWrite(&out_);
      lk.lock();
      cv_.wait(lk, [&] { return !writing_ || cancelled_; });
      if (write_failed_ || cancelled_) {
        lk.unlock();
        return finish(grpc::Status::CANCELLED);
      }
      lk.unlock();
      owner_.record_answered(req);
    }
  }

  stand_in_embedder& owner_;
  ev1::EmbedRequest in_;
  ev1::EmbedResponse out_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ev1::EmbedRequest> queue_;
  int outstanding_ = 0;
  int sequence_ = 0; // of the next answer; worker thread only
  bool reads_done_ = false;
  bool writing_ = false;
  bool write_failed_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
};

} // namespace

grpc::ServerBidiReactor<ev1::EmbedRequest, ev1::EmbedResponse>*
stand_in_embedder::EmbedStream(grpc::CallbackServerContext*) {
  ++streams_;
  return new stream_reactor(*this);
}

grpc::ServerUnaryReactor* stand_in_embedder::Rerank(grpc::CallbackServerContext* ctx,
                                                    const ev1::RerankRequest* req,
                                                    ev1::RerankResponse* resp) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    rerank_requests_.push_back(*req);
  }
  auto* reactor = ctx->DefaultReactor();
  for (int i = 0; i < req->documents_size(); ++i)
    if (req->documents(i) == fail_text) {
      reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT,
                       "documents[" + std::to_string(i) + "]: rejected by the stand-in"});
      return reactor;
    }
  std::vector<uint32_t> order(static_cast<size_t>(req->documents_size()));
  for (uint32_t i = 0; i < order.size(); ++i)
    order[i] = i;
  auto score = [&](uint32_t i) {
    return stand_in_score(req->query(), req->documents(static_cast<int>(i)));
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return score(a) > score(b); });
  if (req->top_k() > 0 && req->top_k() < order.size())
    order.resize(req->top_k());
  for (uint32_t i : order) {
    auto* r = resp->add_ranks();
    r->set_index(i);
    r->set_score(score(i));
    if (req->return_documents())
      r->set_text(req->documents(static_cast<int>(i)));
  }
  resp->set_model("stand-in-rerank");
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* stand_in_embedder::Info(grpc::CallbackServerContext* ctx,
                                                  const ev1::InfoRequest*,
                                                  ev1::InfoResponse* resp) {
  resp->set_version("stand-in-1");
  auto* m = resp->add_models();
  m->set_id(stand_in_model);
  m->set_kind("embedding");
  m->set_dimension(stand_in_dimension);
  m->set_max_tokens(512);
  m->set_trained(false);
  resp->mutable_limits()->set_max_in_flight_per_stream(8);
  auto* w = resp->add_workers();
  w->set_endpoint("127.0.0.1:50052");
  w->set_breaker_state("closed");
  resp->add_prompt_names("query");
  auto* r = ctx->DefaultReactor();
  r->Finish(grpc::Status::OK);
  return r;
}

stand_in_server::stand_in_server() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.RegisterService(&service);
  server = b.BuildAndStart();
  if (!server || port == 0)
    throw std::runtime_error("stand-in server did not start");
}

stand_in_server::~stand_in_server() {
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

} // namespace embed::cli::test
