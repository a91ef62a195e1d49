#include "cmd/embedctl/embed_stream.hpp"

#include "cmd/embedctl/input_lines.hpp"
#include "cmd/embedctl/progress.hpp"

#include "embedding/v1/embedding.grpc.pb.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace embed::cli {

namespace {

namespace ev1 = embedding::v1;
using clock = std::chrono::steady_clock;

// Streams that fail in a row (server gone, shutting down, overloaded, timeouts) with nothing
// answered in between before the run gives up. A request the server rejects is answered in band
// (EmbedResponse.error) on a stream that goes on, and does not count.
constexpr int max_failed_streams = 3;
constexpr auto reopen_backoff = std::chrono::milliseconds(200);
// A run of bad lines is cut into batches of at most this many records, so that a file of garbage
// is reported as it is read instead of piling up in memory.
constexpr size_t max_records_per_batch = 4096;

// "STATUS: message" for a request the server rejected in band, as error lines show statuses.
std::string describe_rejection(const ev1::RequestError& e) {
  if (e.status().empty())
    return describe(grpc::Status(static_cast<grpc::StatusCode>(e.code()), e.message()));
  return e.status() + ": " + e.message();
}

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// A slice of the input: up to `batch` good records (the request) and the bad records among them,
// so that error lines come out in input order with the results around them.
struct batch {
  std::vector<input_record> records;
  ev1::EmbedRequest request;
  ev1::EmbedResponse response;
  grpc::Status status;  // set when the request got no answer (the stream failed on it, giving up)
  std::string rejected; // set when the server answered with EmbedResponse.error
  bool done = false;    // answered, failed, or nothing to send
};

class stream_run {
public:
  stream_run(const client_options& client, const embed_options& embed, const stream_options& opts,
             output_format format, line_source& input)
      : client_(client), embed_(embed), opts_(opts), input_(input), sink_(format),
        progress_(stderr_is_terminal(), input.count_records()),
        stub_(ev1::Embedder::NewStub(make_channel(client))), prototype_(make_request(embed)) {}

  int run();

private:
  std::unique_ptr<batch> read_batch();
  batch* next_to_send();
  grpc::Status drive_stream(batch* first);
  void watch(grpc::ClientContext& ctx);
  void emit_ready();
  void write_batch(batch& b);
  void push_pending(batch* b);
  void written();

