#pragma once
// Where embed results go: JSON lines (one per input, in input order) or, with --format legacy,
// the one JSON object the old Python system printed. Both embed paths (arguments and streamed
// files) write through this, so the two formats look the same whichever path made them.

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embed::cli {

enum class output_format { jsonl, legacy };

/// Which input a result belongs to.
struct row_ref {
  size_t index = 0;                       ///< 0-based position among the inputs
  std::optional<size_t> line;             ///< 1-based input line (files and stdin only)
  const boost::json::value* id = nullptr; ///< the input's "id", if it had one
};

class embed_sink {
public:
  explicit embed_sink(output_format format) : format_(format) {}

  /// One input's vector.
  void vector(const row_ref& row, const float* values, uint32_t dimension, uint32_t tokens,
              std::optional<bool> cached, const std::string& model);

  /// One input that has no vector: an error line (jsonl) or a line on stderr (legacy, whose
  /// stdout must stay one JSON object).
  void error(const row_ref& row, std::string_view message);

  /// Writes what is buffered to stdout, so that a consumer downstream sees results as they come.
  void flush();

  /// Ends the output (legacy: metrics and summary close the object) and flushes.
  void finish(double seconds);

  size_t succeeded() const { return succeeded_; }
  size_t failed() const { return failed_; }

private:
  void open_legacy();

  output_format format_;
  std::string buf_;
  bool opened_ = false;
  size_t succeeded_ = 0;
  size_t failed_ = 0;
  std::string model_;
  uint32_t dimension_ = 0;
};

} // namespace embed::cli
