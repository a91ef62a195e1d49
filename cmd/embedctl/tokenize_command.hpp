#pragma once
// `embedctl tokenize`: JSON lines {"text": "..."} on stdin -> one {"ids": [...]} line per input
// on stdout, with a local tokenizer.json and no server. A bad line (invalid UTF-8, bad JSON, no
// "text") gives {"error": "line N: ..."} and the run goes on.

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `tokenize` subcommand to app; it runs from the subcommand's callback.
void add_tokenize_command(CLI::App& app);

} // namespace embed::cli
