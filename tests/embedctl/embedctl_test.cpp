// embedctl as users run it: the real binary as a child process, talking to an in-process stand-in
// Embedder (and gRPC's own health service) on a loopback port chosen at start.
#include "tests/embedctl/run_process.hpp"
#include "tests/embedctl/stand_in_embedder.hpp"

#include <boost/json.hpp>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace embed::cli::test {
namespace {

namespace json = boost::json;

std::vector<json::value> parse_lines(const std::string& out) {
  std::vector<json::value> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    v.push_back(json::parse(line));
  return v;
}

std::vector<float> floats_of(const json::value& v) {
  std::vector<float> out;
  for (const auto& x : v.as_array())
    out.push_back(static_cast<float>(x.to_number<double>()));
  return out;
}

std::string jsonl_of(const std::vector<std::string>& texts) {
  std::string s;
  for (const auto& t : texts)
    s += json::serialize(json::object{{"text", t}}) + "\n";
  return s;
}

class embedctl_test : public ::testing::Test {
protected:
  process_result run(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), EMBEDCTL_PATH);
    return run_process(args, input);
  }
  // Subcommand, then the stand-in's address, then the rest.
  process_result run_on(const std::string& sub, std::vector<std::string> args,
                        const std::string& input = "") {
    args.insert(args.begin(), {sub, "--server", server.address()});
    return run(std::move(args), input);
  }

  stand_in_server server;
};

// ---- embed, texts as arguments (unary Embed)

