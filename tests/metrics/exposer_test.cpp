// /metrics over Boost.Beast: a real HTTP client scrapes it, parses the text format and finds the
// values recorded; keep-alive, concurrent scrapes, 404, garbage and bad addresses.

#include "messages/error.hpp"
#include "metrics/process_metrics.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <thread>

using namespace embed;
using namespace embed::metrics;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct client {
  explicit client(uint16_t port) : socket(ioc) {
    socket.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
  }

  http::response<http::string_body> get(const std::string& target,
                                        http::verb verb = http::verb::get) {
    http::request<http::empty_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    http::write(socket, req);
    http::response_parser<http::string_body> parser;
    parser.skip(verb == http::verb::head);
    parser.body_limit(64 * 1024 * 1024);
    http::read(socket, buffer, parser);
    return parser.release();
  }

  asio::io_context ioc;
  tcp::socket socket;
  beast::flat_buffer buffer;
};

/// Text format 0.0.4 -> "name{labels}" -> value (comments skipped).
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

class exposer_test : public ::testing::Test {
protected:
  void SetUp() override {
    pm = *process_metrics::make();
    auto started = pm->expose("127.0.0.1:0");
    ASSERT_TRUE(started) << message_of(started.error());
    exposer = std::move(*started);
    ASSERT_NE(exposer->port(), 0);
  }

  std::shared_ptr<process_metrics> pm;
  std::unique_ptr<http_exposer> exposer;
};

TEST_F(exposer_test, scrape_returns_recorded_values_and_process_metrics) {
  pm->cache()->record(metric::cache_lookup{"l1", true, 5});
  pm->http()->record(metric::api_request_done{"Embed", "OK", 0.002});
  client c{exposer->port()};
  auto res = c.get("/metrics");
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(std::string(res[http::field::content_type]).rfind("text/plain; version=0.0.4", 0), 0u);
  auto values = parse(res.body());
  EXPECT_EQ(values["embed_cache_lookups_total{result=\"hit\",tier=\"l1\"}"], 5);
  EXPECT_EQ(values["embed_grpc_server_requests_total{code=\"OK\",method=\"Embed\"}"], 1);
  EXPECT_EQ(values["embed_grpc_server_request_duration_seconds_count{method=\"Embed\"}"], 1);
  EXPECT_GT(values["process_resident_memory_bytes"], 1e6);
  EXPECT_GT(values["process_start_time_seconds"], 1.6e9);
  EXPECT_GE(values["process_open_fds"], 3);
  EXPECT_GE(values["process_cpu_seconds_total"], 0);

  // Keep-alive: the same connection serves the next request, which sees new values.
  pm->cache()->record(metric::cache_lookup{"l1", true, 1});
  auto again = c.get("/metrics?x=1");
  EXPECT_EQ(parse(again.body())["embed_cache_lookups_total{result=\"hit\",tier=\"l1\"}"], 6);
  auto health = c.get("/healthz");
  EXPECT_EQ(health.result(), http::status::ok);
  EXPECT_EQ(health.body(), "ok");
  EXPECT_EQ(c.get("/secret").result(), http::status::not_found);
  auto head = c.get("/metrics", http::verb::head);
  EXPECT_EQ(head.result(), http::status::ok);
  EXPECT_EQ(c.get("/metrics", http::verb::post).result(), http::status::method_not_allowed);
}

TEST_F(exposer_test, concurrent_scrapes_all_succeed) {
  // Enough series that serialisation takes a moment.
  for (int i = 0; i < 16; ++i)
    pm->http()->record(metric::client_call_done{"w" + std::to_string(i), "Embed", "OK", 0.01});
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      client c{exposer->port()};
      for (int i = 0; i < 20; ++i)
        if (c.get("/metrics").result() == http::status::ok)
          ++ok;
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(ok.load(), 160);
}

TEST_F(exposer_test, garbage_requests_do_not_kill_it) {
  for (std::string garbage :
       {std::string{"GARBAGE\r\n\r\n"}, std::string(20000, 'A'), std::string{"\0\1\2\3\r\n\r\n", 8},
        std::string{"GET /metrics HTTP/9.9\r\nContent-Length: -5\r\n\r\n"},
        std::string{"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"}}) {
    asio::io_context ioc;
    tcp::socket s{ioc};
    s.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), exposer->port()});
    boost::system::error_code ec;
    asio::write(s, asio::buffer(garbage), ec);
    s.shutdown(tcp::socket::shutdown_send, ec);
    std::string reply;
    asio::read(s, asio::dynamic_buffer(reply), ec); // until the server closes
    if (!reply.empty()) {
      EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply.substr(0, 40);
    }
  }
  // A connection that opens and says nothing, then a normal scrape.
  {
    asio::io_context ioc;
    tcp::socket silent{ioc};
    silent.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), exposer->port()});
    client c{exposer->port()};
    EXPECT_EQ(c.get("/metrics").result(), http::status::ok);
  }
  client c{exposer->port()};
  EXPECT_EQ(c.get("/healthz").body(), "ok");
}

TEST_F(exposer_test, stop_closes_the_port) {
  auto port = exposer->port();
  exposer->stop();
  exposer->stop(); // idempotent
  asio::io_context ioc;
  tcp::socket s{ioc};
  boost::system::error_code ec;
  s.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_TRUE(ec);
}

TEST(exposer_address, bad_addresses_are_errors) {
  auto pm = *process_metrics::make();
  for (auto address : {"nonsense", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:12ab"}) {
    auto e = pm->expose(address);
    ASSERT_FALSE(e) << address;
    EXPECT_EQ(code_of(e.error()), ec::invalid_argument) << address;
  }
  auto first = pm->expose("127.0.0.1:0");
  ASSERT_TRUE(first);
  auto clash = pm->expose("127.0.0.1:" + std::to_string((*first)->port()));
  ASSERT_FALSE(clash);
  EXPECT_NE(message_of(clash.error()).find("cannot listen"), std::string::npos);
  auto parsed = parse_host_port("[::1]:9465");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->first, "::1");
  EXPECT_EQ(parsed->second, 9465);
}

} // namespace