  const client_options& client_;
  const embed_options& embed_;
  const stream_options& opts_;
  line_source& input_;
  embed_sink sink_;
  progress_bar progress_;
  std::unique_ptr<ev1::Embedder::Stub> stub_;
  ev1::EmbedRequest prototype_;
  size_t batches_read_ = 0;
  bool input_done_ = false;   // main thread only
  std::deque<batch*> resend_; // main thread only; sent on a failed stream, owned by order_

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<batch>> order_; // not yet written, in input order
  std::deque<batch*> pending_;               // sent on the current stream, not yet answered
  bool stream_done_ = false;
  bool writes_done_ = false;
  bool timed_out_ = false;
  std::string broken_;            // how the server broke the order of answers; fatal
  size_t answered_on_stream_ = 0; // also the sequence the next answer must carry
  batch* writing_ = nullptr; // in stream->Write: its answer may come first, but it must live on
  clock::time_point waiting_since_; // since when an answer is awaited without one arriving
  size_t done_records_ = 0;
};

std::unique_ptr<batch> stream_run::read_batch() {
  auto b = std::make_unique<batch>();
  b->request = prototype_;
  while (static_cast<size_t>(b->request.inputs_size()) < opts_.batch &&
         b->records.size() < max_records_per_batch) {
    auto rec = input_.next(opts_.plain);
    if (!rec)
      break;
    if (rec->ok())
      b->request.add_inputs(std::move(rec->text));
    b->records.push_back(std::move(*rec));
  }
  if (b->records.empty())
    return nullptr;
  ++batches_read_;
  if (!embed_.correlation_id.empty()) // one id per request, so that each can be found in the logs
    b->request.set_correlation_id(embed_.correlation_id + "-" + std::to_string(batches_read_));
  return b;
}

// The next request to write: one a failed stream left unanswered, else fresh input. Batches with
// no good record are finished here. nullptr at the end of the input.
batch* stream_run::next_to_send() {
  if (!resend_.empty()) {
    batch* b = resend_.front();
    resend_.pop_front();
    return b;
  }
  while (!input_done_) {
    auto b = read_batch();
    if (!b) {
      input_done_ = true;
      break;
    }
    std::lock_guard<std::mutex> lk(m_);
    batch* raw = b.get();
    order_.push_back(std::move(b));
    if (raw->request.inputs_size() > 0)
      return raw;
    raw->done = true;
    emit_ready();
  }
  return nullptr;
}

void stream_run::push_pending(batch* b) {
  std::lock_guard<std::mutex> lk(m_);
  if (pending_.empty())
    waiting_since_ = clock::now();
  pending_.push_back(b);
  writing_ = b;
  cv_.notify_all(); // the watchdog has something to wait for now
}

void stream_run::written() {
  std::lock_guard<std::mutex> lk(m_);
  writing_ = nullptr;
  emit_ready(); // what an answer during the write could not release
}

// Writes finished batches at the head of the input order. Called with m_ held.
void stream_run::emit_ready() {
  bool wrote = false;
  while (!order_.empty() && order_.front()->done && order_.front().get() != writing_) {
    write_batch(*order_.front());
    done_records_ += order_.front()->records.size();
    order_.pop_front();
    wrote = true;
  }
  if (wrote) {
    sink_.flush();
    progress_.update(done_records_);
  }
}

void stream_run::write_batch(batch& b) {
  const size_t n = static_cast<size_t>(b.request.inputs_size());
  decoded_embeddings d;
  std::string failure;
  if (!b.status.ok()) {
    failure = describe(b.status);
  } else if (!b.rejected.empty()) {
    failure = b.rejected;
  } else if (n > 0) {
    if (auto bad = decode(b.response, n, d))
      failure = "INTERNAL: " + *bad;
  }
  size_t k = 0; // position among the batch's good records = position in the request
  for (const auto& rec : b.records) {
    row_ref row{rec.index, rec.line, rec.id.is_null() ? nullptr : &rec.id};
    if (!rec.ok()) {
      sink_.error(row, rec.error);
      continue;
    }
    if (!failure.empty())
      sink_.error(row, failure);
    else
      sink_.vector(row, d.rows[k], d.dimension, d.tokens[k], d.cached[k], b.response.model());
    ++k;
  }
}

// Cancels the stream when no answer arrives for --timeout while one is awaited: a stalled server
// must not hang a batch job. The whole-stream deadline of a unary call would cut long files off.
void stream_run::watch(grpc::ClientContext& ctx) {
  if (client_.timeout_s <= 0)
    return;
  const auto limit =
      std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(client_.timeout_s));
  std::unique_lock<std::mutex> lk(m_);
  while (!stream_done_) {
    if (pending_.empty() && !writes_done_) {
      cv_.wait(lk);
      continue;
    }
    auto deadline = waiting_since_ + limit;
    if (clock::now() >= deadline) {
      timed_out_ = true;
      ctx.TryCancel();
      return;
    }
    cv_.wait_until(lk, deadline);
  }
}

