#!/usr/bin/env node
// Writes the Qwen3-Embedding tokenizer.json: the base Qwen3 file with the post-processor of the
// official Qwen3-Embedding tokenizer, which appends <|endoftext|> (id 151643) to every sequence.
// Usage: node make_embedding_variant.js BASE_TOKENIZER_JSON OUT_TOKENIZER_JSON
'use strict';
const fs = require('fs');
const path = require('path');

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: make_embedding_variant.js BASE OUT');
  process.exit(2);
}
const j = JSON.parse(fs.readFileSync(base, 'utf8'));
const eos = '<|endoftext|>';
const eosToken = (j.added_tokens || []).find((t) => t.content === eos);
if (!eosToken) {
  console.error(`${base}: no added token ${eos}`);
  process.exit(1);
}
j.post_processor = {
  type: 'TemplateProcessing',
  single: [{Sequence: {id: 'A', type_id: 0}}, {SpecialToken: {id: eos, type_id: 0}}],
  pair: [
    {Sequence: {id: 'A', type_id: 0}},
    {SpecialToken: {id: eos, type_id: 0}},
    {Sequence: {id: 'B', type_id: 1}},
    {SpecialToken: {id: eos, type_id: 1}},
  ],
  special_tokens: {[eos]: {id: eos, ids: [eosToken.id], tokens: [eos]}},
};
fs.mkdirSync(path.dirname(out), {recursive: true});
// Write to a temporary file first so that an interrupted build never leaves half a file.
fs.writeFileSync(out + '.tmp', JSON.stringify(j));
fs.renameSync(out + '.tmp', out);
