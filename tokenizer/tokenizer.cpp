#include "tokenizer/tokenizer.hpp"

#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#include <boost/json.hpp>
#include <xxhash.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace embed::tok {

namespace json = boost::json;

const std::string_view qwen_split_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

std::atomic<uint64_t> next_uid{1};

// Each thread keeps one bounded cache per tokenizer it used recently; a few suffice (gateway and
// tests hold one or two tokenizers), older ones are dropped.
constexpr size_t caches_per_thread = 4;
// Longer words are rare and would crowd the cache out.
constexpr size_t max_cached_word = 128;

word_cache& thread_cache(uint64_t uid) {
  struct entry {
    uint64_t uid;
    std::unique_ptr<word_cache> cache;
  };
  thread_local std::vector<entry> caches;
  for (auto& e : caches)
    if (e.uid == uid)
      return *e.cache;
  if (caches.size() >= caches_per_thread)
    caches.erase(caches.begin());
  caches.push_back({uid, std::make_unique<word_cache>()});
  return *caches.back().cache;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ByteLevel decoding of one token: each char back to its byte, or the raw text when a char is not
// in the byte map (as tokenizers' ByteLevel decoder does).
std::string token_bytes(std::string_view token) {
  static const std::unordered_map<uint32_t, char> inverse = [] {
    std::unordered_map<uint32_t, char> m;
    const auto& fwd = byte_to_code_point();
    for (uint32_t b = 0; b < 256; ++b)
      m.emplace(fwd[b], static_cast<char>(b));
    return m;
  }();
  if (unicode::find_invalid_utf8(token) != std::string_view::npos)
    return std::string(token);
  std::string out;
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    size_t len;
    uint32_t cp = unicode::decode(s + i, len);
    auto it = inverse.find(cp);
    if (it == inverse.end())
      return std::string(token);
    out += it->second;
    i += len;
  }
  return out;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

} // namespace

// Reads a tokenizer.json into a tokenizer; every refusal names the file and the field.
struct loader {
  const std::string& origin;
  tokenizer& t;
  // Ids index dense tables (id -> token, bytes, special): an id far past the number of tokens in
  // the file would make a few bytes of JSON allocate gigabytes. Holes are allowed, up to this many.
  static constexpr int64_t max_id_holes = 1 << 16;
  int64_t id_limit = max_id_holes; // exclusive; set by load() from the number of entries

  caf::error bad(const std::string& field, const std::string& what) const {
    return make_error(ec::invalid_argument,
                      "tokenizer file " + origin + ": field '" + field + "': " + what);
  }

  static std::string type_of(const json::value& v) {
    if (const auto* o = v.if_object())
      if (const auto* t = o->if_contains("type"))
        if (const auto* s = t->if_string())
          return std::string(*s);
    return {};
  }

  static bool flag(const json::object& o, const char* key, bool fallback) {
    const json::value* v = o.if_contains(key);
    return v && v->is_bool() ? v->get_bool() : fallback;
  }

