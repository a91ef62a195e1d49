#include "cmd/gpu-worker/serve_command.hpp"

#include "actors/inspect/grpc_service.hpp"
#include "actors/inspect/inspector.hpp"
#include "actors/worker/batcher.hpp"
#include "actors/worker/grpc_service.hpp"
#include "actors/worker/model_holder.hpp"
#include "edge/parse.hpp"
#include "edge/reflection_v1.hpp"
#include "edge/tls.hpp"
#include "gpu/model.hpp"
#include "logging/log.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "metrics/process_metrics.hpp"
#include "tokenizer/tokenizer.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <pthread.h>

namespace embed::worker_cli {

namespace {

constexpr const char* untrained_note =
    "built-in UNTRAINED Qwen3: real Qwen3 vocabulary, random weights from a fixed seed. Its "
    "vectors and scores carry NO meaning. To serve a real model: gpu-worker serve --model "
    "/path/to/Qwen3-Embedding-0.6B (or a Qwen3-Reranker folder), a Hugging Face checkout with "
    "config.json, model.safetensors and tokenizer.json.";

/// {"grpc_port": P, "metrics_port": M}, written then renamed so that a reader never sees half.
void write_ports_file(const std::string& path, int port, uint16_t metrics_port) {
  auto tmp = path + ".tmp";
  std::ofstream(tmp) << "{\"grpc_port\": " << port << ", \"metrics_port\": " << metrics_port
                     << "}\n";
  std::filesystem::rename(tmp, path);
}

std::string resolve_tokenizer(const serve_config& cfg) {
  if (!cfg.tokenizer.empty())
    return cfg.tokenizer;
  if (!cfg.model_dir.empty()) {
    auto p = std::filesystem::path(cfg.model_dir) / "tokenizer.json";
    return std::filesystem::exists(p) ? p.string() : std::string{};
  }
  return tok::default_tokenizer_path("qwen3-embedding");
}

void set_health(grpc::Server& server, bool serving) {
  auto* health = server.GetHealthCheckService();
  health->SetServingStatus(serving);
  health->SetServingStatus("worker.v1.GpuWorker", serving);
}

} // namespace

void add_serve_command(CLI::App& app) {
  auto cfg = std::make_shared<serve_config>();
  auto* cmd = app.add_subcommand("serve", "serve worker.v1.GpuWorker over gRPC");
  cmd->add_option("--model", cfg->model_dir,
                  "Hugging Face checkpoint folder (default: the built-in untrained Qwen3)");
  cmd->add_option("--listen", cfg->listen, "gRPC address HOST:PORT (port 0 picks one)")
      ->capture_default_str();
  cmd->add_option("--metrics-listen", cfg->metrics_listen, "/metrics address HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--device", cfg->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--actor-threads", cfg->scheduler.threads,
                  "CAF threads running the worker's actors (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--actor-spin", cfg->scheduler.spin,
                  "times an idle CAF thread polls for work before it blocks")
      ->capture_default_str();
  cmd->add_option("--dtype", cfg->dtype, "float32, bfloat16 or float16")->capture_default_str();
  cmd->add_option("--tokenizer", cfg->tokenizer,
                  "tokenizer.json whose hash Info reports (default: the model's, or the "
                  "built-in Qwen3-Embedding one)");
  cmd->add_option("--max-batch-tokens", cfg->max_batch_tokens,
                  "padded tokens per forward (sequences x longest)")
      ->capture_default_str();
  cmd->add_option("--max-batch-requests", cfg->max_batch_requests, "sequences per forward")
      ->capture_default_str();
  cmd->add_option("--max-queue-tokens", cfg->max_queue_tokens,
                  "tokens waiting; past it calls get RESOURCE_EXHAUSTED")
      ->capture_default_str();
  cmd->add_option("--max-message-bytes", cfg->max_message_bytes, "largest gRPC message")
      ->capture_default_str();
  cmd->add_option("--yes-id", cfg->yes_id, "reranker 'yes' token id (default: from tokenizer)");
  cmd->add_option("--no-id", cfg->no_id, "reranker 'no' token id (default: from tokenizer)");
  cmd->add_option("--drain-timeout", cfg->drain_timeout_s,
                  "seconds to finish queued work after SIGTERM")
      ->capture_default_str();
  cmd->add_option("--ready-file", cfg->ready_file,
                  "write {\"grpc_port\":P,\"metrics_port\":M} here once serving");
  cmd->add_option("--listening-file", cfg->listening_file,
                  "write {\"grpc_port\":P,\"metrics_port\":M} here once listening, before the "
                  "model loads (ports of --listen HOST:0 and --metrics-listen HOST:0)");
  cmd->add_option("--log-level", cfg->log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
  cmd->add_flag("--log-json", cfg->log_json, "JSON lines logs");
  cmd->add_option("--inspect-token", cfg->inspect_token,
                  "bearer token every inspect API call (embedctl top) must carry; without one "
                  "the inspect API is served on a loopback --listen only");
  cmd->add_option("--max-inspect-watches", cfg->inspect.max_watches,
                  "inspect Watch streams open at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-inspect-watches-per-connection", cfg->inspect.max_watches_per_connection,
                  "inspect Watch streams on one client connection")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--allow-insecure-remote", cfg->allow_insecure_remote,
                "serve plaintext gRPC on a non-loopback address");
  edge::add_server_tls_options(*cmd, cfg->tls);
  cmd->callback([cfg] { std::exit(run_serve(*cfg)); });
}

int run_serve(const serve_config& cfg) {
  // Block the shutdown signals before any thread starts so that only sigwait() sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (!log::valid_level(cfg.log_level)) {
    std::fprintf(stderr, "gpu-worker: --log-level %s is not a level\n", cfg.log_level.c_str());
    return 2;
  }
  log::init({"gpu-worker", cfg.log_level, cfg.log_json, true});
  edge::route_library_logs(); // libprotobuf's and gRPC's lines as ours (text or --log-json)

