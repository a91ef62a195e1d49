#include "cmd/embedctl/inspect_client.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

namespace embed::cli {

void add_inspect_options(CLI::App* sub, inspect_options& o, bool with_timeout) {
  sub->add_option("--server", o.client.server,
                  "address HOST:PORT of embedd or gpu-worker (their main gRPC port)")
      ->capture_default_str();
  if (with_timeout)
    sub->add_option("--timeout", o.client.timeout_s, "seconds to wait for an answer (0: no limit)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
  // CLI11 shows the environment variable in --help itself.
  sub->add_option("--token", o.token,
                  "bearer token (sent as `authorization: Bearer <token>`), which the server asks "
                  "for on a non-loopback address")
      ->envname(inspect_token_env);
  edge::add_client_tls_options(*sub, o.client.tls);
}

void check_token(const inspect_options& o) {
  // gRPC rejects metadata values outside printable ASCII; a pasted token often ends in "\n".
  for (unsigned char c : o.token)
    if (c < 0x21 || c > 0x7e)
      usage_error("--token/" + std::string(inspect_token_env) +
                  ": the token may hold only printable ASCII characters without spaces");
}

std::unique_ptr<inspect::v1::Inspector::Stub> make_inspector(const inspect_options& o,
                                                             bool reconnect_fast) {
  return inspect::v1::Inspector::NewStub(make_channel(o.client, reconnect_fast));
}

void add_auth(grpc::ClientContext& ctx, const inspect_options& o) {
  if (!o.token.empty())
    ctx.AddMetadata("authorization", "Bearer " + o.token);
}

std::string describe_inspect_error(const grpc::Status& s, const inspect_options& o) {
  std::string text = describe(s);
  switch (s.error_code()) {
  case grpc::StatusCode::UNAUTHENTICATED:
  case grpc::StatusCode::PERMISSION_DENIED:
    text += o.token.empty() ? " (pass --token or set " + std::string(inspect_token_env) + ")"
                            : " (check --token / " + std::string(inspect_token_env) + ")";
    break;
  case grpc::StatusCode::UNIMPLEMENTED:
    text += " (this server does not serve inspect.v1.Inspector; is it embedd or gpu-worker?)";
    break;
  default: break;
  }
  return text;
}

std::string state_text(const inspect::v1::ActorInfo& a) {
  std::vector<std::pair<std::string, std::string>> kv(a.state().begin(), a.state().end());
  std::sort(kv.begin(), kv.end());
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty())
      out += ' ';
    out += k + '=' + v;
  }
  return out;
}

std::string format_uptime(double seconds) {
  if (!(seconds >= 0)) // NaN and negatives: a server clock we cannot trust
    return "-";
  auto s = static_cast<uint64_t>(seconds);
  char buf[64];
  uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  if (d > 0)
    std::snprintf(buf, sizeof buf, "%llud %02llu:%02llu:%02llu", static_cast<unsigned long long>(d),
                  static_cast<unsigned long long>(h), static_cast<unsigned long long>(m),
                  static_cast<unsigned long long>(sec));
  else
    std::snprintf(buf, sizeof buf, "%02llu:%02llu:%02llu", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(m), static_cast<unsigned long long>(sec));
  return buf;
}

std::string format_clock(int64_t unix_ms, bool with_date) {
  if (unix_ms <= 0)
    return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr)
    return "-";
  char buf[64];
  std::strftime(buf, sizeof buf, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
  return buf;
}

std::string format_compact(double v, int width, bool decimals) {
  if (std::isnan(v))
    return "-";
  char buf[64];
  auto fits = [&](int n) { return n > 0 && n <= width; };
  if (decimals && std::fabs(v) < 100 && fits(std::snprintf(buf, sizeof buf, "%.1f", v)))
    return buf;
  if (fits(std::snprintf(buf, sizeof buf, "%.0f", v)))
    return buf;
  static constexpr char suffixes[] = {'k', 'M', 'G', 'T', 'P', 'E'};
  double x = v;
  for (char suffix : suffixes) {
    x /= 1000;
    if (std::fabs(x) < 100 && fits(std::snprintf(buf, sizeof buf, "%.1f%c", x, suffix)))
      return buf;
    if (fits(std::snprintf(buf, sizeof buf, "%.0f%c", x, suffix)))
      return buf;
  }
  return buf; // wider than asked: the caller's column is too narrow for any honest number
}

} // namespace embed::cli
