#include "messages/validate.hpp"

#include "messages/error.hpp"

#include <algorithm>
#include <string>

namespace embed {

namespace {

std::string field_at(std::string_view name, size_t i) {
  return std::string(name) + "[" + std::to_string(i) + "]";
}

bool is_blank(std::string_view s) {
  // ASCII whitespace only: a text of other Unicode spaces still tokenizes to something.
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

// One text: UTF-8, not blank, within the character limit.
caf::error check_text(const std::string& field, std::string_view text,
                      const request_limits& limits) {
  if (auto bad = find_invalid_utf8(text))
    return make_error(ec::invalid_utf8, field + ": invalid UTF-8 at byte " + std::to_string(*bad));
  if (is_blank(text))
    return make_error(ec::empty_input, field + ": blank text; every input needs some content");
  auto chars = count_code_points(text);
  if (chars > limits.max_chars_per_input)
    return make_error(ec::input_too_long, field + ": " + std::to_string(chars) +
                                              " characters, limit " +
                                              std::to_string(limits.max_chars_per_input));
  return {};
}

caf::error check_id(std::string_view field, std::string_view value, const request_limits& limits) {
  if (value.size() > limits.max_id_chars)
    return make_error(ec::invalid_argument, std::string(field) + ": " +
                                                std::to_string(value.size()) + " bytes, limit " +
                                                std::to_string(limits.max_id_chars));
  if (auto bad = find_invalid_utf8(value))
    return make_error(ec::invalid_utf8,
                      std::string(field) + ": invalid UTF-8 at byte " + std::to_string(*bad));
  return {};
}

std::string known_prompts(const request_limits& limits) {
  if (limits.prompts.empty())
    return "none are configured";
  std::string out = "known: ";
  for (auto& [name, _] : limits.prompts) {
    if (out.size() > 7)
      out += ", ";
    out += name;
  }
  return out;
}

} // namespace

const char* to_string(truncation_direction d) {
  switch (d) {
  case truncation_direction::right: return "right";
  case truncation_direction::left: return "left";
  }
  return "unknown";
}

std::optional<size_t> find_invalid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n)
      return i;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80)
        return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid.
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::nullopt;
}

