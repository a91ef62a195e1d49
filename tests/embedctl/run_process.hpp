#pragma once
// Runs a program as a child process with the given stdin, and collects its exit code, stdout and
// stderr: embedctl is tested as users run it, not through its functions.

#include <string>
#include <vector>

namespace embed::cli::test {

struct process_result {
  int rc = -1;     ///< exit code; 128 + signal when killed
  std::string out; ///< stdout
  std::string err; ///< stderr
  double seconds = 0;
};

/// Runs argv[0] (a path) with argv; input is written to its stdin, which is then closed.
/// stderr_terminal: the child's stderr is a pseudo-terminal (what a user at a shell has).
process_result run_process(const std::vector<std::string>& argv, const std::string& input = "",
                           bool stderr_terminal = false);

} // namespace embed::cli::test