  if (!cfg.tls.enabled() && !edge::is_loopback(cfg.listen) && !cfg.allow_insecure_remote) {
    spdlog::critical("refusing to serve plaintext gRPC on the non-loopback address {}: give "
                     "--tls-cert/--tls-key (and --tls-client-ca for mutual TLS), or pass "
                     "--allow-insecure-remote to do it anyway",
                     cfg.listen);
    return 2;
  }
  auto server_creds = edge::server_credentials(cfg.tls);
  if (!server_creds) {
    spdlog::critical("{}", message_of(server_creds.error()));
    return 2;
  }

  batcher_config bcfg;
  bcfg.max_batch_tokens = cfg.max_batch_tokens;
  bcfg.max_batch_requests = cfg.max_batch_requests;
  bcfg.max_queue_tokens = cfg.max_queue_tokens;
  bcfg.device = cfg.device;
  if (auto err = bcfg.validate()) {
    spdlog::critical("{}", message_of(err));
    return 2;
  }

  caf::actor_system_config caf_cfg;
  register_types(caf_cfg);
  apply(cfg.scheduler, caf_cfg);
  caf::actor_system sys{caf_cfg};

  auto metrics = metrics::process_metrics::make();
  if (!metrics) {
    spdlog::critical("metrics: {}", message_of(metrics.error()));
    return 2;
  }
  auto metric_actors = (*metrics)->spawn_actors(sys);
  auto exposer = (*metrics)->expose(cfg.metrics_listen);
  if (!exposer) {
    spdlog::critical("cannot serve /metrics on {}: {}", cfg.metrics_listen,
                     message_of(exposer.error()));
    return 2;
  }