size_t count_code_points(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

caf::error request_limits::validate() const {
  auto positive = [](const char* name, uint32_t v) -> caf::error {
    if (v == 0)
      return make_error(ec::invalid_argument, std::string("limits.") + name + " must be > 0");
    return {};
  };
  for (auto [name, v] : {std::pair{"max_inputs_per_request", max_inputs_per_request},
                         std::pair{"max_chars_per_input", max_chars_per_input},
                         std::pair{"max_tokens_per_input", max_tokens_per_input},
                         std::pair{"max_documents_per_rerank", max_documents_per_rerank},
                         std::pair{"max_id_chars", max_id_chars}})
    if (auto err = positive(name, v))
      return err;
  for (auto d : allowed_dimensions)
    if (d == 0 || (model_dimension != 0 && d > model_dimension))
      return make_error(ec::invalid_argument, "limits.allowed_dimensions: " + std::to_string(d) +
                                                  " is not within 1.." +
                                                  std::to_string(model_dimension));
  return {};
}

caf::error validate(const embedding_request& req, const request_limits& limits) {
  if (req.inputs.empty())
    return make_error(ec::empty_input, "inputs: empty list; at least 1 input is required");
  if (req.inputs.size() > limits.max_inputs_per_request)
    return make_error(ec::too_many_inputs, "inputs: " + std::to_string(req.inputs.size()) +
                                               " inputs, limit " +
                                               std::to_string(limits.max_inputs_per_request));
  for (size_t i = 0; i < req.inputs.size(); ++i)
    if (auto err = check_text(field_at("inputs", i), req.inputs[i], limits))
      return err;
  for (auto [field, value] :
       {std::pair{"model", &req.model}, std::pair{"correlation_id", &req.correlation_id},
        std::pair{"namespace", &req.ns}})
    if (auto err = check_id(field, *value, limits))
      return err;
  const auto& o = req.options;
  if (static_cast<uint8_t>(o.direction) > static_cast<uint8_t>(truncation_direction::left))
    return make_error(ec::invalid_argument, "options.truncation_direction: " +
                                                std::to_string(static_cast<unsigned>(o.direction)) +
                                                " is not a direction; use right or left");
  if (o.dimensions != 0) {
    if (limits.model_dimension != 0 && o.dimensions > limits.model_dimension)
      return make_error(ec::invalid_argument,
                        "options.dimensions: " + std::to_string(o.dimensions) +
                            " exceeds the model dimension " +
                            std::to_string(limits.model_dimension));
    const auto& allowed = limits.allowed_dimensions;
    if (!allowed.empty() &&
        std::find(allowed.begin(), allowed.end(), o.dimensions) == allowed.end()) {
      std::string list;
      for (auto d : allowed)
        list += (list.empty() ? "" : ", ") + std::to_string(d);
      return make_error(ec::invalid_argument,
                        "options.dimensions: " + std::to_string(o.dimensions) +
                            " is not allowed; allowed: " + list);
    }
  }
  if (!o.instruction.empty() && !o.prompt_name.empty())
    return make_error(ec::invalid_argument,
                      "options.prompt_name: give either instruction or prompt_name, not both");
  if (!o.prompt_name.empty() && limits.prompts.count(o.prompt_name) == 0)
    return make_error(ec::invalid_argument, "options.prompt_name: '" + o.prompt_name +
                                                "' is unknown; " + known_prompts(limits));
  if (!o.instruction.empty()) {
    if (auto bad = find_invalid_utf8(o.instruction))
      return make_error(ec::invalid_utf8,
                        "options.instruction: invalid UTF-8 at byte " + std::to_string(*bad));
    if (count_code_points(o.instruction) > limits.max_chars_per_input)
      return make_error(ec::input_too_long,
                        "options.instruction: " + std::to_string(count_code_points(o.instruction)) +
                            " characters, limit " + std::to_string(limits.max_chars_per_input));
  }
  return {};
}

caf::error validate(const rerank_request& req, const request_limits& limits) {
  if (auto err = check_text("query", req.query, limits))
    return err;
  if (req.documents.empty())
    return make_error(ec::empty_input, "documents: empty list; at least 1 document is required");
  if (req.documents.size() > limits.max_documents_per_rerank)
    return make_error(ec::too_many_inputs, "documents: " + std::to_string(req.documents.size()) +
                                               " documents, limit " +
                                               std::to_string(limits.max_documents_per_rerank));
  for (size_t i = 0; i < req.documents.size(); ++i)
    if (auto err = check_text(field_at("documents", i), req.documents[i], limits))
      return err;
  if (!req.instruction.empty())
    if (auto err = check_text("instruction", req.instruction, limits))
      return err;
  for (auto [field, value] :
       {std::pair{"model", &req.model}, std::pair{"correlation_id", &req.correlation_id}})
    if (auto err = check_id(field, *value, limits))
      return err;
  return {};
}

caf::error check_token_count(std::string_view field, size_t tokens, const request_limits& limits) {
  if (tokens > limits.max_tokens_per_input)
    return make_error(ec::input_too_long, std::string(field) + ": " + std::to_string(tokens) +
                                              " tokens, limit " +
                                              std::to_string(limits.max_tokens_per_input) +
                                              " (set truncate to cut it)");
  return {};
}

std::string resolve_instruction(const embedding_options& opts, const request_limits& limits) {
  if (!opts.instruction.empty())
    return opts.instruction;
  if (!opts.prompt_name.empty()) {
    auto i = limits.prompts.find(opts.prompt_name);
    if (i != limits.prompts.end())
      return i->second;
  }
  return {};
}

} // namespace embed
