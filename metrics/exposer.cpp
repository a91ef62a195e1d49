#include "metrics/exposer.hpp"

#include "messages/error.hpp"

#include <prometheus/text_serializer.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

namespace embed::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

caf::error exposer_options::validate() const {
  if (threads == 0 || threads > 64)
    return make_error(ec::invalid_argument,
                      "metrics exposer threads must be in [1, 64], got " + std::to_string(threads));
  if (max_connections == 0)
    return make_error(ec::invalid_argument, "metrics exposer max_connections must be positive");
  if (idle_timeout.count() <= 0)
    return make_error(ec::invalid_argument, "metrics exposer idle_timeout must be positive");
  if (max_header_bytes < 512)
    return make_error(ec::invalid_argument, "metrics exposer max_header_bytes must be >= 512");
  return {};
}

caf::expected<std::pair<std::string, uint16_t>> parse_host_port(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size())
    return make_error(ec::invalid_argument,
                      "metrics address must be HOST:PORT, got '" + address + "'");
  auto host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty())
    host = "0.0.0.0";
  auto port_text = address.substr(colon + 1);
  unsigned port = 0;
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (err != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    return make_error(ec::invalid_argument,
                      "metrics port must be a number in [0, 65535], got '" + port_text + "'");
  return std::make_pair(host, static_cast<uint16_t>(port));
}

struct http_exposer::impl {
  impl(std::vector<std::shared_ptr<prometheus::Collectable>> cs, exposer_options opts)
      : options(opts), collectables(std::move(cs)) {
    ioc.emplace();
    acceptor.emplace(asio::make_strand(*ioc));
  }

  // Declared first so it outlives the io_context: sessions destroyed with it decrement it.
  std::atomic<size_t> connections{0};
  exposer_options options;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables;
  // Optional so that stop() can destroy them (acceptor first), which destroys every pending
  // session and closes its socket.
  std::optional<asio::io_context> ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::once_flag stopped;
  uint16_t port = 0;

  // The budget of connections is shared fairly: a connection over max_connections evicts the
  // one that has waited longest in its current state (for a request, or for its answer to be
  // read), instead of being refused. Idle, half-sent or unread connections, however many one
  // client opens, cannot keep a scraper out: a scrape sends its request at once and reads its
  // answer at once, so it is never the one waiting longest.
  using evict_fn = std::function<void()>;
  struct waiting {
    std::chrono::steady_clock::time_point since;
    evict_fn evict;
  };
  std::mutex waiting_mu;
  std::map<uint64_t, waiting> sessions; // by session id
  uint64_t next_session = 0;

  uint64_t add_session(evict_fn evict) {
    std::lock_guard<std::mutex> guard(waiting_mu);
    auto id = next_session++;
    sessions[id] = {std::chrono::steady_clock::now(), std::move(evict)};
    return id;
  }
  void touch_session(uint64_t id) {
    std::lock_guard<std::mutex> guard(waiting_mu);
    if (auto i = sessions.find(id); i != sessions.end())
      i->second.since = std::chrono::steady_clock::now();
  }
  void remove_session(uint64_t id) {
    std::lock_guard<std::mutex> guard(waiting_mu);
    sessions.erase(id);
  }
  void evict_longest_waiting() {
    evict_fn evict;
    {
      std::lock_guard<std::mutex> guard(waiting_mu);
      auto oldest = sessions.end();
      for (auto i = sessions.begin(); i != sessions.end(); ++i)
        if (oldest == sessions.end() || i->second.since < oldest->second.since)
          oldest = i;
      if (oldest == sessions.end())
        return;
      evict = std::move(oldest->second.evict);
      sessions.erase(oldest); // evicted once; the session goes when its pending operation ends
    }
    evict();
  }

  std::string scrape() const {
    std::vector<prometheus::MetricFamily> families;
    for (auto& c : collectables) {
      auto part = c->Collect();
      families.insert(families.end(), std::make_move_iterator(part.begin()),
                      std::make_move_iterator(part.end()));
    }
    std::ostringstream out;
    prometheus::TextSerializer{}.Serialize(out, families);
    return std::move(out).str();
  }

  void accept();
};

namespace {

// One connection: read a request, answer it, repeat while keep-alive; close on error or idle.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, http_exposer::impl& owner)
      : stream_(std::move(socket)), owner_(owner) {}

  ~session() {
    owner_.remove_session(id_);
    --owner_.connections;
  }

