#!/usr/bin/env bash
# Single-thread tokenizer throughput: the C++ tokenizer against Rust `tokenizers` (npm) on the
# parity corpus, in the same run. Builds nothing: build tokenizer_bench first
# (ninja -C BUILD tokenizer_bench); the corpus is made by ctest -L unit, or here if missing.
#   perf/tokenizer/run.sh [BUILD_DIR] [VARIANT]     (defaults: build, qwen3-embedding)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
variant=${2:-qwen3-embedding}
tok=$build/share/tokenizers/$variant/tokenizer.json
corpus=$build/tests/tokenizer/corpus.jsonl
bench=$build/bin/tokenizer_bench
[[ -x $bench ]] || { echo "run.sh: $bench missing (ninja -C $build tokenizer_bench)" >&2; exit 1; }
[[ -f $tok ]] || { echo "run.sh: $tok missing (build embed_tokenizer_data)" >&2; exit 1; }
if [[ ! -f $corpus ]]; then
  node "$root/tests/tokenizer/make_corpus.js" "$build/share/tokenizers/qwen3/tokenizer.json" \
    "$build/share/tokenizers/qwen3-embedding/tokenizer.json" "$corpus" >&2
fi

cpp=$("$bench" "$tok" "$corpus" 5)
ref=$(RAYON_NUM_THREADS=1 node "$root/perf/tokenizer/bench.js" "$tok" "$corpus" 3)
node -e '
const c = JSON.parse(process.argv[1]), r = JSON.parse(process.argv[2]);
const row = (name, mb, tok) => console.log(name.padEnd(34) + mb.toFixed(2).padStart(10) + tok.toFixed(0).padStart(14));
console.log(`corpus: ${c.strings} strings, ${(c.bytes / 1e6).toFixed(2)} MB, ${c.tokens} tokens (variant '"$variant"')`);
console.log("".padEnd(34) + "MB/s".padStart(10) + "tokens/s".padStart(14));
row("C++ embed::tok (warm cache)", c.warm_mb_s, c.warm_tok_s);
row("C++ embed::tok (first pass, cold)", c.cold_mb_s, c.cold_tok_s);
row("Rust tokenizers (npm, 1 thread)", r.warm_mb_s, r.warm_tok_s);
console.log(`ratio warm: ${(c.warm_mb_s / r.warm_mb_s).toFixed(1)}x   cold: ${(c.cold_mb_s / r.warm_mb_s).toFixed(1)}x` +
  `   (reference best of per-string ${(c.bytes / r.single_s / 1e6).toFixed(2)} MB/s, batch ${(c.bytes / r.batch_s / 1e6).toFixed(2)} MB/s)`);
if (c.tokens !== r.tokens) console.log(`WARNING: token counts differ: C++ ${c.tokens}, reference ${r.tokens}`);
console.log(`C++ load time: ${c.load_s.toFixed(3)} s`);
' "$cpp" "$ref"
