#pragma once
// The byte-level BPE model: GPT-2 byte map, merge ranks in a flat open-addressing table keyed by
// the pair of ids, and the rank-priority merge loop of Hugging Face's BPE.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embed::tok {

/// GPT-2's reversible map from bytes to printable code points (bytes_to_unicode).
const std::array<uint32_t, 256>& byte_to_code_point();

/// Merge ranks: (left id, right id) -> (rank, merged id). Open addressing, linear probing.
class merge_table {
public:
  struct value {
    uint32_t rank;
    uint32_t id;
  };

  void reserve(size_t n);
  /// A later insert of the same pair overwrites the earlier one, like collecting into a HashMap.
  void insert(uint32_t left, uint32_t right, value v);

  const value* find(uint32_t left, uint32_t right) const {
    uint64_t key = pack(left, right);
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.key == key)
        return &s.v;
      if (s.key == empty_key)
        return nullptr;
    }
  }

  size_t size() const { return size_; }

private:
  static constexpr uint64_t empty_key = ~uint64_t{0};
  struct slot {
    uint64_t key = empty_key;
    value v{0, 0};
  };
  static uint64_t pack(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }
  static size_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  void grow();

  std::vector<slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

/// Applies the merges to the symbols of one word in place: lowest rank first, leftmost among
/// equal ranks, exactly like tokenizers' Word::merge_all without dropout.
void bpe_merge(const merge_table& merges, std::vector<uint32_t>& symbols);

/// Word -> ids cache for one thread and one tokenizer; bounded, cleared when full.
class word_cache {
public:
  explicit word_cache(size_t max_entries = 1u << 15);
  /// Appends the cached ids of word to out and returns true, or returns false.
  bool lookup(uint64_t hash, std::string_view word, std::vector<uint32_t>& out) const;
  void insert(uint64_t hash, std::string_view word, const uint32_t* ids, size_t n);

private:
  struct slot {
    uint64_t hash = 0; // 0: empty (hashes are forced non-zero)
    uint32_t key_off = 0, key_len = 0, val_off = 0, val_len = 0;
  };
  void clear();

  std::vector<slot> slots_;
  size_t mask_;
  size_t max_entries_;
  size_t entries_ = 0;
  std::string keys_;
  std::vector<uint32_t> vals_;
};

} // namespace embed::tok
