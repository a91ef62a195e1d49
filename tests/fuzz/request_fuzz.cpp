// libFuzzer target: arbitrary bytes as a public embedding.v1 request, converted at the gRPC edge
// (edge/convert) and validated (messages/validate) as the gateway does for Embed / EmbedStream
// (EmbedRequest), Rerank / RerankStream (RerankRequest) and Tokenize (TokenizeRequest, read as an
// EmbedRequest). Byte 0 picks the message and the limits; the rest is the protobuf encoding.
// A fourth kind builds typed requests straight from the bytes (split at NUL), since protobuf
// refuses invalid UTF-8 in proto3 strings before validation could see it.
// Checks, beyond "no crash, no leak, no sanitizer report": conversion copies the fields; a
// refusal is a project error with a message and a gRPC status other than OK; an accepted request
// satisfies every limit, checked here independently of validate.cpp.

#include "edge/convert.hpp"
#include "edge/status.hpp"
#include "messages/error.hpp"
#include "messages/validate.hpp"

#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ev1 = embedding::v1;
using namespace embed;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "request_fuzz: %s\n", what);
    std::abort();
  }
}

// Strict UTF-8 (RFC 3629), written apart from messages/validate.cpp to cross-check it.
bool utf8_ok(std::string_view s, size_t* code_points = nullptr) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size())
      return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t min_of_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_of_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  if (code_points)
    *code_points = n;
  return true;
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\n\r\f\v") == std::string_view::npos;
}

// A text validate() accepted: UTF-8, not blank, within the character limit.
void check_text(std::string_view s, const request_limits& l) {
  size_t cps = 0;
  check(utf8_ok(s, &cps), "accepted a text that is not UTF-8");
  check(!blank(s), "accepted a blank text");
  check(cps <= l.max_chars_per_input, "accepted a text over max_chars_per_input");
  check(count_code_points(s) == cps, "count_code_points disagrees");
}

void check_id(std::string_view s, const request_limits& l) {
  check(s.size() <= l.max_id_chars, "accepted an id over max_id_chars");
  check(utf8_ok(s), "accepted an id that is not UTF-8");
}

void check_refusal(const caf::error& err) {
  check(static_cast<bool>(err), "refusal without an error");
  ec code = code_of(err);
  check(code != ec::none && code != ec::internal, "refusal with no project code");
  check(!message_of(err).empty(), "refusal without a message");
  check(!edge::to_status(err).ok(), "refusal maps to grpc OK");
}

void check_accepted(const embedding_request& r, const request_limits& l) {
  check(!r.inputs.empty() && r.inputs.size() <= l.max_inputs_per_request,
        "accepted an input count outside 1..max_inputs_per_request");
  for (const auto& in : r.inputs)
    check_text(in, l);
  check_id(r.model, l);
  check_id(r.correlation_id, l);
  check_id(r.ns, l);
  const auto& o = r.options;
  check(o.direction == truncation_direction::right || o.direction == truncation_direction::left,
        "accepted an unknown truncation direction");
  if (o.dimensions != 0) {
    check(l.model_dimension == 0 || o.dimensions <= l.model_dimension,
          "accepted dimensions over the model dimension");
    check(l.allowed_dimensions.empty() ||
              std::count(l.allowed_dimensions.begin(), l.allowed_dimensions.end(), o.dimensions),
          "accepted dimensions not in allowed_dimensions");
  }
  check(o.instruction.empty() || o.prompt_name.empty(), "accepted instruction and prompt_name");
  check(o.prompt_name.empty() || l.prompts.count(o.prompt_name), "accepted an unknown prompt");
  if (!o.instruction.empty()) {
    size_t cps = 0;
    check(utf8_ok(o.instruction, &cps), "accepted an instruction that is not UTF-8");
    check(cps <= l.max_chars_per_input, "accepted an instruction over max_chars_per_input");
  }
  std::string instr = resolve_instruction(o, l);
  check(o.prompt_name.empty() || instr == l.prompts.at(o.prompt_name), "resolve_instruction");
}

void check_accepted(const rerank_request& r, const request_limits& l) {
  check_text(r.query, l);
  check(!r.documents.empty() && r.documents.size() <= l.max_documents_per_rerank,
        "accepted a document count outside 1..max_documents_per_rerank");
  for (const auto& d : r.documents)
    check_text(d, l);
  if (!r.instruction.empty())
    check_text(r.instruction, l);
  check_id(r.model, l);
  check_id(r.correlation_id, l);
}

// The direction the wire value means, or nullopt for a value that is none.
bool known_direction(int v, truncation_direction& d) {
  if (v == ev1::TRUNCATION_DIRECTION_UNSPECIFIED || v == ev1::TRUNCATION_DIRECTION_RIGHT)
    d = truncation_direction::right;
  else if (v == ev1::TRUNCATION_DIRECTION_LEFT)
    d = truncation_direction::left;
  else
    return false;
  return true;
}

