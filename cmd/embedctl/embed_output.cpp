#include "cmd/embedctl/embed_output.hpp"

#include "cmd/embedctl/json_text.hpp"

#include <cstdio>
#include <iostream>

namespace embed::cli {

namespace {

// Buffered output is written once it passes this, so that big runs do not hold all in memory.
constexpr size_t flush_bytes = 1 << 16;

void append_row_keys(std::string& out, const row_ref& row) {
  if (row.line) {
    out += "\"line\":";
    out += std::to_string(*row.line);
    out += ',';
  }
  out += "\"index\":";
  out += std::to_string(row.index);
  if (row.id && !row.id->is_null()) {
    out += ",\"id\":";
    append_value(out, *row.id);
  }
}

} // namespace

void embed_sink::open_legacy() {
  if (!opened_)
    buf_ += "{\"embeddings\":[";
  opened_ = true;
}

void embed_sink::vector(const row_ref& row, const float* values, uint32_t dimension,
                        uint32_t tokens, std::optional<bool> cached, const std::string& model) {
  if (format_ == output_format::legacy) {
    open_legacy();
    if (succeeded_)
      buf_ += ',';
    // The old system's id: the caller's own, else the line (files) or the position (arguments).
    buf_ += "{\"id\":";
    if (row.id && !row.id->is_null())
      append_value(buf_, *row.id);
    else
      buf_ += std::to_string(row.line ? *row.line : row.index);
    buf_ += ",\"vector\":";
    append_floats(buf_, values, dimension);
    buf_ += ",\"model\":";
    append_string(buf_, model);
    buf_ += ",\"dimension\":";
    buf_ += std::to_string(dimension);
    buf_ += '}';
    model_ = model;
    dimension_ = dimension;
  } else {
    buf_ += '{';
    append_row_keys(buf_, row);
    buf_ += ",\"embedding\":";
    append_floats(buf_, values, dimension);
    buf_ += ",\"tokens\":";
    buf_ += std::to_string(tokens);
    if (cached) // packed responses carry no per-row flag: leave it out rather than guess
      buf_ += *cached ? ",\"cached\":true" : ",\"cached\":false";
    buf_ += "}\n";
  }
  ++succeeded_;
  if (buf_.size() > flush_bytes)
    flush();
}

void embed_sink::error(const row_ref& row, std::string_view message) {
  ++failed_;
  if (format_ == output_format::legacy) {
    flush(); // keep stdout and stderr in step when both go to one terminal
    std::cerr << "embedctl: "
              << (row.line ? "line " + std::to_string(*row.line)
                           : "input " + std::to_string(row.index))
              << ": " << message << '\n';
    return;
  }
  buf_ += '{';
  append_row_keys(buf_, row);
  buf_ += ",\"error\":";
  append_string(buf_, message);
  buf_ += "}\n";
}

void embed_sink::flush() {
  if (!buf_.empty())
    std::fwrite(buf_.data(), 1, buf_.size(), stdout);
  buf_.clear();
  std::fflush(stdout);
}

void embed_sink::finish(double seconds) {
  if (format_ == output_format::legacy) {
    open_legacy();
    buf_ += "],\"metrics\":{\"total\":";
    buf_ += std::to_string(succeeded_ + failed_);
    buf_ += ",\"failed\":";
    buf_ += std::to_string(failed_);
    buf_ += ",\"duration_ms\":";
    char ms[32];
    int n = std::snprintf(ms, sizeof ms, "%.3f", seconds * 1000.0);
    buf_.append(ms, static_cast<size_t>(n));
    buf_ += "},\"embedding_summary\":{\"model\":";
    append_string(buf_, model_);
    buf_ += ",\"dimension\":";
    buf_ += std::to_string(dimension_);
    buf_ += ",\"count\":";
    buf_ += std::to_string(succeeded_);
    buf_ += "}}\n";
  }
  flush();
}

} // namespace embed::cli
