#pragma once
// The worker's offline commands for scripts: embed-ids and score-ids read JSON lines of token ids
// on stdin and write one JSON line per input line on stdout. No torch header here.

namespace CLI {
class App;
}

namespace embed::worker_cli {

// Registers the embed-ids and score-ids subcommands (with their callbacks) on `app`.
void add_offline_commands(CLI::App& app);

} // namespace embed::worker_cli
