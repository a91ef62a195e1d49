#pragma once
// `embedctl top`: a live full-screen view of the actors inside embedd or gpu-worker, fed by the
// inspect.v1 Watch stream, redrawn with plain ANSI escapes (no curses) and sortable by keys.
// It needs a terminal on stdout (else exit 2, pointing at `embedctl actors --json`). Exit codes:
// 0 after q, 128 + the signal after Ctrl-C (130), SIGTERM (143) or SIGHUP (129), as a shell
// reports a process ended by that signal; the terminal is restored on every one of these paths.

#include <CLI/CLI.hpp>

namespace embed::cli {

/// Adds the `top` subcommand to app; it runs from the subcommand's callback.
void add_top_command(CLI::App& app);

} // namespace embed::cli
