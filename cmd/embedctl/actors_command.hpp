#pragma once
// `embedctl actors`: one inspect.v1 ListActors snapshot of embedd or gpu-worker, as a plain table
// (for people) or, with --json, as one JSON object on one line (for scripts and jq).

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `actors` subcommand to app; it runs from the subcommand's callback.
void add_actors_command(CLI::App& app);

} // namespace embed::cli
