// Cost of one metric event through a metrics actor against a direct prometheus-cpp increment (same
// run, same machine), and the cost of a /metrics scrape at some thousands of series.
//   metrics_bench [events=2000000]

#include "metrics/process_metrics.hpp"

#include "messages/type_ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <prometheus/text_serializer.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>

using namespace embed;
using namespace embed::metrics;
using clock_type = std::chrono::steady_clock;

namespace {

double ns_per(clock_type::duration d, double n) {
  return std::chrono::duration<double, std::nano>(d).count() / n;
}

double counter_value(const prometheus::Registry& registry, const std::string& name,
                     const std::string& label, const std::string& value) {
  for (auto& f : registry.Collect())
    if (f.name == name)
      for (auto& m : f.metric)
        for (auto& l : m.label)
          if (l.name == label && l.value == value)
            return m.counter.value;
  return 0;
}

std::string scrape_http(uint16_t port) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s{ioc};
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(s, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  http::read(s, buffer, parser);
  return parser.release().body();
}

} // namespace

int main(int argc, char** argv) {
  const long events = argc > 1 ? std::atol(argv[1]) : 2000000;
  std::printf("events per measurement: %ld, hardware threads: %u\n", events,
              std::thread::hardware_concurrency());

  // 1. Direct prometheus-cpp: a counter reference held by the call site (Triton style).
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family =
      prometheus::BuildCounter().Name("bench_direct_total").Help("h").Register(*registry);
  auto& counter = family.Add({{"tier", "l1"}, {"result", "hit"}});
  auto t0 = clock_type::now();
  for (long i = 0; i < events; ++i)
    counter.Increment();
  auto direct = ns_per(clock_type::now() - t0, events);

  // 2. Direct prometheus-cpp with a label lookup per increment (Family::Add each time).
  t0 = clock_type::now();
  for (long i = 0; i < events; ++i)
    family.Add({{"tier", "l1"}, {"result", "hit"}}).Increment();
  auto lookup = ns_per(clock_type::now() - t0, events);

  // 3. The domain registry's record() without an actor: label guards + lookup + increment.
  auto pm = *process_metrics::make();
  metric::cache_lookup hit{"l1", true, 1};
  t0 = clock_type::now();
  for (long i = 0; i < events; ++i)
    pm->cache()->record(hit);
  auto record = ns_per(clock_type::now() - t0, events);

  // 4. Through the metrics actor: anon_send from one thread, timed until the actor has handled
  // every event (throughput, sender and actor on different cores).
  caf::actor_system_config cfg;
  register_types(cfg);
  caf::actor_system sys{cfg};
  auto actors = pm->spawn_actors(sys);
  const std::string key_l2 = "l2";
  metric::cache_lookup miss{"l2", false, 1};
  t0 = clock_type::now();
  for (long i = 0; i < events; ++i)
    caf::anon_send(actors.cache, miss);
  auto sent = clock_type::now();
  while (counter_value(*pm->prometheus(), "embed_cache_lookups_total", "tier", key_l2) < events)
    std::this_thread::sleep_for(std::chrono::microseconds{100});
  auto actor_send = ns_per(sent - t0, events);
  auto actor_total = ns_per(clock_type::now() - t0, events);

  // 5. A heavier event: batch_done moves 4 histograms and 3 counters.
  const long heavy = events / 4;
  metric::batch_done batch{"cuda:0", "qwen3", 8, 900, 1024, 0.01};
  t0 = clock_type::now();
  for (long i = 0; i < heavy; ++i)
    caf::anon_send(actors.gpu, batch);
  while (counter_value(*pm->prometheus(), "embed_gpu_batches_total", "device", "cuda:0") < heavy)
    std::this_thread::sleep_for(std::chrono::microseconds{100});
  auto actor_batch = ns_per(clock_type::now() - t0, heavy);

  std::printf("\n-- cost per metric event --\n");
  std::printf("direct Counter::Increment (reference held)   %8.1f ns\n", direct);
  std::printf("direct Family::Add(labels).Increment          %8.1f ns\n", lookup);
  std::printf("cache_registry::record (guards, no actor)     %8.1f ns\n", record);
  std::printf("actor: anon_send only (sender's cost)         %8.1f ns\n", actor_send);
  std::printf("actor: send + handled (throughput)            %8.1f ns\n", actor_total);
  std::printf("actor: batch_done send + handled              %8.1f ns\n", actor_batch);
  std::printf("ratio actor (sender) / direct increment       %8.1fx\n", actor_send / direct);
  std::printf("ratio actor (handled) / direct increment      %8.1fx\n", actor_total / direct);
  std::printf("ratio actor (handled) / direct label lookup   %8.1fx\n", actor_total / lookup);

  // 6. Scrape at some thousands of series: fill every gateway family to its kept endpoints, plus
  // synthetic counters standing in for a busy process.
  for (int e = 0; e < 16; ++e) {
    auto endpoint = "10.0.0." + std::to_string(e) + ":50052";
    for (auto& m : client_methods()) {
      for (auto& c : grpc_codes())
        pm->http()->record(metric::client_call_done{endpoint, m, c, 0.01});
      pm->http()->record(metric::client_retry{endpoint, m});
    }
    pm->http()->record(metric::breaker_state{endpoint, "closed"});
  }
  for (auto& m : server_methods())
    for (auto& c : grpc_codes())
      pm->http()->record(metric::api_request_done{m, c, 0.01});
  for (auto& s : pipeline_stages())
    pm->pipeline()->record(metric::stage_done{s, "ok", 0.001});
  auto& synthetic = prometheus::BuildCounter()
                        .Name("bench_synthetic_total")
                        .Help("h")
                        .Register(*pm->prometheus());
  for (int i = 0; i < 2000; ++i)
    synthetic.Add({{"i", std::to_string(i)}}).Increment();
  auto collectables = pm->collectables();

  const int scrapes = 50;
  size_t lines = 0, bytes = 0;
  t0 = clock_type::now();
  for (int i = 0; i < scrapes; ++i) {
    std::vector<prometheus::MetricFamily> families;
    for (auto& c : collectables) {
      auto part = c->Collect();
      families.insert(families.end(), part.begin(), part.end());
    }
    std::ostringstream out;
    prometheus::TextSerializer{}.Serialize(out, families);
    auto text = out.str();
    bytes = text.size();
    lines = 0;
    for (char ch : text)
      lines += ch == '\n';
  }
  auto serialize_ms =
      std::chrono::duration<double, std::milli>(clock_type::now() - t0).count() / scrapes;

  auto exposer = std::move(*pm->expose("127.0.0.1:0"));
  scrape_http(exposer->port()); // warm-up
  t0 = clock_type::now();
  for (int i = 0; i < scrapes; ++i)
    bytes = scrape_http(exposer->port()).size();
  auto http_ms =
      std::chrono::duration<double, std::milli>(clock_type::now() - t0).count() / scrapes;

  size_t samples = 0;
  for (auto& f : pm->prometheus()->Collect())
    samples += f.metric.size();
  std::printf("\n-- /metrics scrape --\n");
  std::printf("label combinations %zu, text lines %zu, bytes %zu\n", samples, lines, bytes);
  std::printf("Collect + TextSerializer                      %8.2f ms\n", serialize_ms);
  std::printf("GET /metrics over loopback (new connection)   %8.2f ms\n", http_ms);

  for (auto& a :
       {caf::actor_cast<caf::actor>(actors.gpu), caf::actor_cast<caf::actor>(actors.http),
        caf::actor_cast<caf::actor>(actors.pipeline), caf::actor_cast<caf::actor>(actors.cache),
        caf::actor_cast<caf::actor>(actors.rerank)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  return 0;
}
