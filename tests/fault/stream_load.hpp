#pragma once
// A steady EmbedStream load with exact accounting, for the fault tests: every request carries its
// index; every answer is counted against it. After stop(), each request sent was answered once
// (succeeded or failed with an explicit error), or is reported unanswered / duplicated.

#include "embedding/v1/embedding.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace embed::testing {

struct load_report {
  uint64_t sent = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;     // answered with an explicit error
  uint64_t unanswered = 0; // sent, never answered: must be 0
  uint64_t duplicated = 0; // answered more than once: must be 0
  std::map<std::string, uint64_t> failures; // status name -> count
  double longest_gap_s = 0;                 // longest stretch without a successful answer
  double seconds = 0;
  std::string stream_status; // how the stream itself ended ("OK" or the status)
  /// One line: "sent N, succeeded N, failed N (UNAVAILABLE: n, ...), unanswered N, ...".
  std::string summary() const;
  /// Prints "<what>: <summary>" on stdout (the figures a fault test reports).
  void print(const char* what) const;
};

class stream_load {
public:
  /// rate_per_s: requests per second offered (0: as fast as the stream's backpressure allows).
  /// tag: makes every text unique (no cache hits) and names the load in its summary.
  stream_load(std::shared_ptr<grpc::Channel> channel, double rate_per_s, std::string tag);
  ~stream_load();
  stream_load(const stream_load&) = delete;
  stream_load& operator=(const stream_load&) = delete;

  void start();
  /// Stops writing, reads every remaining answer (up to `drain`), returns the accounting.
  load_report stop(std::chrono::seconds drain = std::chrono::seconds(120));

  /// Waits until `n` more requests than now have succeeded (the load flows); false on timeout.
  bool flows(uint64_t n, std::chrono::seconds timeout = std::chrono::seconds(120)) const;

  uint64_t sent() const { return sent_.load(); }
  uint64_t succeeded() const { return succeeded_.load(); }
  uint64_t failed() const { return failed_.load(); }

private:
  void write_loop();
  void read_loop();

  std::shared_ptr<grpc::Channel> channel_;
  double rate_;
  std::string tag_;
  std::unique_ptr<embedding::v1::Embedder::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<embedding::v1::EmbedRequest,
                                           embedding::v1::EmbedResponse>>
      stream_;
  std::thread writer_, reader_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> sent_{0}, succeeded_{0}, failed_{0};
  std::chrono::steady_clock::time_point started_;
  std::mutex mu_; // guards what follows
  std::vector<uint32_t> answers_;
  std::map<std::string, uint64_t> failures_;
  std::chrono::steady_clock::time_point last_success_;
  double longest_gap_s_ = 0;
  bool reader_done_ = false;
};

} // namespace embed::testing
