#include "cmd/embedctl/input_lines.hpp"

#include "tokenizer/unicode.hpp"

#include <boost/json/parse.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace embed::cli {

namespace {

namespace json = boost::json;

constexpr size_t read_chunk = 1 << 16;

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

} // namespace

void parse_record(std::string_view line, bool plain, input_record& rec) {
  // Checked on the raw line so that the offset points into what the user wrote.
  size_t bad = tok::unicode::find_invalid_utf8(line);
  if (bad != std::string_view::npos) {
    rec.error = "invalid UTF-8 at byte " + std::to_string(bad);
    return;
  }
  if (plain) {
    rec.text.assign(line);
    return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec) {
    rec.error = "bad JSON: " + ec.message();
    return;
  }
  const json::object* o = v.if_object();
  if (!o) {
    rec.error = "expected a JSON object with a string field \"text\" or \"input\"";
    return;
  }
  if (const json::value* id = o->if_contains("id"))
    rec.id = *id;
  const json::value* text = o->if_contains("text");
  if (!text)
    text = o->if_contains("input");
  if (!text || !text->is_string()) {
    rec.error = "expected a string field \"text\" or \"input\"";
    return;
  }
  rec.text.assign(text->get_string().data(), text->get_string().size());
}

line_source::line_source(const std::string& path) {
  if (path == "-") {
    fd_ = STDIN_FILENO;
    return;
  }
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0)
    error_ = path + ": " + std::strerror(errno);
  else
    owns_fd_ = true;
}

line_source::~line_source() {
  if (owns_fd_)
    ::close(fd_);
}

bool line_source::read_line(std::string& line) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos) {
      line.assign(buf_, pos_, nl - pos_);
      pos_ = nl + 1;
      break;
    }
    if (eof_) {
      if (pos_ >= buf_.size())
        return false;
      line.assign(buf_, pos_, std::string::npos); // last line without a newline
      pos_ = buf_.size();
      break;
    }
    buf_.erase(0, pos_);
    pos_ = 0;
    size_t old = buf_.size();
    buf_.resize(old + read_chunk);
    ssize_t n;
    do
      n = ::read(fd_, buf_.data() + old, read_chunk);
    while (n < 0 && errno == EINTR);
    buf_.resize(old + static_cast<size_t>(n > 0 ? n : 0));
    if (n <= 0)
      eof_ = true; // a read error ends the input like EOF; what was read is still used
  }
  if (!line.empty() && line.back() == '\r')
    line.pop_back(); // CRLF input files
  ++line_;
  return true;
}

std::optional<input_record> line_source::next(bool plain) {
  if (fd_ < 0)
    return std::nullopt;
  std::string line;
  while (read_line(line)) {
    if (is_blank(line))
      continue;
    input_record rec;
    rec.line = line_;
    rec.index = records_++;
    parse_record(line, plain, rec);
    return rec;
  }
  return std::nullopt;
}

std::optional<size_t> line_source::count_records() const {
  struct stat st;
  if (fd_ < 0 || ::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode))
    return std::nullopt;
  off_t at = ::lseek(fd_, 0, SEEK_CUR);
  if (at < 0)
    return std::nullopt;
  // pread leaves the file position alone: the real reading has not started or is buffered.
  size_t count = 0;
  bool blank = true;
  std::string chunk(read_chunk, '\0');
  for (off_t off = at;;) {
    ssize_t n = ::pread(fd_, chunk.data(), chunk.size(), off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; ++i) {
      char c = chunk[static_cast<size_t>(i)];
      if (c == '\n') {
        count += blank ? 0 : 1;
        blank = true;
      } else if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') {
        blank = false;
      }
    }
    off += n;
  }
  count += blank ? 0 : 1;
  return count;
}

bool stdin_is_terminal() {
  return ::isatty(STDIN_FILENO) == 1;
}

} // namespace embed::cli
