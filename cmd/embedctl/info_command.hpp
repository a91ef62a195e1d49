#pragma once
// `embedctl info`: the gateway's Info (models, dimensions, limits, workers and their breakers,
// prompt names) as pretty JSON.

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `info` subcommand to app; it runs from the subcommand's callback.
void add_info_command(CLI::App& app);

} // namespace embed::cli
