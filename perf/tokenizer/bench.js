#!/usr/bin/env node
// The reference: Rust `tokenizers` through npm @anush008/tokenizers on the same corpus.
// Run with RAYON_NUM_THREADS=1 (run.sh does) so that it is single-threaded like the C++ bench.
// Usage: node bench.js TOKENIZER_JSON CORPUS_JSONL [PASSES]
// Measures both one await per string and encodeBatch over the whole corpus; reports the faster
// one as the reference (the most favourable to it).
'use strict';
const fs = require('fs');
const path = require('path');
const {Tokenizer} = require(path.join(__dirname, '..', '..', 'npm', 'node_modules', '@anush008', 'tokenizers'));

async function main() {
  const [tokPath, corpusPath, passesArg] = process.argv.slice(2);
  const passes = Number(passesArg || 3);
  const texts = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l)
    .map((l) => JSON.parse(l)).filter((o) => typeof o.text === 'string').map((o) => o.text);
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  const tok = Tokenizer.fromFile(tokPath);
  const opts = {addSpecialTokens: true};
  let tokens = 0;
  const single = async () => {
    tokens = 0;
    const t0 = process.hrtime.bigint();
    for (const t of texts) tokens += (await tok.encode(t, null, opts)).getLength();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const batch = async () => {
    const t0 = process.hrtime.bigint();
    const encs = await tok.encodeBatch(texts, opts);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    tokens = encs.reduce((n, e) => n + e.getLength(), 0);
    return s;
  };
  await single(); // warm-up (fills its BPE cache)
  let bestSingle = Infinity, bestBatch = Infinity;
  for (let i = 0; i < passes; i++) bestSingle = Math.min(bestSingle, await single());
  for (let i = 0; i < passes; i++) bestBatch = Math.min(bestBatch, await batch());
  const best = Math.min(bestSingle, bestBatch);
  console.log(JSON.stringify({strings: texts.length, bytes, tokens,
    single_s: bestSingle, batch_s: bestBatch, warm_s: best,
    warm_mb_s: bytes / best / 1e6, warm_tok_s: tokens / best}));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
