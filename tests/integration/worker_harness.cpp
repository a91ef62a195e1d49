#include "tests/integration/worker_harness.hpp"

#include <stdexcept>

namespace embed::testing {

worker_proc::worker_proc(std::vector<std::string> extra, uint16_t fixed_port) {
  // Port 0 unless the test needs a known address (it then holds a port_reservation for it):
  // the worker reports the ports it bound in its --listening-file.
  auto ports_file = temp_dir("worker-ports") + "/ports.json";
  std::vector<std::string> argv{bin_dir() + "/gpu-worker",
                                "serve",
                                "--listen",
                                "127.0.0.1:" + std::to_string(fixed_port),
                                "--metrics-listen",
                                "127.0.0.1:0",
                                "--listening-file",
                                ports_file};
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = std::make_unique<process>("gpu-worker", argv);
  auto ports = wait_ports_file(ports_file, *proc);
  if (!ports)
    throw std::runtime_error("gpu-worker did not report its ports:\n" + proc->log());
  port = ports->first;
  metrics_port = ports->second;
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
