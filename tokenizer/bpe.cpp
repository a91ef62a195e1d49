#include "tokenizer/bpe.hpp"

#include <cstring>
#include <limits>
#include <queue>

namespace embed::tok {

const std::array<uint32_t, 256>& byte_to_code_point() {
  static const std::array<uint32_t, 256> map = [] {
    std::array<uint32_t, 256> m{};
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      m[b] = printable ? b : 256 + n++;
    }
    return m;
  }();
  return map;
}

void merge_table::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n)
    cap <<= 1;
  if (cap <= slots_.size())
    return;
  std::vector<slot> old = std::move(slots_);
  slots_.assign(cap, slot{});
  mask_ = cap - 1;
  size_ = 0;
  for (const slot& s : old)
    if (s.key != empty_key)
      insert(static_cast<uint32_t>(s.key >> 32), static_cast<uint32_t>(s.key), s.v);
}

void merge_table::grow() {
  reserve(slots_.empty() ? 8 : slots_.size());
}

void merge_table::insert(uint32_t left, uint32_t right, value v) {
  if (2 * (size_ + 1) > slots_.size())
    grow();
  uint64_t key = pack(left, right);
  for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
    slot& s = slots_[i];
    if (s.key == key) {
      s.v = v;
      return;
    }
    if (s.key == empty_key) {
      s.key = key;
      s.v = v;
      ++size_;
      return;
    }
  }
}

namespace {

constexpr uint32_t no_rank = std::numeric_limits<uint32_t>::max();

// Quadratic but cache-friendly: words are mostly a handful of symbols.
void merge_small(const merge_table& merges, std::vector<uint32_t>& sym) {
  // ranks[i]: rank of the pair (sym[i], sym[i+1]).
  uint32_t ranks[64];
  uint32_t ids[64];
  size_t n = sym.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    const merge_table::value* v = merges.find(sym[i], sym[i + 1]);
    ranks[i] = v ? v->rank : no_rank;
    ids[i] = v ? v->id : 0;
  }
  while (n > 1) {
    size_t best = 0;
    uint32_t best_rank = no_rank;
    for (size_t i = 0; i + 1 < n; ++i)
      if (ranks[i] < best_rank) {
        best_rank = ranks[i];
        best = i;
      }
    if (best_rank == no_rank)
      break;
    sym[best] = ids[best];
    for (size_t i = best + 1; i + 1 < n; ++i)
      sym[i] = sym[i + 1];
    for (size_t i = best + 1; i + 2 < n; ++i) {
      ranks[i] = ranks[i + 1];
      ids[i] = ids[i + 1];
    }
    --n;
    auto update = [&](size_t i) {
      const merge_table::value* v = merges.find(sym[i], sym[i + 1]);
      ranks[i] = v ? v->rank : no_rank;
      ids[i] = v ? v->id : 0;
    };
    if (best > 0)
      update(best - 1);
    if (best + 1 < n)
      update(best);
  }
  sym.resize(n);
}

// Linked symbols and a heap of candidate merges, as in tokenizers' Word::merge_all: O(n log n) for
// the rare long word (a long run of one letter or of spaces).
void merge_large(const merge_table& merges, std::vector<uint32_t>& sym) {
  struct candidate {
    uint32_t rank;
    uint32_t pos;
    uint32_t id;
    bool operator>(const candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  size_t n = sym.size();
  std::vector<int32_t> prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  std::priority_queue<candidate, std::vector<candidate>, std::greater<candidate>> queue;
  for (size_t i = 0; i + 1 < n; ++i)
    if (const merge_table::value* v = merges.find(sym[i], sym[i + 1]))
      queue.push({v->rank, static_cast<uint32_t>(i), v->id});
  while (!queue.empty()) {
    candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0)
      continue;
    auto right = static_cast<size_t>(next[top.pos]);
    const merge_table::value* v = merges.find(sym[top.pos], sym[right]);
    if (!v || v->id != top.id)
      continue; // stale: one of the two symbols changed since it was queued
    sym[top.pos] = top.id;
    alive[right] = 0;
    next[top.pos] = next[right];
    if (next[right] >= 0)
      prev[static_cast<size_t>(next[right])] = static_cast<int32_t>(top.pos);
    if (prev[top.pos] >= 0) {
      auto p = static_cast<size_t>(prev[top.pos]);
      if (const merge_table::value* pv = merges.find(sym[p], sym[top.pos]))
        queue.push({pv->rank, static_cast<uint32_t>(p), pv->id});
    }
    if (next[top.pos] >= 0) {
      auto q = static_cast<size_t>(next[top.pos]);
      if (const merge_table::value* nv = merges.find(sym[top.pos], sym[q]))
        queue.push({nv->rank, top.pos, nv->id});
    }
  }
  size_t out = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i])
      sym[out++] = sym[i];
  sym.resize(out);
}

} // namespace

void bpe_merge(const merge_table& merges, std::vector<uint32_t>& symbols) {
  if (symbols.size() < 2)
    return;
  if (symbols.size() <= 64)
    merge_small(merges, symbols);
  else
    merge_large(merges, symbols);
}

word_cache::word_cache(size_t max_entries) : max_entries_(max_entries) {
  size_t cap = 16;
  while (cap < 2 * max_entries)
    cap <<= 1;
  slots_.assign(cap, slot{});
  mask_ = cap - 1;
}

void word_cache::clear() {
  std::fill(slots_.begin(), slots_.end(), slot{});
  entries_ = 0;
  keys_.clear();
  vals_.clear();
}

bool word_cache::lookup(uint64_t hash, std::string_view word, std::vector<uint32_t>& out) const {
  hash |= 1;
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const slot& s = slots_[i];
    if (s.hash == 0)
      return false;
    if (s.hash == hash && s.key_len == word.size() &&
        std::memcmp(keys_.data() + s.key_off, word.data(), word.size()) == 0) {
      out.insert(out.end(), vals_.begin() + s.val_off, vals_.begin() + s.val_off + s.val_len);
      return true;
    }
  }
}

void word_cache::insert(uint64_t hash, std::string_view word, const uint32_t* ids, size_t n) {
  // Bounded: starting over is cheaper than LRU bookkeeping, and hot words come back at once.
  if (entries_ >= max_entries_ || keys_.size() + word.size() > (64u << 20))
    clear();
  hash |= 1;
  size_t i = hash & mask_;
  while (slots_[i].hash != 0)
    i = (i + 1) & mask_;
  slot& s = slots_[i];
  s.hash = hash;
  s.key_off = static_cast<uint32_t>(keys_.size());
  s.key_len = static_cast<uint32_t>(word.size());
  s.val_off = static_cast<uint32_t>(vals_.size());
  s.val_len = static_cast<uint32_t>(n);
  keys_.append(word);
  vals_.insert(vals_.end(), ids, ids + n);
  ++entries_;
}

} // namespace embed::tok