void run(const ev1::EmbedRequest& p, const request_limits& l) {
  embedding_request r = edge::from_proto(p);
  check(r.inputs.size() == static_cast<size_t>(p.inputs_size()) &&
            std::equal(r.inputs.begin(), r.inputs.end(), p.inputs().begin()),
        "from_proto changed the inputs");
  check(r.model == p.model() && r.correlation_id == p.correlation_id() && r.ns == p.namespace_(),
        "from_proto changed an id");
  check(r.options.dimensions == p.options().dimensions() &&
            r.options.instruction == p.options().instruction() &&
            r.options.prompt_name == p.options().prompt_name() &&
            r.options.truncate == p.options().truncate() &&
            r.options.normalize == (!p.options().has_normalize() || p.options().normalize()),
        "from_proto changed an option");
  truncation_direction want{};
  bool known = known_direction(p.options().truncation_direction(), want);
  if (known)
    check(r.options.direction == want, "from_proto changed the truncation direction");
  auto err = validate(r, l);
  if (err)
    return check_refusal(err);
  check(known, "accepted a truncation_direction that is not a TruncationDirection");
  check_accepted(r, l);
}

void run(const ev1::RerankRequest& p, const request_limits& l) {
  rerank_request r = edge::from_proto(p);
  check(r.query == p.query() && r.documents.size() == static_cast<size_t>(p.documents_size()) &&
            std::equal(r.documents.begin(), r.documents.end(), p.documents().begin()) &&
            r.top_k == p.top_k() && r.instruction == p.instruction() &&
            r.return_documents == p.return_documents() && r.model == p.model() &&
            r.correlation_id == p.correlation_id() && r.truncate == p.truncate(),
        "from_proto changed a rerank field");
  auto err = validate(r, l);
  if (err)
    return check_refusal(err);
  check_accepted(r, l);
}

// Typed requests straight from bytes: NUL-separated texts, any bytes at all.
std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == '\0') {
      out.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

void run_raw(std::string_view bytes, const request_limits& l) {
  auto parts = split(bytes);
  embedding_request e;
  e.options.direction = static_cast<truncation_direction>(parts.size() % 3);
  if (parts.size() % 2)
    e.options.instruction = parts.back();
  else
    e.options.prompt_name = parts.back().size() < 8 ? parts.back() : "query";
  e.correlation_id = parts.front().substr(0, 24);
  e.inputs.assign(parts.begin() + 1 < parts.end() ? parts.begin() + 1 : parts.end(),
                  parts.end());
  if (auto err = validate(e, l))
    check_refusal(err);
  else
    check_accepted(e, l);

  rerank_request r;
  r.query = parts.front();
  r.documents.assign(parts.begin() + 1 < parts.end() ? parts.begin() + 1 : parts.end(),
                     parts.end());
  if (parts.size() > 3)
    r.instruction = parts[1];
  if (auto err = validate(r, l))
    check_refusal(err);
  else
    check_accepted(r, l);

  auto bad = find_invalid_utf8(bytes);
  check(bad.has_value() == !utf8_ok(bytes), "find_invalid_utf8 disagrees on validity");
  if (bad) {
    // Valid up to the offset, and no character starts there.
    check(utf8_ok(bytes.substr(0, *bad)), "find_invalid_utf8: invalid before the offset");
    for (size_t k = 1; k <= 4 && *bad + k <= bytes.size(); ++k)
      check(!utf8_ok(bytes.substr(*bad, k)), "find_invalid_utf8: valid at the offset");
  }
}

const request_limits& limits(int which) {
  static const request_limits small = [] {
    request_limits l;
    l.max_inputs_per_request = 3;
    l.max_chars_per_input = 12;
    l.max_tokens_per_input = 16;
    l.max_documents_per_rerank = 3;
    l.max_id_chars = 8;
    l.model_dimension = 64;
    l.allowed_dimensions = {16, 32, 64};
    l.prompts = {{"query", "Given a query, retrieve passages"}, {"doc", "d"}};
    check(!l.validate(), "small limits invalid");
    return l;
  }();
  static const request_limits defaults = [] {
    request_limits l;
    l.prompts = {{"query", "Given a query, retrieve passages"}};
    check(!l.validate(), "default limits invalid");
    return l;
  }();
  return which ? small : defaults;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // proto3 string fields with invalid UTF-8 are refused by the parser with a logged error.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const auto& l = limits(data[0] & 0x80);
  const char* body = reinterpret_cast<const char*>(data + 1);
  const int len = static_cast<int>(size - 1);
  switch (data[0] & 3) {
  case 0: {
    ev1::EmbedRequest p;
    if (p.ParseFromArray(body, len))
      run(p, l);
    break;
  }
  case 1: {
    ev1::RerankRequest p;
    if (p.ParseFromArray(body, len))
      run(p, l);
    break;
  }
  case 2: {
    ev1::TokenizeRequest t;
    if (t.ParseFromArray(body, len)) {
      // As the gateway's Tokenize does.
      ev1::EmbedRequest p;
      *p.mutable_inputs() = t.inputs();
      p.set_model(t.model());
      *p.mutable_options() = t.options();
      run(p, l);
    }
    break;
  }
  default: run_raw(std::string_view(body, static_cast<size_t>(len)), l);
  }
  return 0;
}
