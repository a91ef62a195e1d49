#include "messages/error.hpp"
#include "messages/validate.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace embed;

namespace {

request_limits limits() {
  request_limits l;
  l.max_inputs_per_request = 4;
  l.max_chars_per_input = 10;
  l.max_tokens_per_input = 8;
  l.max_documents_per_rerank = 3;
  l.model_dimension = 64;
  l.prompts = {{"query", "Given a web search query, retrieve relevant passages"}};
  return l;
}

embedding_request request(std::vector<std::string> inputs) {
  embedding_request r;
  r.inputs = std::move(inputs);
  return r;
}

// Asserts the code and that the message names the field (and, when given, the limit).
void expect_error(const caf::error& err, ec code, const std::string& field,
                  const std::string& also = "") {
  ASSERT_TRUE(err) << "expected " << to_string(code);
  EXPECT_EQ(code_of(err), code) << message_of(err);
  auto msg = message_of(err);
  EXPECT_EQ(msg.rfind(field, 0), 0u) << "message does not start with the field: " << msg;
  if (!also.empty()) {
    EXPECT_NE(msg.find(also), std::string::npos) << msg;
  }
}

} // namespace

TEST(validate_embedding, accepts_a_good_request) {
  auto r = request({"hello", "wörld"});
  r.options.dimensions = 32;
  r.options.prompt_name = "query";
  EXPECT_FALSE(validate(r, limits()));
}

TEST(validate_embedding, empty_list) {
  expect_error(validate(request({}), limits()), ec::empty_input, "inputs:", "at least 1");
}

TEST(validate_embedding, blank_text) {
  expect_error(validate(request({"ok", " \t\n"}), limits()), ec::empty_input,
               "inputs[1]:", "blank");
  expect_error(validate(request({""}), limits()), ec::empty_input, "inputs[0]:");
}

TEST(validate_embedding, too_many_inputs) {
  expect_error(validate(request({"a", "b", "c", "d", "e"}), limits()), ec::too_many_inputs,
               "inputs:", "5 inputs, limit 4");
}

TEST(validate_embedding, too_long_counts_code_points) {
  // 10 code points in 20 bytes is within the limit; 11 is not.
  EXPECT_FALSE(validate(request({"éééééééééé"}), limits()));
  expect_error(validate(request({"ok", "ok", "ok", "ééééééééééé"}), limits()), ec::input_too_long,
               "inputs[3]: 11 characters, limit 10");
}

TEST(validate_embedding, invalid_utf8) {
  expect_error(validate(request({"ok", std::string("ab\xC3\x28", 4)}), limits()), ec::invalid_utf8,
               "inputs[1]:", "byte 2");
  expect_error(validate(request({std::string("\xED\xA0\x80", 3)}), limits()), ec::invalid_utf8,
               "inputs[0]:", "byte 0"); // a UTF-16 surrogate
  expect_error(validate(request({std::string("\xC0\xAF", 2)}), limits()), ec::invalid_utf8,
               "inputs[0]:"); // overlong
  expect_error(validate(request({std::string("abc\xE2\x82", 5)}), limits()), ec::invalid_utf8,
               "inputs[0]:", "byte 3"); // truncated
}

TEST(validate_embedding, dimensions_out_of_range) {
  auto r = request({"a"});
  r.options.dimensions = 65;
  expect_error(validate(r, limits()), ec::invalid_argument, "options.dimensions:", "64");
}

TEST(validate_embedding, dimensions_not_allowed) {
  auto l = limits();
  l.allowed_dimensions = {32, 64};
  auto r = request({"a"});
  r.options.dimensions = 48;
  expect_error(validate(r, l), ec::invalid_argument, "options.dimensions:", "allowed: 32, 64");
  r.options.dimensions = 32;
  EXPECT_FALSE(validate(r, l));
}

TEST(validate_embedding, unknown_prompt_name) {
  auto r = request({"a"});
  r.options.prompt_name = "nope";
  expect_error(validate(r, limits()), ec::invalid_argument, "options.prompt_name:", "known: query");
}

TEST(validate_embedding, instruction_and_prompt_name_together) {
  auto r = request({"a"});
  r.options.prompt_name = "query";
  r.options.instruction = "x";
  expect_error(validate(r, limits()), ec::invalid_argument, "options.prompt_name:");
}

TEST(validate_embedding, bad_truncation_direction) {
  auto r = request({"a"});
  r.options.direction = static_cast<truncation_direction>(7);
  expect_error(validate(r, limits()), ec::invalid_argument, "options.truncation_direction:", "7");
}

TEST(validate_embedding, oversized_ids) {
  auto r = request({"a"});
  r.correlation_id = std::string(200, 'x');
  expect_error(validate(r, limits()), ec::invalid_argument, "correlation_id:", "limit 128");
  r.correlation_id.clear();
  r.ns = std::string(200, 'n');
  expect_error(validate(r, limits()), ec::invalid_argument, "namespace:");
}

TEST(validate_embedding, token_count) {
  EXPECT_FALSE(check_token_count("inputs[0]", 8, limits()));
  expect_error(check_token_count("inputs[2]", 9, limits()), ec::input_too_long,
               "inputs[2]: 9 tokens, limit 8");
}

TEST(validate_embedding, resolves_instruction) {
  embedding_options o;
  o.prompt_name = "query";
  EXPECT_EQ(resolve_instruction(o, limits()), limits().prompts.at("query"));
  o.prompt_name.clear();
  o.instruction = "Find code";
  EXPECT_EQ(resolve_instruction(o, limits()), "Find code");
}

TEST(validate_rerank, rules) {
  rerank_request r;
  r.query = "q";
  r.documents = {"a", "b"};
  EXPECT_FALSE(validate(r, limits()));
  r.query = " ";
  expect_error(validate(r, limits()), ec::empty_input, "query:");
  r.query = "q";
  r.documents = {};
  expect_error(validate(r, limits()), ec::empty_input, "documents:");
  r.documents = {"a", "b", "c", "d"};
  expect_error(validate(r, limits()), ec::too_many_inputs, "documents:", "limit 3");
  r.documents = {"a", std::string("\xFF", 1)};
  expect_error(validate(r, limits()), ec::invalid_utf8, "documents[1]:");
  r.documents = {"a", "this is far too long"};
  expect_error(validate(r, limits()), ec::input_too_long, "documents[1]:", "limit 10");
}

TEST(validate_limits, rejects_zero_limits) {
  auto l = limits();
  l.max_inputs_per_request = 0;
  expect_error(l.validate(), ec::invalid_argument, "limits.max_inputs_per_request");
  l = limits();
  l.allowed_dimensions = {128};
  expect_error(l.validate(), ec::invalid_argument, "limits.allowed_dimensions");
}
