#pragma once
// `embedctl rerank --query Q DOC...` (or --file of JSON lines {"text": ...} as documents): one
// Rerank call; prints {"index": i, "score": s, "document": "..."} lines, best first.

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `rerank` subcommand to app; it runs from the subcommand's callback.
void add_rerank_command(CLI::App& app);

} // namespace embed::cli