  void start() {
    std::weak_ptr<session> weak = shared_from_this();
    auto executor = stream_.get_executor();
    id_ = owner_.add_session([weak, executor] {
      // On the session's strand: its pending read or write ends with operation_aborted.
      asio::post(executor, [weak] {
        if (auto self = weak.lock())
          self->close();
      });
    });
    read();
  }

private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(owner_.options.max_header_bytes));
    parser_->body_limit(4096); // GET carries no body; anything larger is not a scrape
    stream_.expires_after(owner_.options.idle_timeout);
    owner_.touch_session(id_); // waiting for a request from now
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      close();
      return;
    }
    if (ec) {
      // Garbage on the wire: say so once, then drop the connection.
      respond(http::status::bad_request, "text/plain", "bad request\n", false, false);
      return;
    }
    auto& req = parser_->get();
    bool head = req.method() == http::verb::head;
    bool keep_alive = req.keep_alive();
    if (req.method() != http::verb::get && !head) {
      respond(http::status::method_not_allowed, "text/plain", "only GET\n", keep_alive, false,
              req.version());
      return;
    }
    auto target = std::string_view{req.target().data(), req.target().size()};
    target = target.substr(0, target.find('?'));
    if (target == "/metrics")
      respond(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", owner_.scrape(),
              keep_alive, head, req.version());
    else if (target == "/healthz")
      respond(http::status::ok, "text/plain", "ok", keep_alive, head, req.version());
    else
      respond(http::status::not_found, "text/plain", "not found\n", keep_alive, head,
              req.version());
  }

  void respond(http::status status, const char* type, std::string body, bool keep_alive, bool head,
               unsigned version = 11) {
    auto res = std::make_shared<http::response<http::string_body>>(status, version);
    res->set(http::field::server, "embed-metrics");
    res->set(http::field::content_type, type);
    res->keep_alive(keep_alive);
    res->body() = std::move(body);
    res->prepare_payload();
    if (head)
      res->body().clear(); // Content-Length stays that of the GET answer
    stream_.expires_after(owner_.options.idle_timeout);
    owner_.touch_session(id_); // waiting for the answer to be read from now
    auto self = shared_from_this();
    if (head) {
      auto sr = std::make_shared<http::response_serializer<http::string_body>>(*res);
      http::async_write_header(stream_, *sr, [self, res, sr](beast::error_code ec, size_t) {
        self->on_write(ec, res->keep_alive());
      });
      return;
    }
    http::async_write(stream_, *res, [self, res](beast::error_code ec, size_t) {
      self->on_write(ec, res->keep_alive());
    });
  }

  void on_write(beast::error_code ec, bool keep_alive) {
    if (ec || !keep_alive) {
      close();
      return;
    }
    read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http_exposer::impl& owner_;
  uint64_t id_ = 0;
};

} // namespace

void http_exposer::impl::accept() {
  acceptor->async_accept(asio::make_strand(*ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open())
      return; // stopping
    if (!ec) {
      // Over the cap: the connection waiting longest makes room (it closes as soon as its
      // strand runs), so the sockets stay bounded by max_connections plus the evictions under way.
      if (++connections > options.max_connections)
        evict_longest_waiting();
      std::make_shared<session>(std::move(socket), *this)->start();
    }
    accept();
  });
}

caf::expected<std::unique_ptr<http_exposer>>
http_exposer::start(const std::string& address,
                    std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
                    exposer_options options) {
  if (auto err = options.validate())
    return err;
  for (auto& c : collectables)
    if (c == nullptr)
      return make_error(ec::invalid_argument, "metrics exposer got a null collectable");
  auto host_port = parse_host_port(address);
  if (!host_port)
    return host_port.error();
  auto state = std::make_unique<impl>(std::move(collectables), options);
  beast::error_code ec;
  tcp::resolver resolver{*state->ioc};
  auto results = resolver.resolve(host_port->first, std::to_string(host_port->second),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    return make_error(ec::invalid_argument,
                      "metrics address '" + address + "': cannot resolve host: " + ec.message());
  auto endpoint = results.begin()->endpoint();
  state->acceptor->open(endpoint.protocol(), ec);
  if (!ec)
    state->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    state->acceptor->bind(endpoint, ec);
  if (!ec)
    state->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(ec::internal,
                      "metrics exposer cannot listen on '" + address + "': " + ec.message());
  state->port = state->acceptor->local_endpoint().port();
  state->accept();
  for (size_t i = 0; i < options.threads; ++i)
    state->threads.emplace_back([s = state.get()] { s->ioc->run(); });
  return std::unique_ptr<http_exposer>(new http_exposer(std::move(state)));
}

http_exposer::http_exposer(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}

http_exposer::~http_exposer() {
  stop();
}

uint16_t http_exposer::port() const {
  return impl_->port;
}

void http_exposer::stop() {
  std::call_once(impl_->stopped, [this] {
    impl_->ioc->stop();
    for (auto& t : impl_->threads)
      if (t.joinable())
        t.join();
    // No thread runs handlers now: close the listener, then destroy the context, which destroys
    // every abandoned session and so closes its connection.
    impl_->acceptor.reset();
    impl_->ioc.reset();
  });
}

} // namespace embed::metrics
