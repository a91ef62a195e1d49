#pragma once
// `embed --file PATH` / stdin: input records streamed through EmbedStream, `batch` texts per
// request and at most `in_flight` requests unanswered (more input is read only as answers come
// back). Results come out in input order. A bad line, or a request the server rejects (an answer
// with EmbedResponse.error, on a stream that goes on), gives error lines for its inputs and the
// run goes on. When the stream itself fails, what it left unanswered is sent again on a new one;
// the run gives up when streams keep failing (max_failed_streams in a row, nothing answered in
// between) or at once when answers come out of order (EmbedResponse.sequence).

#include "cmd/embedctl/client.hpp"
#include "cmd/embedctl/embed_output.hpp"
#include "cmd/embedctl/embed_request.hpp"

#include <cstddef>
#include <string>

namespace embed::cli {

struct stream_options {
  std::string path = "-"; ///< "-" = stdin
  size_t batch = 32;
  size_t in_flight = 8;
  bool plain = false; ///< each line is a text, not JSON
};

/// Runs the stream to the end of the input; returns the exit code (0 only when every input got
/// a vector). Prints the summary line `embedded N texts (M errors) in T s` to stderr.
int run_embed_stream(const client_options& client, const embed_options& embed,
                     const stream_options& stream, output_format format);

} // namespace embed::cli
