#pragma once
// The progress bar of `embed` on files and stdin: texts done / total (when the input is a file
// whose size is known), texts/s and ETA, redrawn in place on stderr. Only when stderr is a
// terminal: in logs and pipes it would be noise.

#include <chrono>
#include <cstddef>
#include <optional>

namespace embed::cli {

class progress_bar {
public:
  /// enabled: draw at all (stderr is a terminal); total: inputs expected, when known.
  progress_bar(bool enabled, std::optional<size_t> total);

  /// Redraws with done inputs finished, at most a few times a second unless force.
  void update(size_t done, bool force = false);

  /// Draws the final state and ends the line, so that what follows starts on a fresh one.
  void finish(size_t done);

  bool enabled() const { return enabled_; }

private:
  using clock = std::chrono::steady_clock;
  bool enabled_;
  std::optional<size_t> total_;
  clock::time_point start_;
  clock::time_point last_draw_;
  bool drawn_ = false;
};

/// True when stderr is a terminal.
bool stderr_is_terminal();

} // namespace embed::cli
