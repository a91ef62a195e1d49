#!/usr/bin/env node
// Builds the tokenizer parity corpus deterministically (real text found on this machine plus
// generated edge cases) and writes, for each string, the ids of the reference Rust `tokenizers`
// (npm @anush008/tokenizers) for both Qwen3 variants, truncated ids and reference decodes.
// Usage: node make_corpus.js BASE_TOKENIZER_JSON EMBEDDING_TOKENIZER_JSON OUT_JSONL
// Output: one JSON object per line (see the fields written in main() below).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const npmRoot = path.join(__dirname, '..', '..', 'npm', 'node_modules');
const {Tokenizer} = require(path.join(npmRoot, '@anush008', 'tokenizers'));

// ---- deterministic helpers -------------------------------------------------------------------
function mulberry32(seed) {
  return function () {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(20240611);
const pick = (a) => a[Math.floor(rand() * a.length)];
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

function listFiles(dir, filter) {
  try {
    return fs.readdirSync(dir).sort().filter(filter).map((f) => path.join(dir, f));
  } catch (e) {
    return [];
  }
}
function readText(p) {
  try {
    const buf = fs.readFileSync(p);
    return (p.endsWith('.gz') ? zlib.gunzipSync(buf) : buf).toString('utf8');
  } catch (e) {
    return '';
  }
}
// Every n-th element, so that a fixed number is taken spread over the whole list.
function spread(list, n) {
  if (list.length <= n) return list;
  const out = [];
  for (let i = 0; i < n; i++) out.push(list[Math.floor((i * list.length) / n)]);
  return out;
}
function paragraphs(text) {
  return text.split(/\n\s*\n/).filter((p) => p.trim().length > 0);
}
function chunks(text, linesPer) {
  const lines = text.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i += linesPer) out.push(lines.slice(i, i + linesPer).join('\n'));
  return out.filter((c) => c.trim().length > 0);
}
const maxLen = 4000;
const clip = (s) => (s.length > maxLen ? s.slice(0, maxLen) : s);

// ---- real text -------------------------------------------------------------------------------
function realText() {
  const out = [];
  const add = (list, limit) => {
    for (const s of list.slice(0, limit)) out.push(clip(s));
  };
  for (const f of listFiles('/usr/share/common-licenses', () => true))
    add(paragraphs(readText(f)), 60);
  for (const f of spread(listFiles('/usr/share/doc', () => true), 150)) {
    add(paragraphs(readText(path.join(f, 'copyright'))), 4);
    add(chunks(readText(path.join(f, 'changelog.Debian.gz')), 8), 4);
  }
  for (const f of spread(listFiles('/usr/share/man/man1', (x) => x.endsWith('.gz')), 120))
    add(chunks(readText(f), 12), 6);
  for (const f of spread(listFiles('/usr/include', (x) => x.endsWith('.h')), 80))
    add(chunks(readText(f), 15), 8);
  // A few whole files: long inputs exercise the cache bounds and long pieces.
  for (const f of spread(listFiles('/usr/share/common-licenses', () => true), 4))
    out.push(readText(f).slice(0, 30000));
  return out;
}

// ---- generated edge cases --------------------------------------------------------------------
const scripts = {
  latin: ['Hello, world!', "L'été dernier, nous sommes allés à Paris.", 'Größenwahn über Straße',
    'Tiếng Việt có dấu', 'Ça coûte 15 €.', 'naïve façade coöperate', 'ÆØÅ æøå ß ẞ ŒœĲĳ'],
  cjk: ['我爱自然语言处理。', '今日は良い天気ですね。', 'カタカナとひらがな', '中文，標點符號！',
    '東京タワー３３３メートル', '㈱㍿ｶﾀｶﾅ全角ＡＢＣ１２３'],
  cyrillic: ['Привет, мир!', 'Съешь же ещё этих мягких французских булок', 'Україна їжак ґанок'],
  arabic: ['مرحبا بالعالم', 'اللغة العربية جميلة ١٢٣', 'السَّلَامُ عَلَيْكُمْ'],
  devanagari: ['नमस्ते दुनिया', 'हिन्दी भाषा १२३४', 'क्षत्रिय श्रीमान्'],
  thai: ['สวัสดีชาวโลก', 'ภาษาไทยไม่มีช่องว่าง'],
  hangul: ['안녕하세요 세계', '한국어 텍스트입니다', '\u1100\u1161\u11A8 jamo'],
  greek: ['Καλημέρα κόσμε', 'ΑΒΓΔ αβγδ ά έ'],
  hebrew: ['שלום עולם', 'עִבְרִית'],
  emoji: ['😀😃😄', '👨‍👩‍👧‍👦 family', '👍🏽 thumbs', '🇫🇷🇯🇵 flags', '❤️‍🔥 heart', '🏳️‍🌈',
    '1️⃣ keycap', '🧑🏿‍💻 coder', 'a😀b', '\u200d\u200d'],
  code: ['int main(int argc, char** argv) { return 0; }', 'def f(x):\n\treturn x**2  # square\n',
    'for (auto& [k, v] : m) {\r\n  std::cout << k;\r\n}', 'const re = /\\s+(?!\\S)/g;',
    '<div class="a">&nbsp;</div>', 'SELECT * FROM t WHERE id=42;', '    indented\n        more',
    'x=1;y=2;;;;', '$ ls -la | grep "*.cpp" > /dev/null 2>&1', '{"key": [1, 2.5e-3, null]}'],
  digits: ['1234567890', '3.14159265358979', '1,000,000', '٠١٢٣٤٥٦٧٨٩', '१२३', '²³¹ ½ ⅓ Ⅻ',
    '00000000000000000000', '2024-06-11T12:34:56Z', '0x7fffffff', '１２３４'],
  contractions: ["I'm", "you're", "he's", "we've", "they'll", "I'd", "don't", "IT'S", "WE'LL",
    "They'Re", "she'S", "it'LL", "'s", "'S'", "o'clock", "rock'n'roll", "x'ſa", "l'amour",
    "’s curly", "''double''", "'ve'm'll'd't"],
  specials: ['a<|im_start|>b', ' <|endoftext|> ', '<|endoftext|>', '<|im_start|>user\nhi<|im_end|>',
    '<|endoftext|><|endoftext|>', 'x <|im_end|>\n', '<|endoftext', '<|<|endoftext|>|>',
    '<think>\nreason\n</think>', '<tool_call>{"a":1}</tool_call>', '<|fim_prefix|>def<|fim_suffix|>',
    '<|vision_start|><|image_pad|><|vision_end|>', '< |endoftext| >', '<|ENDOFTEXT|>'],
};
const whitespace = [' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', '\r\n\r\n', '\r', ' \r ',
  '\u00a0', '\u00a0\u00a0', '\u3000', '\u2028', '\u2029', '\u0085', '\u000b', '\u000c', '\u2003',
  '\u202f', '\u205f', '\u1680', ' \n ', '\n \n', '  \t\n', '\u180e', '\u200b', '\ufeff', ' \u00a0 ',
  '\u001c', '\u001f'];
const punct = ['.', ',', '!', '?', '...', '—', '–', '-', '(', ')', '"', '«', '»', '„', '“', '”',
  '、', '。', '；', '/', '\\', '@', '#', '%', '&', '*', '+', '=', '~', '`', '^', '|', '<', '>', '_',
  '$', '€', '£', '¥', '©', '®', '™', '°', '§', '¶'];

// Code point ranges of long-assigned characters (so Unicode versions agree).
const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe5b], [0x1100, 0x11ff],
  [0x1e00, 0x1eff], [0x2000, 0x206f], [0x2070, 0x218f], [0x2190, 0x23ff], [0x2460, 0x24ff],
  [0x3000, 0x30ff], [0x4e00, 0x4fff], [0xac00, 0xad00], [0xfb00, 0xfb4f], [0xff00, 0xffef],
  [0x1f300, 0x1f64f], [0x1d400, 0x1d4ff]];