  caf::error load_model(const json::value& v) {
    const json::object* m = v.if_object();
    if (!m)
      return bad("model", "missing or not an object");
    std::string type = type_of(v);
    if (!type.empty() && type != "BPE")
      return bad("model.type", "'" + type + "' is not supported (only BPE)");
    if (const auto* d = m->if_contains("dropout"); d && !d->is_null()) {
      if (!d->is_number())
        return bad("model.dropout", "not a number");
      if (d->to_number<double>() > 0)
        return bad("model.dropout", "BPE dropout is not supported");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (const auto* x = m->if_contains(key);
          x && !x->is_null() && !(x->is_string() && x->get_string().empty()))
        return bad(std::string("model.") + key, "not supported by a byte-level BPE");
    t.ignore_merges_ = flag(*m, "ignore_merges", false);

    const json::value* vocab = m->if_contains("vocab");
    if (!vocab || !vocab->is_object())
      return bad("model.vocab", "missing or not an object");
    t.vocab_.reserve(vocab->get_object().size());
    for (const auto& kv : vocab->get_object()) {
      if (!kv.value().is_int64() || kv.value().get_int64() < 0 ||
          kv.value().get_int64() > INT32_MAX)
        return bad("model.vocab", "id of '" + std::string(kv.key()) + "' is not a valid id");
      if (kv.value().get_int64() >= id_limit)
        return bad("model.vocab", "id " + std::to_string(kv.value().get_int64()) + " of '" +
                                      std::string(kv.key()) + "' leaves too many unused ids");
      auto id = static_cast<uint32_t>(kv.value().get_int64());
      t.vocab_[std::string(kv.key())] = id;
      if (id >= t.id_to_token_.size())
        t.id_to_token_.resize(id + 1);
      t.id_to_token_[id] = std::string(kv.key());
    }

    const json::value* merges = m->if_contains("merges");
    if (!merges || !merges->is_array())
      return bad("model.merges", "missing or not an array");
    const json::array& arr = merges->get_array();
    t.merges_.reserve(arr.size());
    std::string left, right;
    for (size_t rank = 0; rank < arr.size(); ++rank) {
      const json::value& e = arr[rank];
      if (const auto* s = e.if_string()) {
        std::string_view sv(*s);
        size_t sp = sv.find(' ');
        if (sp == std::string_view::npos || sv.find(' ', sp + 1) != std::string_view::npos)
          return bad("model.merges", "entry " + std::to_string(rank) + " is not \"a b\"");
        left.assign(sv.substr(0, sp));
        right.assign(sv.substr(sp + 1));
      } else if (const auto* a = e.if_array();
                 a && a->size() == 2 && (*a)[0].is_string() && (*a)[1].is_string()) {
        left.assign((*a)[0].get_string());
        right.assign((*a)[1].get_string());
      } else {
        return bad("model.merges",
                   "entry " + std::to_string(rank) + " is neither \"a b\" nor [a, b]");
      }
      auto l = t.vocab_.find(left), r = t.vocab_.find(right), lr = t.vocab_.find(left + right);
      if (l == t.vocab_.end() || r == t.vocab_.end() || lr == t.vocab_.end())
        return bad("model.merges", "entry " + std::to_string(rank) + " ('" + left + "', '" + right +
                                       "') uses a token missing from the vocabulary");
      t.merges_.insert(l->second, r->second,
                       merge_table::value{static_cast<uint32_t>(rank), lr->second});
    }

    const auto& bytes = byte_to_code_point();
    for (size_t b = 0; b < 256; ++b) {
      std::string ch;
      append_utf8(ch, bytes[b]);
      auto it = t.vocab_.find(ch);
      t.byte_known_[b] = it != t.vocab_.end();
      t.byte_ids_[b] = t.byte_known_[b] ? it->second : 0;
    }
    return {};
  }

  caf::error load_added(const json::value* v) {
    if (!v || v->is_null())
      return {};
    if (!v->is_array())
      return bad("added_tokens", "not an array");
    for (const auto& e : v->get_array()) {
      const json::object* o = e.if_object();
      const json::value* id = o ? o->if_contains("id") : nullptr;
      const json::value* content = o ? o->if_contains("content") : nullptr;
      if (!id || !id->is_int64() || id->get_int64() < 0 || id->get_int64() > INT32_MAX ||
          !content || !content->is_string())
        return bad("added_tokens", "an entry lacks a valid 'id' or 'content'");
      if (id->get_int64() >= id_limit)
        return bad("added_tokens",
                   "id " + std::to_string(id->get_int64()) + " leaves too many unused ids");
      added_token a;
      a.id = static_cast<uint32_t>(id->get_int64());
      a.content = std::string(content->get_string());
      a.single_word = flag(*o, "single_word", false);
      a.lstrip = flag(*o, "lstrip", false);
      a.rstrip = flag(*o, "rstrip", false);
      a.special = flag(*o, "special", false);
      a.normalized = flag(*o, "normalized", !a.special);
      t.added_.push_back(std::move(a));
    }
    return {};
  }

  caf::error load_normalizer(const json::value* v, const std::string& field) {
    if (!v || v->is_null())
      return {};
    std::string type = type_of(*v);
    if (type == "NFC") {
      t.nfc_ = true;
      return {};
    }
    if (type == "Sequence") {
      const json::value* list = v->get_object().if_contains("normalizers");
      if (!list || !list->is_array())
        return bad(field + ".normalizers", "missing or not an array");
      for (const auto& n : list->get_array())
        if (auto err = load_normalizer(&n, field + ".normalizers[]"))
          return err;
      return {};
    }
    return bad(field, "normalizer '" + type + "' is not supported (only NFC)");
  }

  caf::error load_pre_tokenizer(const json::value* v) {
    const char* field = "pre_tokenizer";
    if (!v || type_of(*v) != "Sequence")
      return bad(field, "must be the Qwen2/Qwen3 Sequence [Split, ByteLevel]");
    const json::value* list = v->get_object().if_contains("pretokenizers");
    if (!list || !list->is_array() || list->get_array().size() != 2)
      return bad("pre_tokenizer.pretokenizers", "must be [Split, ByteLevel]");
    const json::value& split = list->get_array()[0];
    const json::value& byte_level = list->get_array()[1];
    if (type_of(split) != "Split")
      return bad("pre_tokenizer.pretokenizers[0]", "must be Split");
    const json::object& so = split.get_object();
    const json::value* pattern = so.if_contains("pattern");
    const json::value* regex =
        pattern && pattern->is_object() ? pattern->get_object().if_contains("Regex") : nullptr;
    if (!regex || !regex->is_string() ||
        std::string_view(regex->get_string()) != qwen_split_pattern)
      return bad("pre_tokenizer.pretokenizers[0].pattern",
                 "only the Qwen2/Qwen3 split regex is supported");
    const json::value* behavior = so.if_contains("behavior");
    if (!behavior || !behavior->is_string() || behavior->get_string() != "Isolated" ||
        flag(so, "invert", false))
      return bad("pre_tokenizer.pretokenizers[0].behavior", "must be Isolated, not inverted");
    if (type_of(byte_level) != "ByteLevel" ||
        flag(byte_level.get_object(), "add_prefix_space", true) ||
        flag(byte_level.get_object(), "use_regex", true))
      return bad("pre_tokenizer.pretokenizers[1]",
                 "must be ByteLevel without prefix space and without its own regex");
    return {};
  }

  caf::error load_template(const json::value& v) {
    const json::object& o = v.get_object();
    const json::value* single = o.if_contains("single");
    if (!single || !single->is_array())
      return bad("post_processor.single", "missing or not an array");
    const json::value* specials = o.if_contains("special_tokens");
    bool seen_sequence = false;
    for (const auto& piece : single->get_array()) {
      const json::object* po = piece.if_object();
      if (po && po->if_contains("Sequence")) {
        if (seen_sequence)
          return bad("post_processor.single", "more than one Sequence");
        seen_sequence = true;
        continue;
      }
      const json::value* st = po ? po->if_contains("SpecialToken") : nullptr;
      const json::value* name =
          st && st->is_object() ? st->get_object().if_contains("id") : nullptr;
      if (!name || !name->is_string())
        return bad("post_processor.single", "an entry is neither Sequence nor SpecialToken");
      const json::value* def = specials && specials->is_object()
                                   ? specials->get_object().if_contains(name->get_string())
                                   : nullptr;
      const json::value* ids =
          def && def->is_object() ? def->get_object().if_contains("ids") : nullptr;
      if (!ids || !ids->is_array())
        return bad("post_processor.special_tokens",
                   "no ids for '" + std::string(name->get_string()) + "'");
      auto& target = seen_sequence ? t.single_suffix_ : t.single_prefix_;
      for (const auto& id : ids->get_array()) {
        if (!id.is_int64() || id.get_int64() < 0 || id.get_int64() > INT32_MAX)
          return bad("post_processor.special_tokens", "invalid id");
        target.push_back(static_cast<uint32_t>(id.get_int64()));
      }
    }
    if (!seen_sequence)
      return bad("post_processor.single", "no Sequence");
    return {};
  }

  caf::error load_post_processor(const json::value* v, const std::string& field) {
    if (!v || v->is_null())
      return {};
    std::string type = type_of(*v);
    if (type == "ByteLevel")
      return {}; // only adjusts offsets
    if (type == "TemplateProcessing")
      return load_template(*v);
    if (type == "Sequence") {
      const json::value* list = v->get_object().if_contains("processors");
      if (!list || !list->is_array())
        return bad(field + ".processors", "missing or not an array");
      for (const auto& p : list->get_array())
        if (auto err = load_post_processor(&p, field + ".processors[]"))
          return err;
      return {};
    }
    return bad(field, "post-processor '" + type + "' is not supported");
  }

  caf::error load_decoder(const json::value* v) {
    if (!v || v->is_null() || type_of(*v) == "ByteLevel")
      return {};
    return bad("decoder", "decoder '" + type_of(*v) + "' is not supported (only ByteLevel)");
  }

  // Derived tables: id -> token and bytes, the two matchers, the vocabulary size.
  caf::error finish() {
    for (const auto& a : t.added_) {
      if (a.id >= t.id_to_token_.size())
        t.id_to_token_.resize(a.id + 1);
      t.id_to_token_[a.id] = a.content;
      t.added_by_content_.emplace(a.content, a.id);
    }
    t.id_is_special_.assign(t.id_to_token_.size(), 0);
    for (const auto& a : t.added_)
      if (a.special)
        t.id_is_special_[a.id] = 1;
    t.id_to_bytes_.resize(t.id_to_token_.size());
    for (size_t id = 0; id < t.id_to_token_.size(); ++id)
      t.id_to_bytes_[id] = token_bytes(t.id_to_token_[id]);

    std::vector<const added_token*> raw, norm;
    std::vector<std::string> raw_patterns, norm_patterns;
    for (const auto& a : t.added_) {
      if (a.normalized) {
        norm.push_back(&a);
        norm_patterns.push_back(t.nfc_ ? unicode::nfc(a.content) : a.content);
      } else {
        raw.push_back(&a);
        raw_patterns.push_back(a.content);
      }
    }
    t.raw_matcher_.build(raw, std::move(raw_patterns));
    t.normalized_matcher_.build(norm, std::move(norm_patterns));

    size_t extra = 0;
    for (const auto& [content, id] : t.added_by_content_)
      if (t.vocab_.find(content) == t.vocab_.end())
        ++extra;
    t.vocab_size_ = t.vocab_.size() + extra;
    for (uint32_t id : t.single_prefix_)
      if (id >= t.id_to_token_.size())
        return bad("post_processor.special_tokens", "id " + std::to_string(id) + " is unknown");
    for (uint32_t id : t.single_suffix_)
      if (id >= t.id_to_token_.size())
        return bad("post_processor.special_tokens", "id " + std::to_string(id) + " is unknown");
    return {};
  }

  caf::error load(std::string_view text) {
    json::monotonic_resource mr;
    boost::system::error_code jec;
    json::value root = json::parse(text, jec, &mr);
    if (jec)
      return make_error(ec::invalid_argument,
                        "tokenizer file " + origin + ": not valid JSON: " + jec.message());
    const json::object* o = root.if_object();
    if (!o)
      return make_error(ec::invalid_argument, "tokenizer file " + origin + ": not a JSON object");
    const json::value* model = o->if_contains("model");
    if (const json::value* v = model && model->is_object() ? model->get_object().if_contains("vocab")
                                                           : nullptr;
        v && v->is_object())
      id_limit += static_cast<int64_t>(v->get_object().size());
    if (const json::value* a = o->if_contains("added_tokens"); a && a->is_array())
      id_limit += static_cast<int64_t>(a->get_array().size());
    if (auto err = load_model(o->contains("model") ? o->at("model") : json::value()))
      return err;
    if (auto err = load_added(o->if_contains("added_tokens")))
      return err;
    if (auto err = load_normalizer(o->if_contains("normalizer"), "normalizer"))
      return err;
    if (auto err = load_pre_tokenizer(o->if_contains("pre_tokenizer")))
      return err;
    if (auto err = load_post_processor(o->if_contains("post_processor"), "post_processor"))
      return err;
    if (auto err = load_decoder(o->if_contains("decoder")))
      return err;
    return finish();
  }
};

tokenizer::tokenizer() : uid_(next_uid.fetch_add(1)) {}
tokenizer::~tokenizer() = default;

caf::expected<std::shared_ptr<const tokenizer>> tokenizer::from_json(std::string_view json_text,
                                                                     const std::string& origin) {
  // Built here rather than on the first non-ASCII text, so that no request pays for it.
  (void)unicode::table();
  std::shared_ptr<tokenizer> t(new tokenizer());
  loader l{origin, *t};
  if (auto err = l.load(json_text))
    return err;
  t->hash_ = hex64(XXH3_64bits(json_text.data(), json_text.size()));
  return std::shared_ptr<const tokenizer>(std::move(t));
}

caf::expected<std::shared_ptr<const tokenizer>> tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(ec::invalid_argument, "cannot read tokenizer file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

void tokenizer::encode_word(std::string_view word, word_cache& cache,
                            std::vector<uint32_t>& ids) const {
  if (word.size() == 1 && byte_known_[static_cast<unsigned char>(word[0])]) {
    ids.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  uint64_t h = 0;
  bool cacheable = word.size() <= max_cached_word;
  if (cacheable) {
    h = XXH3_64bits(word.data(), word.size());
    if (cache.lookup(h, word, ids))
      return;
  }
  thread_local std::vector<uint32_t> symbols;
  symbols.clear();
  bool whole = false;
  if (ignore_merges_) {
    std::string mapped;
    for (unsigned char b : word)
      append_utf8(mapped, byte_to_code_point()[b]);
    if (auto it = vocab_.find(mapped); it != vocab_.end()) {
      symbols.push_back(it->second);
      whole = true;
    }
  }
  if (!whole) {
    // Bytes missing from the vocabulary are dropped, as BPE without unk_token does.
    for (unsigned char b : word)
      if (byte_known_[b])
        symbols.push_back(byte_ids_[b]);
    bpe_merge(merges_, symbols);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
  if (cacheable)
    cache.insert(h, word, symbols.data(), symbols.size());
}

void tokenizer::encode_normalized(std::string_view text, word_cache& cache,
                                  std::vector<uint32_t>& ids) const {
  qwen_split(text, [&](std::string_view piece) { encode_word(piece, cache, ids); });
}

void tokenizer::encode_segment(std::string_view segment, word_cache& cache,
                               std::vector<uint32_t>& ids) const {
  std::string normalized;
  if (nfc_ && !unicode::is_ascii(segment) && unicode::may_need_nfc(segment)) {
    normalized = unicode::nfc(segment);
    segment = normalized;
  }
  if (normalized_matcher_.empty()) {
    encode_normalized(segment, cache, ids);
    return;
  }
  std::vector<added_split> splits;
  normalized_matcher_.split(segment, splits);
  for (const auto& s : splits) {
    if (s.is_token)
      ids.push_back(s.id);
    else
      encode_normalized(segment.substr(s.begin, s.end - s.begin), cache, ids);
  }
}

caf::expected<std::vector<uint32_t>> tokenizer::encode(std::string_view text,
                                                       const encode_options& options) const {
  size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    return make_error(ec::invalid_utf8, "invalid UTF-8 at byte " + std::to_string(bad));
  word_cache& cache = thread_cache(uid_);
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (raw_matcher_.empty()) {
    encode_segment(text, cache, ids);
  } else {
    thread_local std::vector<added_split> splits;
    splits.clear();
    raw_matcher_.split(text, splits);
    for (const auto& s : splits) {
      if (s.is_token)
        ids.push_back(s.id);
      else
        encode_segment(text.substr(s.begin, s.end - s.begin), cache, ids);
    }
  }

  // HF truncates before post-processing, keeping room for the tokens the post-processor adds.
  size_t added = options.add_special_tokens ? num_added_by_post_processor() : 0;
  if (options.max_tokens > 0) {
    size_t limit = options.max_tokens > added ? options.max_tokens - added : 0;
    if (ids.size() > limit) {
      if (options.side == truncation_side::right)
        ids.resize(limit);
      else
        ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(ids.size() - limit));
    }
  }
  if (added > 0) {
    ids.insert(ids.begin(), single_prefix_.begin(), single_prefix_.end());
    ids.insert(ids.end(), single_suffix_.begin(), single_suffix_.end());
  }
  return ids;
}

std::string tokenizer::decode(const std::vector<uint32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (uint32_t id : ids) {
    if (id >= id_to_bytes_.size() || (skip_special_tokens && id_is_special_[id]))
      continue;
    if (id_to_token_[id].empty() && vocab_.find("") == vocab_.end())
      continue; // a hole in the id space
    bytes += id_to_bytes_[id];
  }
  return unicode::utf8_lossy(bytes);
}

std::optional<uint32_t> tokenizer::token_to_id(std::string_view token) const {
  std::string key(token);
  if (auto it = added_by_content_.find(key); it != added_by_content_.end())
    return it->second;
  if (auto it = vocab_.find(key); it != vocab_.end())
    return it->second;
  return std::nullopt;
}

std::optional<std::string> tokenizer::id_to_token(uint32_t id) const {
  if (id >= id_to_token_.size() || id_to_token_[id].empty())
    return std::nullopt;
  return id_to_token_[id];
}

std::string default_tokenizer_path(std::string_view variant) {
  const char* env = std::getenv("EMBED_SHARE_DIR");
  std::string dir = env && *env ? env : EMBED_BUILD_SHARE_DIR;
  return dir + "/tokenizers/" + std::string(variant) + "/tokenizer.json";
}

} // namespace embed::tok