TEST_F(embedctl_test, embed_arguments_print_one_line_per_text_with_its_vector) {
  auto r = run_on("embed", {"hello", "world", "cached:x"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  const std::vector<std::string> texts = {"hello", "world", "cached:x"};
  for (size_t i = 0; i < 3; ++i) {
    const auto& o = lines[i].as_object();
    EXPECT_EQ(o.at("index").to_number<size_t>(), i);
    EXPECT_EQ(floats_of(o.at("embedding")), stand_in_vector(texts[i], stand_in_dimension, true));
    EXPECT_EQ(o.at("tokens").to_number<size_t>(), texts[i].size());
    EXPECT_EQ(o.at("cached").as_bool(), i == 2);
  }
  auto reqs = server.service.embed_requests();
  ASSERT_EQ(reqs.size(), 1u); // one request for all the arguments
  EXPECT_EQ(reqs[0].inputs_size(), 3);
  EXPECT_FALSE(reqs[0].options().has_normalize()); // the server's default
}

TEST_F(embedctl_test, embed_options_reach_the_request) {
  auto r = run_on("embed", {"--dimensions", "4", "--no-normalize", "--instruction", "find docs",
                            "--truncate-left", "--model", "m1", "--namespace", "tenant-a",
                            "--correlation-id", "c-42", "one"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(floats_of(lines[0].at("embedding")), stand_in_vector("one", 4, false));
  auto reqs = server.service.embed_requests();
  ASSERT_EQ(reqs.size(), 1u);
  const auto& q = reqs[0];
  EXPECT_EQ(q.options().dimensions(), 4u);
  ASSERT_TRUE(q.options().has_normalize());
  EXPECT_FALSE(q.options().normalize());
  EXPECT_EQ(q.options().instruction(), "find docs");
  EXPECT_TRUE(q.options().truncate());
  EXPECT_EQ(q.options().truncation_direction(), embedding::v1::TRUNCATION_DIRECTION_LEFT);
  EXPECT_EQ(q.model(), "m1");
  EXPECT_EQ(q.namespace_(), "tenant-a");
  EXPECT_EQ(q.correlation_id(), "c-42");
}

TEST_F(embedctl_test, embed_packed_unpacks_the_same_vectors) {
  auto r = run_on("embed", {"--packed", "alpha", "beta"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(floats_of(lines[0].at("embedding")),
            stand_in_vector("alpha", stand_in_dimension, true));
  EXPECT_EQ(floats_of(lines[1].at("embedding")), stand_in_vector("beta", stand_in_dimension, true));
  EXPECT_EQ(lines[1].at("tokens").to_number<size_t>(), 4u);
  EXPECT_FALSE(lines[0].as_object().contains("cached")); // not on the wire when packed
  EXPECT_EQ(server.service.embed_requests().at(0).encoding(),
            embedding::v1::VECTOR_ENCODING_PACKED);
}

TEST_F(embedctl_test, embed_server_error_is_printed_with_its_status_name) {
  auto r = run_on("embed", {"ok", fail_text});
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err, "embedctl: INVALID_ARGUMENT: inputs[1]: rejected by the stand-in\n");
}

TEST_F(embedctl_test, unreachable_server_is_unavailable) {
  // A port nothing listens on: bind one, note it, close it.
  stand_in_server other;
  std::string addr = other.address();
  other.server->Shutdown();
  other.server->Wait();
  auto r = run({"embed", "--server", addr, "x"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.rfind("embedctl: UNAVAILABLE: ", 0), 0u) << r.err;
}

TEST_F(embedctl_test, usage_errors_exit_2) {
  EXPECT_EQ(run_on("embed", {"--dimensions", "abc", "x"}).rc, 2);
  EXPECT_EQ(run_on("embed", {"--instruction", "a", "--prompt-name", "b", "x"}).rc, 2);
  EXPECT_EQ(run_on("embed", {"--batch", "0", "x"}).rc, 2);
  EXPECT_EQ(run_on("embed", {"--format", "xml", "x"}).rc, 2);
  EXPECT_EQ(run_on("embed", {"--file", "f.jsonl", "x"}).rc, 2);
  EXPECT_EQ(run_on("rerank", {"doc"}).rc, 2); // no --query
  EXPECT_EQ(run({"nonsense"}).rc, 2);
  EXPECT_EQ(run({}).rc, 2);
  EXPECT_EQ(run({"embed", "--help"}).rc, 0);
  EXPECT_TRUE(server.service.embed_requests().empty());
}

TEST_F(embedctl_test, help_documents_the_legacy_format) {
  auto r = run({"embed", "--help"});
  EXPECT_NE(r.out.find("\"embedding_summary\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"duration_ms\""), std::string::npos);
}

// ---- embed, JSON lines on stdin or --file (EmbedStream)

TEST_F(embedctl_test, stdin_thousand_lines_stream_in_order_within_the_window) {
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i)
    texts.push_back("text number " + std::to_string(i));
  auto r = run_on("embed", {"--in-flight", "2", "--batch", "10"}, jsonl_of(texts));
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 1000u);
  for (size_t i = 0; i < 1000; ++i) {
    const auto& o = lines[i].as_object();
    ASSERT_EQ(o.at("line").to_number<size_t>(), i + 1);
    ASSERT_EQ(o.at("index").to_number<size_t>(), i);
    ASSERT_EQ(floats_of(o.at("embedding")), stand_in_vector(texts[i], stand_in_dimension, true))
        << "line " << i + 1;
  }
  // Never more than --in-flight unanswered; and the window was used, not one at a time.
  EXPECT_LE(server.service.max_outstanding(), 2);
  EXPECT_EQ(server.service.max_outstanding(), 2);
  EXPECT_EQ(server.service.streams(), 1);
  EXPECT_NE(r.err.find("embedded 1000 texts (0 errors) in "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "progress bar drawn into a pipe";
}

TEST_F(embedctl_test, progress_bar_only_on_a_terminal) {
  char path[] = "/tmp/embedctl_test_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::vector<std::string> texts(300, "same text");
  std::string body = jsonl_of(texts);
  ASSERT_EQ(::write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  ::close(fd);
  auto r =
      run_process({EMBEDCTL_PATH, "embed", "--server", server.address(), "--file", path}, "", true);
  ::unlink(path);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(parse_lines(r.out).size(), 300u);
  // The total is known for a file: a bar with done/total, then the summary on its own line.
  EXPECT_NE(r.err.find("\r[##############################] 300/300 texts"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("texts/s"), std::string::npos);
  EXPECT_NE(r.err.find("embedded 300 texts (0 errors)"), std::string::npos);
}

TEST_F(embedctl_test, bad_lines_give_error_lines_and_the_run_goes_on) {
  std::string input;
  for (int i = 1; i <= 30; ++i) {
    if (i == 7)
      input += "{\"text\": \"unterminated\n";
    else if (i == 12)
      input += "{\"title\": \"no text field\"}\n";
    else if (i == 20)
      input += "{\"text\": \"bad \xff byte\"}\n";
    else if (i == 25)
      input += "   \n"; // blank: skipped, not an input
    else if (i == 26)
      input += "{\"input\": \"via input\", \"id\": \"doc-26\"}\n";
    else
      input += "{\"text\": \"line " + std::to_string(i) + "\"}\n";
  }
  auto r = run_on("embed", {"--batch", "4", "--in-flight", "3"}, input);
  EXPECT_EQ(r.rc, 1);
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 29u) << r.out;
  size_t expect_line = 1;
  for (const auto& v : lines) {
    const auto& o = v.as_object();
    if (expect_line == 25)
      ++expect_line;
    ASSERT_EQ(o.at("line").to_number<size_t>(), expect_line) << r.out;
    bool bad = expect_line == 7 || expect_line == 12 || expect_line == 20;
    EXPECT_EQ(o.contains("error"), bad) << json::serialize(v);
    if (expect_line == 20) {
      EXPECT_NE(o.at("error").as_string().find("UTF-8"), std::string::npos);
    }
    if (expect_line == 26) {
      EXPECT_EQ(o.at("id").as_string(), "doc-26");
      EXPECT_EQ(floats_of(o.at("embedding")),
                stand_in_vector("via input", stand_in_dimension, true));
    }
    ++expect_line;
  }
  EXPECT_NE(r.err.find("embedded 26 texts (3 errors)"), std::string::npos) << r.err;
}

// Each input of a request appears in exactly one answered request: none answered twice.
void expect_each_answered_once(const stand_in_embedder& s, const std::vector<std::string>& texts) {
  std::map<std::string, int> seen;
  for (const auto& req : s.answered_stream_inputs())
    for (const auto& t : req)
      ++seen[t];
  EXPECT_EQ(seen.size(), texts.size());
  for (const auto& t : texts)
    EXPECT_EQ(seen[t], 1) << t;
}

TEST_F(embedctl_test, rejected_request_gives_error_lines_for_its_inputs_and_the_run_goes_on) {
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i)
    texts.push_back(i == 13 || i == 16 ? fail_text : "t" + std::to_string(i));
  auto r = run_on("embed", {"--batch", "5", "--in-flight", "3"}, jsonl_of(texts));
  EXPECT_EQ(r.rc, 1);
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 40u) << r.out;
  for (size_t i = 0; i < 40; ++i) {
    const auto& o = lines[i].as_object();
    ASSERT_EQ(o.at("line").to_number<size_t>(), i + 1);
    ASSERT_EQ(o.at("index").to_number<size_t>(), i);
    // Batches 3 and 4 (one after the other) hold the rejected inputs.
    bool in_failed_batch = i >= 10 && i < 20;
    ASSERT_EQ(o.contains("error"), in_failed_batch) << json::serialize(lines[i]);
    if (in_failed_batch) {
      EXPECT_EQ(o.at("error").as_string(),
                i < 15 ? "INVALID_ARGUMENT: inputs[3]: rejected by the stand-in"
                       : "INVALID_ARGUMENT: inputs[1]: rejected by the stand-in");
    } else {
      EXPECT_EQ(floats_of(o.at("embedding")), stand_in_vector(texts[i], stand_in_dimension, true));
    }
  }
  // Answered in band: the same stream went on, and nothing was sent twice.
  EXPECT_EQ(server.service.streams(), 1);
  EXPECT_EQ(server.service.stream_requests().size(), 8u);
  EXPECT_NE(r.err.find("embedded 30 texts (10 errors)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("embedctl: "), std::string::npos) << r.err; // no fatal error
}

TEST_F(embedctl_test, dropped_stream_sends_again_only_what_got_no_answer) {
  std::vector<std::string> texts;
  for (int i = 0; i < 60; ++i)
    texts.push_back(i == 20 ? fail_text : i == 23 ? drop_text : "t" + std::to_string(i));
  auto r = run_on("embed", {"--batch", "3", "--in-flight", "4"}, jsonl_of(texts));
  EXPECT_EQ(r.rc, 1); // the rejected request
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 60u) << r.out;
  for (size_t i = 0; i < 60; ++i) {
    const auto& o = lines[i].as_object();
    ASSERT_EQ(o.at("line").to_number<size_t>(), i + 1);
    bool rejected = i >= 18 && i < 21; // batch 6, answered in band just before the drop
    ASSERT_EQ(o.contains("error"), rejected) << json::serialize(lines[i]);
    if (rejected) {
      EXPECT_EQ(o.at("error").as_string(), "INVALID_ARGUMENT: inputs[2]: rejected by the stand-in");
    } else {
      EXPECT_EQ(floats_of(o.at("embedding")), stand_in_vector(texts[i], stand_in_dimension, true));
    }
  }
  // The drop sent what was unanswered (the dropped request first) on a second stream; what
  // had an answer, the rejected request included, was not sent again.
  EXPECT_EQ(server.service.streams(), 2);
  size_t drop_sent = 0;
  for (const auto& q : server.service.stream_requests())
    drop_sent += std::count(q.inputs().begin(), q.inputs().end(), drop_text);
  EXPECT_EQ(drop_sent, 2u);
  expect_each_answered_once(server.service, texts);
  EXPECT_NE(r.err.find("embedded 57 texts (3 errors)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("embedctl: "), std::string::npos) << r.err; // no fatal error
}

TEST_F(embedctl_test, answer_out_of_sequence_is_fatal) {
  server.service.misnumber_at = 2;
  std::vector<std::string> texts;
  for (int i = 0; i < 30; ++i)
    texts.push_back("t" + std::to_string(i));
  auto r = run_on("embed", {"--batch", "2", "--in-flight", "2"}, jsonl_of(texts));
  EXPECT_EQ(r.rc, 1);
  auto lines = parse_lines(r.out);
  ASSERT_GT(lines.size(), 4u) << r.out;
  ASSERT_LT(lines.size(), 30u) << r.out; // stopped reading the input
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& o = lines[i].as_object();
    ASSERT_EQ(o.at("line").to_number<size_t>(), i + 1); // one line each, none twice
    if (i < 4) {
      EXPECT_EQ(floats_of(o.at("embedding")), stand_in_vector(texts[i], stand_in_dimension, true));
    } else {
      EXPECT_EQ(
          o.at("error").as_string().rfind("INTERNAL: the server broke the order of answers", 0), 0u)
          << json::serialize(lines[i]);
    }
  }
  EXPECT_EQ(server.service.streams(), 1); // not sent again
  EXPECT_NE(r.err.find("embedctl: INTERNAL: the server broke the order of answers: the answer "
                       "to request 2 of the stream came with sequence 3\n"),
            std::string::npos)
      << r.err;
}

TEST_F(embedctl_test, stalled_request_times_out_and_the_rest_is_sent_again) {
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i)
    texts.push_back(i == 5 ? stall_text : "t" + std::to_string(i));
  auto r = run_on("embed", {"--batch", "2", "--in-flight", "4", "--timeout", "1"}, jsonl_of(texts));
  EXPECT_EQ(r.rc, 1);
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 12u) << r.out;
  for (size_t i = 0; i < 12; ++i) {
    bool stalled = i == 4 || i == 5;
    ASSERT_EQ(lines[i].as_object().contains("error"), stalled) << json::serialize(lines[i]);
    if (stalled) {
      EXPECT_EQ(lines[i].at("error").as_string().rfind("DEADLINE_EXCEEDED: ", 0), 0u);
    }
  }
  EXPECT_LT(r.seconds, 60); // bounded, not hung: the stalled requests gave up at their deadline
}

TEST_F(embedctl_test, stream_gives_up_when_the_server_is_not_there) {
  stand_in_server other;
  std::string addr = other.address();
  other.server->Shutdown();
  other.server->Wait();
  std::vector<std::string> texts(1000, "x");
  auto r = run({"embed", "--server", addr, "--batch", "10"}, jsonl_of(texts));
  EXPECT_EQ(r.rc, 1);
  auto lines = parse_lines(r.out);
  EXPECT_LT(lines.size(), 1000u); // stopped reading instead of failing every line
  for (const auto& l : lines)
    EXPECT_EQ(l.at("error").as_string().rfind("UNAVAILABLE: ", 0), 0u) << json::serialize(l);
  EXPECT_NE(r.err.find("embedctl: UNAVAILABLE: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("embedded 0 texts (" + std::to_string(lines.size()) + " errors)"),
            std::string::npos)
      << r.err;
}

TEST_F(embedctl_test, file_of_plain_text_with_correlation_ids_per_request) {
  char path[] = "/tmp/embedctl_test_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string body = "first text\r\nsecond text\n\nthird text"; // CRLF, blank line, no final \n
  ASSERT_EQ(::write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  ::close(fd);
  auto r = run_on("embed", {"--file", path, "--plain", "--batch", "2", "--correlation-id", "job7"});
  ::unlink(path);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].at("line").to_number<int>(), 1);
  EXPECT_EQ(lines[2].at("line").to_number<int>(), 4);
  EXPECT_EQ(floats_of(lines[0].at("embedding")),
            stand_in_vector("first text", stand_in_dimension, true));
  EXPECT_EQ(floats_of(lines[2].at("embedding")),
            stand_in_vector("third text", stand_in_dimension, true));
  EXPECT_EQ(server.service.streams(), 1);
  EXPECT_TRUE(server.service.embed_requests().empty()); // no unary call
  auto reqs = server.service.stream_requests();
  ASSERT_EQ(reqs.size(), 2u); // 3 texts, 2 per request
  EXPECT_EQ(reqs[0].inputs_size(), 2);
  EXPECT_EQ(reqs[0].correlation_id(), "job7-1"); // one id per request
  EXPECT_EQ(reqs[1].correlation_id(), "job7-2");
}

TEST_F(embedctl_test, empty_input_connects_to_nothing) {
  auto r = run_on("embed", {}, "");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(server.service.streams(), 0);
  EXPECT_NE(r.err.find("embedded 0 texts (0 errors)"), std::string::npos);
}

// ---- --format legacy

TEST_F(embedctl_test, legacy_format_from_arguments) {
  auto r = run_on("embed", {"--format", "legacy", "a", "bb"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto v = json::parse(r.out);
  const auto& o = v.as_object();
  ASSERT_EQ(o.size(), 3u) << r.out;
  const auto& e = o.at("embeddings").as_array();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].at("id").to_number<int>(), 1);
  EXPECT_EQ(floats_of(e[1].at("vector")), stand_in_vector("bb", stand_in_dimension, true));
  EXPECT_EQ(e[1].at("model").as_string(), stand_in_model);
  EXPECT_EQ(e[1].at("dimension").to_number<uint32_t>(), stand_in_dimension);
  EXPECT_EQ(o.at("metrics").at("total").to_number<int>(), 2);
  EXPECT_EQ(o.at("metrics").at("failed").to_number<int>(), 0);
  EXPECT_GE(o.at("metrics").at("duration_ms").to_number<double>(), 0);
  EXPECT_EQ(o.at("embedding_summary").at("model").as_string(), stand_in_model);
  EXPECT_EQ(o.at("embedding_summary").at("dimension").to_number<uint32_t>(), stand_in_dimension);
  EXPECT_EQ(o.at("embedding_summary").at("count").to_number<int>(), 2);
}

TEST_F(embedctl_test, legacy_format_from_a_stream_with_failures) {
  std::string input = "{\"text\": \"x\", \"id\": 100}\nnot json\n{\"text\": \"y\"}\n";
  auto r = run_on("embed", {"--format", "legacy", "--dimensions", "3"}, input);
  EXPECT_EQ(r.rc, 1);
  auto v = json::parse(r.out); // stdout stays one JSON object; the failure goes to stderr
  const auto& e = v.at("embeddings").as_array();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].at("id").to_number<int>(), 100); // the input's own id
  EXPECT_EQ(e[1].at("id").to_number<int>(), 3);   // else its line
  EXPECT_EQ(floats_of(e[1].at("vector")), stand_in_vector("y", 3, true));
  EXPECT_EQ(v.at("metrics").at("total").to_number<int>(), 3);
  EXPECT_EQ(v.at("metrics").at("failed").to_number<int>(), 1);
  EXPECT_EQ(v.at("embedding_summary").at("count").to_number<int>(), 2);
  EXPECT_EQ(v.at("embedding_summary").at("dimension").to_number<int>(), 3);
  EXPECT_NE(r.err.find("embedctl: line 2: bad JSON"), std::string::npos) << r.err;
}

// ---- rerank

TEST_F(embedctl_test, rerank_prints_best_first_with_documents) {
  // The stand-in scores by closeness of length to the query's (5).
  auto r = run_on("rerank", {"--query", "query", "a much longer document", "doc", "five!", "ab"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 4u);
  std::vector<int> order;
  for (const auto& l : lines)
    order.push_back(l.at("index").to_number<int>());
  EXPECT_EQ(order, (std::vector<int>{2, 1, 3, 0}));
  EXPECT_EQ(lines[0].at("document").as_string(), "five!");
  EXPECT_FLOAT_EQ(static_cast<float>(lines[0].at("score").to_number<double>()), 1.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(lines[1].at("score").to_number<double>()),
                  stand_in_score("query", "doc"));
}

TEST_F(embedctl_test, rerank_server_error_is_printed_with_its_status_name) {
  auto r = run_on("rerank", {"--query", "q", "doc", fail_text});
  EXPECT_EQ(r.rc, 1);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err, "embedctl: INVALID_ARGUMENT: documents[1]: rejected by the stand-in\n");
}

TEST_F(embedctl_test, rerank_file_top_k_and_options) {
  std::string input = jsonl_of({"aaaaaaaaaa", "aaaa", "a"});
  auto r = run_on(
      "rerank",
      {"--query", "qqqq", "--file", "-", "--top-k", "2", "--instruction", "judge", "--model", "rr"},
      input);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = parse_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("document").as_string(), "aaaa");
  EXPECT_EQ(lines[1].at("document").as_string(), "a");
  auto reqs = server.service.rerank_requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].top_k(), 2u);
  EXPECT_EQ(reqs[0].instruction(), "judge");
  EXPECT_EQ(reqs[0].model(), "rr");
  EXPECT_EQ(reqs[0].documents_size(), 3);
}

