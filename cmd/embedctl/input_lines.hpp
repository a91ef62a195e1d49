#pragma once
// Input records for `embed --file` / stdin and `rerank --file`: one per non-blank line, either
// JSON {"text": "..."} (or {"input": "..."}, with an optional "id" echoed back) or, with --plain,
// the line itself. A bad line becomes a record that carries its error instead of a text, so that
// callers report it in input order and go on.

#include <boost/json/value.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace embed::cli {

struct input_record {
  size_t line = 0;       ///< 1-based line number in the input
  size_t index = 0;      ///< 0-based position among the records (blank lines are not records)
  std::string text;      ///< valid UTF-8 when error is empty
  boost::json::value id; ///< the input's "id", null when it had none
  std::string error;     ///< why the line is unusable; empty for a good record
  bool ok() const { return error.empty(); }
};

/// Parses one line (without its newline) into rec.text/id/error.
void parse_record(std::string_view line, bool plain, input_record& rec);

/// Buffered lines from a file or stdin ("-"), read with read(2) so that nothing is consumed
/// before it is needed (embed reads more only as answers come back).
class line_source {
public:
  /// Opens path ("-" = stdin); on failure error() says why.
  explicit line_source(const std::string& path);
  ~line_source();
  line_source(const line_source&) = delete;
  line_source& operator=(const line_source&) = delete;

  const std::string& error() const { return error_; }

  /// The next record (blank lines skipped); nullopt at the end of the input.
  std::optional<input_record> next(bool plain);

  /// Number of non-blank lines ahead when the input is a regular file (counted without moving
  /// the read position); nullopt for pipes and terminals. Call it before the first next(): lines
  /// already buffered are not counted.
  std::optional<size_t> count_records() const;

private:
  bool read_line(std::string& line);

  int fd_ = -1;
  bool owns_fd_ = false;
  std::string error_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  size_t line_ = 0;
  size_t records_ = 0;
};

/// True when stdin is a terminal (no piped input to read).
bool stdin_is_terminal();

} // namespace embed::cli