  // The server starts before the model loads so that health checks see NOT_SERVING meanwhile.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  worker_grpc_service service{sys, metric_actors.http};
  auto inspector = spawn_inspector(
      sys, "gpu-worker", std::shared_ptr<probes::registry>(&probes::global(), [](auto*) {}),
      service.counters);
  inspector_grpc_service inspect_service{sys, inspector, !edge::is_loopback(cfg.listen),
                                         cfg.inspect_token, cfg.inspect};
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(cfg.listen, *server_creds, &port);
  // Gateways ping idle connections (embedd --worker-keepalive-ms) to notice cut links: accept.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(cfg.max_message_bytes));
  // As the gateway: compressed requests are refused before anything is inflated (docs/api.md).
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  builder.RegisterService(&service);
  builder.RegisterService(&inspect_service);
  // Reflection under both names: gRPC's plugin (v1alpha) and ours (v1, edge/reflection_v1.hpp).
  edge::reflection_v1_service reflection_v1{
      {worker::v1::GpuWorker::service_full_name(), inspect::v1::Inspector::service_full_name(),
       "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
       grpc::reflection::v1::ServerReflection::service_full_name()}};
  builder.RegisterService(&reflection_v1);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::critical("cannot listen on {} (address in use or invalid)", cfg.listen);
    return 2;
  }
  set_health(*server, false);
  auto host = cfg.listen.substr(0, cfg.listen.rfind(':'));
  spdlog::info("listening on {}:{} (NOT_SERVING until the model is loaded), metrics on port {}",
               host, port, (*exposer)->port());
  if (!cfg.listening_file.empty())
    write_ports_file(cfg.listening_file, port, (*exposer)->port());

  std::shared_ptr<gpu::model> model;
  try {
    gpu::model_options mopts;
    mopts.device = cfg.device;
    mopts.type = gpu::parse_dtype(cfg.dtype);
    if (cfg.model_dir.empty()) {
      spdlog::warn("no --model given: serving the {}", untrained_note);
      model = gpu::model::builtin(mopts);
    } else {
      model = gpu::model::load(cfg.model_dir, mopts);
    }
    model->warm_up();
  } catch (const std::exception& e) {
    spdlog::critical("cannot load the model: {}", e.what());
    server->Shutdown();
    return 1;
  }
  const auto& mc = model->config();

  worker::v1::InfoResponse info;
  info.set_model_id(model->id());
  info.set_dimension(static_cast<uint32_t>(mc.hidden_size));
  info.set_max_tokens(
      static_cast<uint32_t>(std::min<int64_t>(mc.max_position_embeddings, cfg.max_batch_tokens)));
  info.set_dtype(model->dtype_name());
  info.set_device(model->device_name());
  info.set_vocab_size(static_cast<uint32_t>(mc.vocab_size));
  info.set_trained(model->trained());
  info.set_can_embed(true);
  info.set_can_score(model->has_lm_head());
  info.set_max_batch_tokens(cfg.max_batch_tokens);
  info.set_max_queue_tokens(cfg.max_queue_tokens);
  if (!model->trained())
    info.set_note(untrained_note);
  int64_t yes_id = cfg.yes_id, no_id = cfg.no_id;
  if (auto tok_path = resolve_tokenizer(cfg); !tok_path.empty()) {
    auto tok = tok::tokenizer::from_file(tok_path);
    if (!tok) {
      spdlog::critical("tokenizer: {}", message_of(tok.error()));
      return 1;
    }
    info.set_tokenizer_hash((*tok)->hash());
    if (yes_id < 0)
      if (auto id = (*tok)->token_to_id("yes"))
        yes_id = *id;
    if (no_id < 0)
      if (auto id = (*tok)->token_to_id("no"))
        no_id = *id;
    spdlog::info("tokenizer {} (hash {})", tok_path, (*tok)->hash());
  } else {
    spdlog::warn("no tokenizer.json next to the model and none given: Info reports no "
                 "tokenizer hash, so gateways cannot check the vocabulary");
  }
  if (yes_id >= 0 && yes_id < mc.vocab_size && no_id >= 0 && no_id < mc.vocab_size) {
    info.set_yes_token_id(static_cast<uint32_t>(yes_id));
    info.set_no_token_id(static_cast<uint32_t>(no_id));
  }

  worker_limits limits;
  limits.vocab_size = static_cast<uint32_t>(mc.vocab_size);
  limits.max_tokens = static_cast<uint32_t>(mc.max_position_embeddings);
  limits.hidden_size = static_cast<uint32_t>(mc.hidden_size);
  limits.can_score = model->has_lm_head();
  bcfg.device = model->device_name();
  bcfg.model = model->id();

  caf::anon_send(metric_actors.gpu,
                 metric::model_loaded{model->device_name(), model->id(), model->dtype_name(),
                                      model->load_seconds()});
  caf::anon_send(metric_actors.gpu,
                 metric::device_memory{model->device_name(), model->device_memory_used(),
                                       model->device_memory_total()});
  spdlog::info("model {} on {} ({}), hidden {}, {} layers, vocab {}, loaded in {:.2f} s{}",
               model->id(), model->device_name(), model->dtype_name(), mc.hidden_size,
               mc.num_hidden_layers, mc.vocab_size, model->load_seconds(),
               model->trained() ? "" : " — UNTRAINED, vectors carry no meaning");

  auto holder = spawn_model_holder(sys, model, metric_actors.gpu);
  auto batcher = spawn_batcher(sys, holder, bcfg, limits, metric_actors.gpu);
  if (!batcher) {
    spdlog::critical("{}", message_of(batcher.error()));
    return 2;
  }
  service.set_ready(*batcher, info);
  set_health(*server, true);
  spdlog::info("SERVING worker.v1.GpuWorker on {}:{}", host, port);
  if (!cfg.ready_file.empty())
    write_ports_file(cfg.ready_file, port, (*exposer)->port());

  std::string received;
  log::wait_for_signal(signals, received);
  spdlog::info("{}: refusing new calls, draining the queue (up to {} s)", received,
               cfg.drain_timeout_s);
  set_health(*server, false);
  service.stop_accepting();
  auto drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.drain_timeout_s * 1e3));
  bool drained = false;
  {
    caf::scoped_actor self{sys};
    self->request(*batcher, drain_timeout, atom::drain_v)
        .receive([&](bool) { drained = true; },
                 [&](caf::error& err) { spdlog::warn("drain: {}", sys.render(err)); });
  }
  // In-flight calls have their answers by now; give the transport a moment to send them.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  caf::anon_send_exit(*batcher, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(holder, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(inspector, caf::exit_reason::user_shutdown);
  for (auto a : {caf::actor_cast<caf::actor>(metric_actors.gpu),
                 caf::actor_cast<caf::actor>(metric_actors.http),
                 caf::actor_cast<caf::actor>(metric_actors.pipeline),
                 caf::actor_cast<caf::actor>(metric_actors.cache),
                 caf::actor_cast<caf::actor>(metric_actors.rerank)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  (*exposer)->stop();
  spdlog::info("stopped ({})", drained ? "queue drained" : "drain timed out");
  return 0;
}

} // namespace embed::worker_cli