// One EmbedStream, opened once there is something to send (an empty input never connects):
// writes first, then more until the input ends, the window is full (then waits for answers) or
// the stream breaks; returns its final status. Unanswered batches are left in pending_.
grpc::Status stream_run::drive_stream(batch* first) {
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lk(m_);
    stream_done_ = writes_done_ = timed_out_ = false;
    broken_.clear();
    answered_on_stream_ = 0;
  }
  auto stream = stub_->EmbedStream(&ctx);

  // Answers come in request order (the API's contract), so each belongs to the oldest pending;
  // its sequence says so. A rejected request is answered like the others, with an error.
  std::thread reader([&] {
    ev1::EmbedResponse r;
    while (stream->Read(&r)) {
      std::lock_guard<std::mutex> lk(m_);
      if (pending_.empty()) {
        broken_ = "the server sent more answers than requests";
      } else if (r.sequence() != answered_on_stream_) {
        broken_ = "the server broke the order of answers: the answer to request " +
                  std::to_string(answered_on_stream_) + " of the stream came with sequence " +
                  std::to_string(r.sequence());
      }
      if (!broken_.empty()) {
        ctx.TryCancel();
        break;
      }
      batch* b = pending_.front();
      pending_.pop_front();
      if (r.has_error())
        b->rejected = describe_rejection(r.error());
      else
        b->response.Swap(&r);
      b->done = true;
      ++answered_on_stream_;
      waiting_since_ = clock::now();
      emit_ready();
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lk(m_);
    stream_done_ = true;
    cv_.notify_all();
  });
  std::thread watchdog([&] { watch(ctx); });

  bool write_failed = false;
  for (batch* b = first;; b = nullptr) {
    if (!b) {
      std::unique_lock<std::mutex> lk(m_);
      cv_.wait(lk, [&] { return stream_done_ || pending_.size() < opts_.in_flight; });
      if (stream_done_)
        break;
      lk.unlock();
      b = next_to_send();
      if (!b)
        break;
    }
    push_pending(b);
    bool ok = stream->Write(b->request);
    written();
    if (!ok) {
      write_failed = true;
      break;
    }
  }
  if (!write_failed) {
    stream->WritesDone();
    std::lock_guard<std::mutex> lk(m_);
    writes_done_ = true;
    if (pending_.empty())
      waiting_since_ = clock::now(); // now waiting for the server to close the stream
    cv_.notify_all();
  }
  reader.join();
  watchdog.join();
  grpc::Status st = stream->Finish();

  std::lock_guard<std::mutex> lk(m_);
  if (timed_out_)
    return {grpc::StatusCode::DEADLINE_EXCEEDED,
            "no answer from the server within " + format_seconds(client_.timeout_s) + " s"};
  if (!broken_.empty())
    return {grpc::StatusCode::INTERNAL, broken_};
  if (st.ok() && !pending_.empty())
    return {grpc::StatusCode::INTERNAL, "the server ended the stream with requests unanswered"};
  return st;
}

int stream_run::run() {
  const auto start = clock::now();
  int failed_streams = 0;
  grpc::Status fatal;
  for (;;) {
    batch* first = next_to_send();
    if (!first)
      break;
    grpc::Status st = drive_stream(first);
    std::unique_lock<std::mutex> lk(m_);
    if (st.ok()) {
      // Everything sent was answered (drive_stream says otherwise); if the server closed the
      // stream before the input ended, the next one takes the rest.
      failed_streams = 0;
      continue;
    }
    // Only what got no answer is sent again, in its order and ahead of fresh input: every input
    // gets exactly one line.
    if (!broken_.empty()) {
      // Answers can no longer be matched to requests: nothing more is sent.
      resend_.insert(resend_.begin(), pending_.begin(), pending_.end());
      pending_.clear();
      fatal = st;
      break;
    }
    // The stream failed as a whole (cancelled, server shutting down, too many streams, gone).
    // On --timeout the oldest unanswered request takes the blame: the server sat on it, and
    // sending it again would most likely stall again. The others never had a fair try.
    if (timed_out_ && !pending_.empty()) {
      batch* b = pending_.front();
      pending_.pop_front();
      b->status = st;
      b->done = true;
    }
    resend_.insert(resend_.begin(), pending_.begin(), pending_.end());
    pending_.clear();
    emit_ready();
    failed_streams = answered_on_stream_ > 0 ? 1 : failed_streams + 1;
    if (failed_streams >= max_failed_streams) {
      fatal = st;
      break;
    }
    lk.unlock();
    std::this_thread::sleep_for(reopen_backoff * failed_streams);
  }
  // Giving up: what was read and not answered is reported; the rest of the input is not read.
  {
    std::lock_guard<std::mutex> lk(m_);
    for (batch* b : resend_) {
      b->status = fatal;
      b->done = true;
    }
    resend_.clear();
    emit_ready();
  }
  double seconds = std::chrono::duration<double>(clock::now() - start).count();
  progress_.finish(done_records_);
  sink_.finish(seconds);
  if (!fatal.ok())
    report(fatal);
  std::fprintf(stderr, "embedded %zu texts (%zu errors) in %.2f s\n", sink_.succeeded(),
               sink_.failed(), seconds);
  return sink_.failed() == 0 && fatal.ok() ? exit_ok : exit_failure;
}

} // namespace

int run_embed_stream(const client_options& client, const embed_options& embed,
                     const stream_options& stream, output_format format) {
  line_source input(stream.path);
  if (!input.error().empty()) {
    std::cerr << "embedctl: " << input.error() << '\n';
    return exit_failure;
  }
  stream_run run(client, embed, stream, format, input);
  return run.run();
}

} // namespace embed::cli
