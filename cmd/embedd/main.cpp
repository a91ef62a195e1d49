// embedd: the torch-free gateway. Public gRPC API (embedding.v1), validation, tokenization,
// cache, reranking, routing to GPU workers behind a circuit breaker, metrics on /metrics.
#include "actors/gateway/cache.hpp"
#include "actors/inspect/grpc_service.hpp"
#include "actors/inspect/inspector.hpp"
#include "actors/gateway/discovery.hpp"
#include "actors/gateway/embedding_stage.hpp"
#include "actors/gateway/grpc_service.hpp"
#include "actors/gateway/reranker.hpp"
#include "actors/gateway/supervisor.hpp"
#include "edge/parse.hpp"
#include "edge/reflection_v1.hpp"
#include "edge/tls.hpp"
#include "logging/log.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "metrics/process_metrics.hpp"
#include "tokenizer/tokenizer.hpp"

#include <CLI/CLI.hpp>
#include <caf/actor_system.hpp>
#include "messages/runtime.hpp"

#include <caf/actor_system_config.hpp>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <pthread.h>
#include <thread>

namespace {

struct options {
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";
  std::vector<std::string> workers;
  std::string workers_dns;
  std::string workers_file;
  uint32_t discovery_interval_ms = 5000;
  std::string tokenizer;
  std::string redis;
  uint64_t cache_bytes = uint64_t{256} << 20;
  uint32_t cache_ttl_s = 3600;
  uint32_t stages = 0;
  embed::scheduler_options scheduler; // --actor-threads, --actor-spin
  uint32_t max_in_flight = 1024;
  uint32_t max_in_flight_per_stream = 32;
  uint32_t max_streams = 1024;
  uint32_t max_streams_per_connection = 100;
  uint32_t stream_idle_timeout_ms = 120000;
  uint32_t max_inputs = 256;
  uint32_t max_chars = 32768;
  uint32_t max_tokens = 8192;
  uint32_t max_documents = 256;
  uint32_t max_rerank_tokens = 8192;
  std::vector<uint32_t> allowed_dimensions;
  std::vector<std::string> prompts; // NAME=INSTRUCTION
  uint32_t breaker_failures = 3;
  uint32_t breaker_cool_down_ms = 5000;
  uint32_t worker_timeout_ms = 30000;
  uint32_t worker_keepalive_ms = 10000;
  uint32_t max_message_bytes = 16 << 20;
  double drain_timeout_s = 30;
  bool allow_insecure_remote = false;
  bool cache = true;   // --no-cache: no L1, no L2
  bool rerank = true;  // --no-rerank: Rerank calls get UNIMPLEMENTED
  bool breaker = true; // --no-breaker: failures never take a verified worker out of rotation
  embed::edge::server_tls tls;        // client -> embedd
  embed::edge::client_tls worker_tls; // embedd -> gpu-worker
  std::string ready_file;
  std::string log_level = "info";
  bool log_json = false;
  std::string inspect_token;
  embed::inspect_limits inspect;
};

template <class Handle>
void stop(const Handle& h) {
  if (h)
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
}

int run(const options& o) {
  using namespace embed;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (!log::valid_level(o.log_level)) {
    std::fprintf(stderr, "embedd: --log-level %s is not a level\n", o.log_level.c_str());
    return 2;
  }
  log::init({"embedd", o.log_level, o.log_json, true});
  edge::route_library_logs(); // libprotobuf's and gRPC's lines as ours (text or --log-json)
  auto fail = [](const caf::error& err) {
    spdlog::critical("{}", message_of(err));
    return 2;
  };
  if (!o.tls.enabled() && !edge::is_loopback(o.listen) && !o.allow_insecure_remote) {
    spdlog::critical("refusing to serve plaintext gRPC on the non-loopback address {}: give "
                     "--tls-cert/--tls-key, or pass --allow-insecure-remote to do it anyway",
                     o.listen);
    return 2;
  }
  auto server_creds = edge::server_credentials(o.tls);
  if (!server_creds)
    return fail(server_creds.error());
  grpc::ChannelArguments unused_args;
  auto worker_creds = edge::channel_credentials(o.worker_tls, unused_args, "worker-");
  if (!worker_creds)
    return fail(worker_creds.error());

  // Configuration, validated before anything starts.
  request_limits limits;
  limits.max_inputs_per_request = o.max_inputs;
  limits.max_chars_per_input = o.max_chars;
  limits.max_tokens_per_input = o.max_tokens;
  limits.max_documents_per_rerank = o.max_documents;
  limits.allowed_dimensions = o.allowed_dimensions;
  for (auto& p : o.prompts) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      spdlog::critical("--prompt '{}' is not NAME=INSTRUCTION", p);
      return 2;
    }
    limits.prompts[p.substr(0, eq)] = p.substr(eq + 1);
  }
  gateway_service_config scfg;
  scfg.max_in_flight = o.max_in_flight;
  scfg.max_in_flight_per_stream = o.max_in_flight_per_stream;
  scfg.max_streams = o.max_streams;
  scfg.max_streams_per_connection = o.max_streams_per_connection;
  scfg.stream_idle_timeout = std::chrono::milliseconds(o.stream_idle_timeout_ms);
  scfg.limits = limits;
  scfg.version = "0.1.0";
  scfg.max_message_bytes = o.max_message_bytes;
  if (auto err = scfg.validate())
    return fail(err);
  discovery_config dcfg;
  dcfg.endpoints = o.workers;
  dcfg.dns = o.workers_dns;
  dcfg.file = o.workers_file;
  dcfg.interval = std::chrono::milliseconds(o.discovery_interval_ms);
  if (auto err = dcfg.validate())
    return fail(err);
  cache_config ccfg;
  ccfg.capacity_bytes = o.cache_bytes;
  ccfg.ttl = std::chrono::seconds(o.cache_ttl_s);
  ccfg.redis = o.redis;
  if (auto err = ccfg.validate())
    return fail(err);

  auto tok_path =
      o.tokenizer.empty() ? tok::default_tokenizer_path("qwen3-embedding") : o.tokenizer;
  auto tokenizer = tok::tokenizer::from_file(tok_path);
  if (!tokenizer)
    return fail(tokenizer.error());
  spdlog::info("tokenizer {} (hash {})", tok_path, (*tokenizer)->hash());

  supervisor_config sup_cfg;
  sup_cfg.failure_threshold = o.breaker_failures;
  sup_cfg.breaker_enabled = o.breaker;
  sup_cfg.cool_down = std::chrono::milliseconds(o.breaker_cool_down_ms);
  sup_cfg.tokenizer_hash = (*tokenizer)->hash();
  sup_cfg.client.call_timeout = std::chrono::milliseconds(o.worker_timeout_ms);
  sup_cfg.client.max_message_bytes = o.max_message_bytes * 4;
  sup_cfg.client.keepalive = std::chrono::milliseconds(o.worker_keepalive_ms);
  if (o.worker_tls.enabled()) {
    sup_cfg.client.credentials = *worker_creds;
    sup_cfg.client.tls_server_name = o.worker_tls.server_name;
  }
  if (auto err = sup_cfg.validate())
    return fail(err);

  caf::actor_system_config caf_cfg;
  register_types(caf_cfg);
  apply(o.scheduler, caf_cfg);
  caf::actor_system sys{caf_cfg};

  auto metrics = metrics::process_metrics::make();
  if (!metrics)
    return fail(metrics.error());
  auto m = (*metrics)->spawn_actors(sys);
  auto exposer = (*metrics)->expose(o.metrics_listen);
  if (!exposer) {
    spdlog::critical("cannot serve /metrics on {}: {}", o.metrics_listen,
                     message_of(exposer.error()));
    return 2;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  embedder_service service{sys, scfg};
  auto inspector = spawn_inspector(
      sys, "embedd", std::shared_ptr<probes::registry>(&probes::global(), [](auto*) {}),
      service.counters);
  inspector_grpc_service inspect_service{sys, inspector, !edge::is_loopback(o.listen),
                                         o.inspect_token, o.inspect};
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, *server_creds, &port);
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls past it wait in the client's queue. Room for
  // every unary call admitted (--max-in-flight) and this connection's streams, so that a stream
  // past --max-streams-per-connection is refused with a status that says so, not left waiting.
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONCURRENT_STREAMS,
      static_cast<int>(std::min<uint64_t>(uint64_t{o.max_in_flight} + o.max_streams_per_connection,
                                          uint64_t{1} << 30)));
  // --max-message-bytes is checked by the service (grpc_service.cpp, parse_or_refuse), so that a
  // refusal is counted, names the option and leaves a stream open; gRPC's own limit would drop
  // the call before the service sees it, after reading the message whole all the same.
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(static_cast<int>(o.max_message_bytes) * 4);
  // Compressed requests are refused (docs/api.md, "Compression"): gRPC 1.51 inflates a message
  // whole before --max-message-bytes applies, so a few hundred KB of gzip could grow the gateway
  // by hundreds of MB. Texts are small next to their embeddings; compression buys little here.
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  builder.RegisterService(&service);
  builder.RegisterService(&inspect_service);
  // Reflection under both names: gRPC's plugin (v1alpha) and ours (v1, edge/reflection_v1.hpp).
  edge::reflection_v1_service reflection_v1{
      {embedding::v1::Embedder::service_full_name(), inspect::v1::Inspector::service_full_name(),
       "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
       grpc::reflection::v1::ServerReflection::service_full_name()}};
  builder.RegisterService(&reflection_v1);
  unknown_method_service unknown_methods{service};
  builder.RegisterCallbackGenericService(&unknown_methods);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::critical("cannot listen on {} (address in use or invalid)", o.listen);
    return 2;
  }
  auto* health = server->GetHealthCheckService();
  auto set_health = [health](bool serving) {
    health->SetServingStatus(serving);
    health->SetServingStatus("embedding.v1.Embedder", serving);
  };
  set_health(false);

  auto supervisor = spawn_supervisor(sys, sup_cfg, m.http, set_health);
  if (!supervisor)
    return fail(supervisor.error());
  caf::expected<cache_actor> cache = cache_actor{};
  if (o.cache) {
    cache = spawn_cache(sys, ccfg, m.cache);
    if (!cache)
      return fail(cache.error());
  }
  gateway_actors actors;
  actors.supervisor = *supervisor;
  actors.cache = *cache;
  actors.metrics = m.http;
  stage_config stage_cfg;
  stage_cfg.limits = limits;
  stage_cfg.default_timeout = std::chrono::milliseconds(o.worker_timeout_ms * 2);
  auto n_stages = o.stages != 0 ? o.stages : std::max(1u, std::thread::hardware_concurrency());
  for (uint32_t i = 0; i < n_stages; ++i) {
    auto s = spawn_embedding_stage(sys, stage_cfg, *tokenizer, *supervisor, *cache, m.pipeline);
    if (!s)
      return fail(s.error());
    actors.stages.push_back(*s);
  }
  reranker_config rcfg;
  rcfg.limits = limits;
  rcfg.max_prompt_tokens = o.max_rerank_tokens;
  caf::expected<reranker_actor> reranker = reranker_actor{};
  if (o.rerank) {
    reranker = spawn_reranker(sys, rcfg, *tokenizer, *supervisor, m.rerank);
    if (!reranker)
      return fail(reranker.error());
  }
  actors.reranker = *reranker;
  service.set_actors(actors);
  auto discovery = spawn_discovery(sys, dcfg, *supervisor);
  if (!discovery)
    return fail(discovery.error());

  auto host = o.listen.substr(0, o.listen.rfind(':'));
  spdlog::info("embedd listening on {}:{} ({}; {} embedding stages), metrics on port {}; SERVING "
               "once a worker answers ({})",
               host, port, !o.tls.enabled() ? "plaintext"
                           : o.tls.client_ca.empty() ? "TLS"
                                                     : "mutual TLS",
               n_stages, (*exposer)->port(), o.worker_tls.enabled() ? "TLS to workers" : "plaintext to workers");
  if (!o.ready_file.empty()) {
    auto tmp = o.ready_file + ".tmp";
    std::ofstream(tmp) << "{\"grpc_port\": " << port << ", \"metrics_port\": " << (*exposer)->port()
                       << "}\n";
    std::filesystem::rename(tmp, o.ready_file);
  }

  std::string received;
  log::wait_for_signal(signals, received);
  spdlog::info("{}: refusing new calls, finishing {} in flight (up to {} s)", received,
               service.in_flight(), o.drain_timeout_s);
  set_health(false);
  service.stop_accepting();
  auto until = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(o.drain_timeout_s * 1e3));
  while (service.in_flight() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  bool drained = service.in_flight() == 0;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  stop(*discovery);
  for (auto& s : actors.stages)
    stop(s);
  stop(*reranker);
  stop(*cache);
  stop(*supervisor);
  stop(inspector);
  service.stop_actors();
  stop(m.gpu);
  stop(m.http);
  stop(m.pipeline);
  stop(m.cache);
  stop(m.rerank);
  (*exposer)->stop();
  spdlog::info("stopped ({})", drained ? "all requests answered" : "drain timed out");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"embedd: the embedding and reranking gateway (embedding.v1 over gRPC)"};
  app.set_config("--config", "", "read options from this INI/TOML file (keys = long option names)");
  app.allow_config_extras(CLI::config_extras_mode::error); // a misspelt key is an error, not ignored
  app.add_option("--listen", o.listen, "public gRPC address HOST:PORT")->capture_default_str();
  app.add_option("--metrics-listen", o.metrics_listen, "/metrics address HOST:PORT")
      ->capture_default_str();
  app.add_option("--workers", o.workers, "GPU worker endpoints HOST:PORT (comma-separated)")
      ->delimiter(',');
  app.add_option("--workers-dns", o.workers_dns,
                 "NAME:PORT re-resolved periodically; every address is a worker");
  app.add_option("--workers-file", o.workers_file, "watched file of HOST:PORT lines");
  app.add_option("--discovery-interval-ms", o.discovery_interval_ms,
                 "how often DNS / the file are re-read")
      ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json (default: the built-in Qwen3-Embedding one); workers must "
                 "report the same hash");
  app.add_option("--redis", o.redis, "Redis HOST:PORT for the shared L2 cache (default: none)");
  app.add_flag("--cache,!--no-cache", o.cache,
               "the embedding cache (L1 in memory, L2 in --redis); --no-cache computes every "
               "input")
      ->capture_default_str();
  app.add_flag("--rerank,!--no-rerank", o.rerank,
               "the Rerank RPCs; --no-rerank answers them UNIMPLEMENTED")
      ->capture_default_str();
  app.add_flag("--breaker,!--no-breaker", o.breaker,
               "per-worker circuit breakers; --no-breaker keeps failing workers in rotation "
               "(retries still go elsewhere)")
      ->capture_default_str();
  app.add_option("--cache-bytes", o.cache_bytes, "L1 cache budget in bytes")->capture_default_str();
  app.add_option("--cache-ttl", o.cache_ttl_s, "cache entry lifetime in seconds")
      ->capture_default_str();
  app.add_option("--stages", o.stages, "embedding stage actors (default: one per core)");
  app.add_option("--actor-threads", o.scheduler.threads,
                 "CAF threads running the gateway's actors (0: one per core)")
      ->capture_default_str();
  app.add_option("--actor-spin", o.scheduler.spin,
                 "times an idle CAF thread polls for work before it blocks")
      ->capture_default_str();
  app.add_option("--max-in-flight", o.max_in_flight,
                 "requests in flight; unary calls past it get RESOURCE_EXHAUSTED")
      ->capture_default_str();
  app.add_option("--max-in-flight-per-stream", o.max_in_flight_per_stream,
                 "requests of one stream in flight (backpressure past it)")
      ->capture_default_str();
  app.add_option("--max-streams", o.max_streams, "concurrent streams")->capture_default_str();
  app.add_option("--max-streams-per-connection", o.max_streams_per_connection,
                 "EmbedStream/RerankStream calls one client connection may hold open; one more "
                 "gets RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1u, 1u << 30))
      ->capture_default_str();
  app.add_option("--stream-idle-timeout-ms", o.stream_idle_timeout_ms,
                 "a stream with no request in flight that receives nothing this long ends with "
                 "UNAVAILABLE (0: never)")
      ->capture_default_str();
  app.add_option("--max-inputs", o.max_inputs, "inputs per Embed request")->capture_default_str();
  app.add_option("--max-chars", o.max_chars, "characters per input")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "tokens per input (capped by the model's)")
      ->capture_default_str();
  app.add_option("--max-documents", o.max_documents, "documents per Rerank request")
      ->capture_default_str();
  app.add_option("--max-rerank-tokens", o.max_rerank_tokens,
                 "tokens per reranker prompt; longer documents are cut (or refused without "
                 "truncate)")
      ->capture_default_str();
  app.add_option("--allowed-dimensions", o.allowed_dimensions,
                 "Matryoshka dimensions clients may ask for (default: any)")
      ->delimiter(',');
  app.add_option("--prompt", o.prompts, "a named instruction NAME=INSTRUCTION (repeatable)");
  app.add_option("--breaker-failures", o.breaker_failures,
                 "consecutive failures that open a worker's breaker")
      ->capture_default_str();
  app.add_option("--breaker-cool-down-ms", o.breaker_cool_down_ms,
                 "open -> half-open after this long")
      ->capture_default_str();
  app.add_option("--worker-timeout-ms", o.worker_timeout_ms,
                 "worker call timeout when the client set no deadline")
      ->capture_default_str();
  app.add_option("--worker-keepalive-ms", o.worker_keepalive_ms,
                 "HTTP/2 keepalive ping interval on worker connections, also when idle (a cut "
                 "link is noticed within it + 3 s); 0 = off")
      ->capture_default_str();
  app.add_option("--max-message-bytes", o.max_message_bytes, "largest request message")
      ->capture_default_str();
  app.add_option("--drain-timeout", o.drain_timeout_s,
                 "seconds to finish in-flight requests after SIGTERM")
      ->capture_default_str();
  app.add_flag("--allow-insecure-remote", o.allow_insecure_remote,
               "serve plaintext gRPC on a non-loopback address");
  embed::edge::add_server_tls_options(app, o.tls);
  embed::edge::add_client_tls_options(app, o.worker_tls, "worker-");
  app.add_option("--ready-file", o.ready_file,
                 "write {\"grpc_port\":P,\"metrics_port\":M} here once listening");
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_flag("--log-json", o.log_json, "JSON lines logs");
  app.add_option("--inspect-token", o.inspect_token,
                 "bearer token every inspect API call (embedctl top) must carry; without one the "
                 "inspect API is served on a loopback --listen only");
  app.add_option("--max-inspect-watches", o.inspect.max_watches,
                 "inspect Watch streams open at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-inspect-watches-per-connection", o.inspect.max_watches_per_connection,
                 "inspect Watch streams on one client connection")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  return run(o);
}
