#pragma once
// A byte-level BPE tokenizer for Hugging Face tokenizer.json files in the Qwen2/Qwen3 format,
// giving exactly the ids of the Rust `tokenizers` library (checked id for id in
// tests/tokenizer). Supported: added_tokens (special, normalized, lstrip, rstrip, single_word),
// the NFC normalizer, the Qwen Split regex + ByteLevel pre-tokenizer, a BPE model with merges as
// "a b" strings or ["a", "b"] arrays, ByteLevel / TemplateProcessing post-processors, the
// ByteLevel decoder. Anything else in the file is refused with ec::invalid_argument naming the
// field, rather than silently tokenized differently.
//
// Thread safety: a loaded tokenizer is immutable; encode() may run on many threads at once (each
// thread keeps its own bounded word -> ids cache).

#include "messages/error.hpp"
#include "tokenizer/added_tokens.hpp"
#include "tokenizer/bpe.hpp"

#include <caf/expected.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace embed::tok {

enum class truncation_side : uint8_t { right, left };

struct encode_options {
  /// Run the post-processor (the embedding variant appends <|endoftext|>).
  bool add_special_tokens = true;
  /// 0 = no limit. Otherwise the total, tokens added by the post-processor included (HF).
  size_t max_tokens = 0;
  /// Which end loses tokens when max_tokens cuts.
  truncation_side side = truncation_side::right;
};

class tokenizer {
public:
  /// Loads a tokenizer.json; errors name the file and the field.
  static caf::expected<std::shared_ptr<const tokenizer>> from_file(const std::string& path);
  /// Same from the JSON text; origin names it in errors.
  static caf::expected<std::shared_ptr<const tokenizer>> from_json(std::string_view json,
                                                                   const std::string& origin);

  /// Token ids of text. Fails only with ec::invalid_utf8 (naming the byte offset).
  caf::expected<std::vector<uint32_t>> encode(std::string_view text,
                                              const encode_options& options = {}) const;

  /// Text of ids (ByteLevel decoder; invalid UTF-8 becomes U+FFFD; unknown ids are skipped).
  std::string decode(const std::vector<uint32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<uint32_t> token_to_id(std::string_view token) const;
  /// The token string of an id (added tokens included), or nullopt.
  std::optional<std::string> id_to_token(uint32_t id) const;

  /// Number of distinct tokens, added tokens included (HF get_vocab_size(true)).
  size_t vocab_size() const { return vocab_size_; }
  /// Tokens the post-processor adds to a single sequence (1 for Qwen3-Embedding, 0 for Qwen3).
  size_t num_added_by_post_processor() const {
    return single_prefix_.size() + single_suffix_.size();
  }
  /// XXH3-64 of the loaded file content, 16 hex digits: equal hashes mean equal vocabularies.
  const std::string& hash() const { return hash_; }

  tokenizer(const tokenizer&) = delete;
  tokenizer& operator=(const tokenizer&) = delete;
  ~tokenizer();

private:
  friend struct loader;
  tokenizer();

  // Appends the ids of text between added tokens (not yet normalized).
  void encode_segment(std::string_view segment, word_cache& cache,
                      std::vector<uint32_t>& ids) const;
  // Appends the ids of normalized text (pre-tokenize + BPE).
  void encode_normalized(std::string_view text, word_cache& cache,
                         std::vector<uint32_t>& ids) const;
  void encode_word(std::string_view word, word_cache& cache, std::vector<uint32_t>& ids) const;

  // Model.
  std::unordered_map<std::string, uint32_t> vocab_; // model vocabulary, byte-level strings
  std::vector<std::string> id_to_token_;            // model and added tokens
  std::vector<std::string> id_to_bytes_;            // decoded bytes of each id
  std::vector<uint8_t> id_is_special_;
  merge_table merges_;
  std::array<uint32_t, 256> byte_ids_{};
  std::array<bool, 256> byte_known_{};
  bool ignore_merges_ = false;

  // Added tokens.
  std::vector<added_token> added_;
  std::unordered_map<std::string, uint32_t> added_by_content_;
  added_token_matcher raw_matcher_;        // normalized: false, matched on the raw text
  added_token_matcher normalized_matcher_; // normalized: true, matched on NFC text
  bool nfc_ = false;

  // Post-processor (TemplateProcessing "single"): ids before and after the sequence.
  std::vector<uint32_t> single_prefix_;
  std::vector<uint32_t> single_suffix_;

  size_t vocab_size_ = 0;
  std::string hash_;
  uint64_t uid_ = 0; // identifies this instance's per-thread word caches
};

/// Path of a tokenizer.json installed at build time: variant "qwen3" or "qwen3-embedding".
/// The folder is $EMBED_SHARE_DIR/tokenizers/<variant>/ when the variable is set, else the build
/// tree's share/ folder compiled in.
std::string default_tokenizer_path(std::string_view variant);

} // namespace embed::tok