function randomCodePoints(n) {
  let s = '';
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(ranges);
    s += String.fromCodePoint(randInt(lo, hi));
  }
  return s;
}

function generated() {
  const out = [];
  const all = Object.values(scripts).flat();
  for (const s of all) {
    out.push(s, s.normalize('NFD'), s.normalize('NFKD'), ' ' + s, s + ' ', s.toUpperCase());
  }
  // Every kind of whitespace between, before and after words, and alone.
  for (const w of whitespace) {
    out.push(w, 'a' + w + 'b', w + 'word', 'word' + w, 'x' + w + w + 'y', '1' + w + '2',
      '.' + w + ',', w + '\n' + w, 'end' + w + '\r\n', "it's" + w + "'S");
  }
  // Whitespace runs of every length before letters, digits, punctuation, newlines, the end.
  for (let n = 1; n <= 6; n++)
    for (const w of [' ', '\t', '\u00a0', '\u3000'])
      for (const after of ['a', '1', '.', '\n', '', '\r\n', ' ']) out.push('x' + w.repeat(n) + after);
  // Contractions in every case with every follower.
  for (const c of ['s', 't', 're', 've', 'm', 'll', 'd'])
    for (const v of [c, c.toUpperCase(), c[0].toUpperCase() + c.slice(1), c.length > 1 ? c[0] + c[1].toUpperCase() : c])
      for (const f of ['', 'x', ' ', '1', '.', "'"]) out.push("word'" + v + f, "'" + v + f);
  // Digit runs.
  for (let n = 1; n <= 40; n += 3) out.push('9'.repeat(n), 'a' + '0123456789'.repeat(4).slice(0, n) + 'b');
  // Long words (the heap merge path) and long runs.
  for (const [c, n] of [['a', 70], ['a', 300], ['ab', 100], [' ', 100], ['\n', 80], ['é', 90],
    ['中', 120], ['!', 200], ['😀', 50], ['x\u0301', 60], ['abcdefghij', 20]])
    out.push(c.repeat(n), 'Word ' + c.repeat(n) + ' end');
  // Random mixtures of fragments, separators and punctuation.
  for (let i = 0; i < 1500; i++) {
    let s = '';
    const parts = randInt(1, 12);
    for (let k = 0; k < parts; k++) {
      const r = rand();
      if (r < 0.45) s += pick(pick(Object.values(scripts)));
      else if (r < 0.65) s += pick(whitespace);
      else if (r < 0.8) s += pick(punct);
      else if (r < 0.9) s += randomCodePoints(randInt(1, 8));
      else s += String(randInt(0, 1e6));
      if (rand() < 0.3) s = rand() < 0.5 ? s.normalize('NFD') : s;
    }
    out.push(s);
  }
  // Pure random code points.
  for (let i = 0; i < 300; i++) out.push(randomCodePoints(randInt(1, 40)));
  out.push('', ' ', '\u0000', 'a\u0000b', '\u0301', '\u0301a', 'e\u0301\u0302\u0323', '\u1e9b\u0323',
    '\u212b\u2126', '\uf900\u2f800'.slice(0, 1), 'ﬁ ﬂ', 'İstanbul', 'ǅ ǈ ǋ', 'x\u0345y');
  return out;
}

