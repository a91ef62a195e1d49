#pragma once
// `embedctl health`: grpc.health.v1 Check; prints the serving status and exits 0 only when it
// is SERVING. --wait SECONDS polls until SERVING or the time is up (for start-up scripts).

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `health` subcommand to app; it runs from the subcommand's callback.
void add_health_command(CLI::App& app);

} // namespace embed::cli