// ---- info

TEST_F(embedctl_test, info_is_pretty_json_of_the_info_response) {
  auto r = run_on("info", {});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("\n "), std::string::npos) << "not indented: " << r.out;
  auto v = json::parse(r.out);
  EXPECT_EQ(v.at("version").as_string(), "stand-in-1");
  EXPECT_EQ(v.at("models").at(0).at("id").as_string(), stand_in_model);
  EXPECT_EQ(v.at("models").at(0).at("trained").as_bool(), false); // zero values are printed
  EXPECT_EQ(v.at("workers").at(0).at("breaker_state").as_string(), "closed");
  EXPECT_EQ(v.at("workers").at(0).at("in_flight").to_number<int>(), 0);
}

// ---- health

TEST_F(embedctl_test, health_exit_code_follows_the_serving_status) {
  auto r = run_on("health", {});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");

  server.server->GetHealthCheckService()->SetServingStatus(false);
  r = run_on("health", {});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "NOT_SERVING\n");

  server.server->GetHealthCheckService()->SetServingStatus("embedding.v1.Embedder", true);
  r = run_on("health", {"--service", "embedding.v1.Embedder"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "SERVING\n");

  r = run_on("health", {"--service", "no.such.Service"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.rfind("embedctl: NOT_FOUND: ", 0), 0u) << r.err;
}

TEST_F(embedctl_test, health_wait_polls_until_serving) {
  server.server->GetHealthCheckService()->SetServingStatus(false);
  std::thread flip([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    server.server->GetHealthCheckService()->SetServingStatus(true);
  });
  auto r = run_on("health", {"--wait", "20"});
  flip.join();
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  EXPECT_GE(r.seconds, 1.0);
  EXPECT_LT(r.seconds, 60.0); // did not wait out the whole --wait 20 after SERVING plus slack
}

TEST_F(embedctl_test, health_wait_gives_up_when_the_time_is_up) {
  server.server->GetHealthCheckService()->SetServingStatus(false);
  auto r = run_on("health", {"--wait", "1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "NOT_SERVING\n");
  EXPECT_GE(r.seconds, 0.7);
  EXPECT_LT(r.seconds, 30.0); // gave up near --wait 1, not later
}

TEST_F(embedctl_test, health_of_a_server_that_is_not_there) {
  stand_in_server other;
  std::string addr = other.address();
  other.server->Shutdown();
  other.server->Wait();
  auto r = run({"health", "--server", addr});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.rfind("embedctl: UNAVAILABLE: ", 0), 0u) << r.err;
  r = run({"health", "--server", addr, "--wait", "1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_LT(r.seconds, 30.0); // gave up near --wait 1, not later
}

} // namespace
} // namespace embed::cli::test
