#pragma once
// `embedctl embed`: texts given as arguments -> one unary Embed; a file or stdin of JSON lines
// -> EmbedStream with a bounded window (embed_stream.hpp). Output: JSON lines, one per input,
// or the old Python system's single JSON object with --format legacy (embed_output.hpp).

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `embed` subcommand to app; it runs from the subcommand's callback.
void add_embed_command(CLI::App& app);

} // namespace embed::cli
