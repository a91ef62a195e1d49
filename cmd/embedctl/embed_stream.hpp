#pragma once
// `embed --file PATH` / stdin: input records streamed through EmbedStream, `batch` texts per
// request and at most `in_flight` requests unanswered (more input is read only as answers come
// back). Results come out in input order. A bad line, or a request the server rejects, gives
// error lines for its inputs and the run goes on; the run gives up only when the stream itself
// keeps failing (max_failed_streams in a row, nothing answered in between).

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