async function main() {
  const [basePath, embedPath, outPath] = process.argv.slice(2);
  if (!basePath || !embedPath || !outPath) {
    console.error('usage: make_corpus.js BASE EMBED OUT');
    process.exit(2);
  }
  const texts = [...realText(), ...generated()];
  const base = Tokenizer.fromFile(basePath);
  const embed = Tokenizer.fromFile(embedPath);
  const trunc = Tokenizer.fromFile(embedPath);
  const truncBase = Tokenizer.fromFile(basePath);
  const special = {addSpecialTokens: true};
  const lines = [];
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    const e = await embed.encode(text, null, special);
    const row = {
      text,
      nfc: text.normalize('NFC'),
      base: (await base.encode(text, null, special)).getIds(),
      embed: e.getIds(),
      embed_nospecial: (await embed.encode(text, null, {addSpecialTokens: false})).getIds(),
    };
    if (i % 10 === 0) {
      row.decode = await embed.decode(row.embed, false);
      row.decode_skip = await embed.decode(row.embed, true);
    }
    lines.push(row);
  }
  // Truncation: HF semantics, both sides, with and without the appended EOS.
  const truncRows = lines.filter((r, i) => i % 12 === 0);
  for (const max of [1, 2, 3, 5, 17]) {
    for (const direction of ['left', 'right']) {
      trunc.setTruncation(max, {direction});
      truncBase.setTruncation(max, {direction});
      for (const r of truncRows) {
        r.trunc = r.trunc || [];
        r.trunc.push({max, left: direction === 'left',
          embed: (await trunc.encode(r.text, null, special)).getIds(),
          embed_nospecial: (await trunc.encode(r.text, null, {addSpecialTokens: false})).getIds(),
          base: (await truncBase.encode(r.text, null, special)).getIds()});
      }
    }
  }
  // Decoding arbitrary id sequences (split UTF-8 sequences become U+FFFD).
  const decodes = [];
  for (let i = 0; i < 300; i++) {
    const ids = [];
    const n = randInt(1, 12);
    for (let k = 0; k < n; k++) ids.push(rand() < 0.1 ? randInt(151643, 151668) : rand() < 0.5 ? randInt(0, 255) : randInt(0, 151642));
    decodes.push({ids, decode: await embed.decode(ids, false), decode_skip: await embed.decode(ids, true)});
  }
  const meta = {meta: true, strings: lines.length, vocab_size: embed.getVocabSize(true),
    eos: embed.tokenToId('<|endoftext|>')};
  const body = [JSON.stringify(meta), ...lines.map((r) => JSON.stringify(r)),
    ...decodes.map((d) => JSON.stringify({ids_only: true, ...d}))].join('\n') + '\n';
  fs.mkdirSync(path.dirname(outPath), {recursive: true});
  fs.writeFileSync(outPath + '.tmp', body);
  fs.renameSync(outPath + '.tmp', outPath);
  console.log(`make_corpus: ${lines.length} strings, ${Buffer.byteLength(lines.map((r) => r.text).join(''))} bytes -> ${outPath}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
