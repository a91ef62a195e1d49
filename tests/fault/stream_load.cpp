#include "tests/fault/stream_load.hpp"

#include <cstdio>
#include <sstream>

namespace embed::testing {

namespace ev1 = embedding::v1;
using clock = std::chrono::steady_clock;

std::string load_report::summary() const {
  std::ostringstream s;
  s << "sent " << sent << ", succeeded " << succeeded << ", failed " << failed;
  if (!failures.empty()) {
    s << " (";
    bool first = true;
    for (auto& [name, n] : failures) {
      s << (first ? "" : ", ") << name << ": " << n;
      first = false;
    }
    s << ")";
  }
  s << ", unanswered " << unanswered << ", duplicated " << duplicated << ", longest gap without "
    << "a success " << static_cast<int64_t>(longest_gap_s * 1000) << " ms, over " << seconds
    << " s; stream " << stream_status;
  return s.str();
}

void load_report::print(const char* what) const {
  std::printf("%s: %s\n", what, summary().c_str());
  std::fflush(stdout);
}

bool stream_load::flows(uint64_t n, std::chrono::seconds timeout) const {
  auto target = succeeded_.load() + n;
  auto until = clock::now() + timeout;
  while (succeeded_.load() < target) {
    if (clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling with a deadline
  }
  return true;
}

stream_load::stream_load(std::shared_ptr<grpc::Channel> channel, double rate_per_s,
                         std::string tag)
    : channel_(std::move(channel)), rate_(rate_per_s), tag_(std::move(tag)),
      stub_(ev1::Embedder::NewStub(channel_)) {}

stream_load::~stream_load() {
  if (writer_.joinable() || reader_.joinable()) {
    stopping_ = true;
    ctx_.TryCancel();
    if (writer_.joinable())
      writer_.join();
    if (reader_.joinable())
      reader_.join();
  }
}

void stream_load::start() {
  stream_ = stub_->EmbedStream(&ctx_);
  started_ = last_success_ = clock::now();
  writer_ = std::thread([this] { write_loop(); });
  reader_ = std::thread([this] { read_loop(); });
}

void stream_load::write_loop() {
  auto next = clock::now();
  auto period = rate_ > 0 ? std::chrono::duration_cast<clock::duration>(
                                std::chrono::duration<double>(1.0 / rate_))
                          : clock::duration::zero();
  for (uint64_t i = 0; !stopping_; ++i) {
    if (rate_ > 0) {
      next += period;
      std::this_thread::sleep_until(next); // pacing the offered load, not synchronisation
    }
    ev1::EmbedRequest req;
    req.add_inputs(tag_ + " request " + std::to_string(i) + ": a sentence to embed");
    req.set_correlation_id(std::to_string(i));
    {
      std::lock_guard<std::mutex> lock(mu_);
      answers_.push_back(0);
    }
    if (!stream_->Write(req)) {
      std::lock_guard<std::mutex> lock(mu_);
      answers_.pop_back(); // never sent
      break;
    }
    ++sent_;
  }
  stream_->WritesDone();
}

void stream_load::read_loop() {
  ev1::EmbedResponse resp;
  while (stream_->Read(&resp)) {
    auto now = clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t i = std::stoull(resp.correlation_id());
    if (i < answers_.size())
      ++answers_[i];
    if (resp.has_error()) {
      ++failed_;
      ++failures_[resp.error().status()];
    } else {
      ++succeeded_;
      longest_gap_s_ = std::max(longest_gap_s_,
                                std::chrono::duration<double>(now - last_success_).count());
      last_success_ = now;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  reader_done_ = true;
}

load_report stream_load::stop(std::chrono::seconds drain) {
  stopping_ = true;
  writer_.join();
  auto until = clock::now() + drain;
  // The reader ends when the server has answered everything and closed the stream.
  while (clock::now() < until) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (reader_done_)
        break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  bool done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done = reader_done_;
  }
  if (!done)
    ctx_.TryCancel(); // what is still unanswered now is reported as such
  reader_.join();
  auto st = stream_->Finish();
  load_report r;
  std::lock_guard<std::mutex> lock(mu_);
  r.sent = sent_;
  r.succeeded = succeeded_;
  r.failed = failed_;
  r.failures = failures_;
  for (auto a : answers_) {
    r.unanswered += a == 0 ? 1 : 0;
    r.duplicated += a > 1 ? 1 : 0;
  }
  r.longest_gap_s = longest_gap_s_;
  r.seconds = std::chrono::duration<double>(clock::now() - started_).count();
  r.stream_status = st.ok() ? "OK" : std::to_string(st.error_code()) + " " + st.error_message();
  return r;
}

} // namespace embed::testing
