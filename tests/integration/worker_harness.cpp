#include "tests/integration/worker_harness.hpp"

namespace embed::testing {

worker_proc::worker_proc(std::vector<std::string> extra, uint16_t fixed_port) {
  port = fixed_port != 0 ? fixed_port : free_port();
  metrics_port = free_port();
  std::vector<std::string> argv{bin_dir() + "/gpu-worker",
                                "serve",
                                "--listen",
                                "127.0.0.1:" + std::to_string(port),
                                "--metrics-listen",
                                "127.0.0.1:" + std::to_string(metrics_port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = std::make_unique<process>("gpu-worker-" + std::to_string(port), argv);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  stub = worker::v1::GpuWorker::NewStub(channel);
  health = grpc::health::v1::Health::NewStub(channel);
}

int worker_proc::health_status(bool fresh) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st;
  if (fresh) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1); // a new connection, not a shared one
    auto ch = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
    st = grpc::health::v1::Health::NewStub(ch)->Check(&ctx, req, &resp);
  } else {
    st = health->Check(&ctx, req, &resp);
  }
  return st.ok() ? static_cast<int>(resp.status()) : -1;
}

bool worker_proc::wait_serving(std::chrono::milliseconds timeout) {
  return poll_until(
             [&] {
               return !proc->running() ||
                      health_status() == grpc::health::v1::HealthCheckResponse::SERVING;
             },
             timeout, std::chrono::milliseconds(50)) &&
         proc->running();
}

std::string worker_proc::metrics() {
  return http_get(metrics_port, "/metrics");
}

worker::v1::PackedSequences pack(const std::vector<std::vector<uint32_t>>& seqs) {
  worker::v1::PackedSequences p;
  p.add_offsets(0);
  for (auto& s : seqs) {
    for (auto id : s)
      p.add_ids(id);
    p.add_offsets(static_cast<uint32_t>(p.ids_size()));
  }
  return p;
}

} // namespace embed::testing
