// Fills in datasets/tokenizer/deepseek_v3/golden_encode_hf.json with ids from Hugging Face `tokenizers`
// (the Rust reference implementation, through its Node binding). A developer tool, not part of the
// build or the tests: the tests read the JSON it writes.
//
//   npm install tokenizers@0.23.2          (anywhere; point NODE_PATH at its node_modules)
//   NODE_PATH=.../node_modules node scripts/tokenizer_golden.js
//
// It keeps the texts already in the golden file and recomputes their ids, and the token count and
// FNV-1a hash of every haystack novel. The vocabulary is the shipped tokenizer.json.gz plus the V4
// tokens v4bench adds (engine/io/tokenizer.cpp, deepseek_v4_added_tokens); HF renumbers added tokens
// that leave gaps, so the free ids between them are filled with placeholders no text contains.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { Tokenizer } = require('tokenizers');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'datasets', 'tokenizer', 'deepseek_v3');
const goldenPath = path.join(dir, 'golden_encode_hf.json');

const kV4 = {
  128821: '<think>', 128822: '</think>', 128825: '｜DSML｜', 128828: '<｜latest_reminder｜>',
  128829: '<｜action｜>', 128830: '<｜query｜>', 128831: '<｜authority｜>', 128832: '<｜domain｜>',
  128833: '<｜task｜>', 128834: '<｜political｜>', 128835: '<｜entity｜>', 128836: '<｜title｜>',
  128845: '<｜read_url｜>',
};

function fnv1a64(ids) {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n, mask = 0xffffffffffffffffn;
  for (const id of ids) {
    for (let k = 0; k < 4; ++k) {
      h ^= BigInt((id >>> (8 * k)) & 0xff);
      h = (h * prime) & mask;
    }
  }
  return h.toString(16).padStart(16, '0');
}

(async () => {
  const tj = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(dir, 'tokenizer.json.gz'))).toString('utf8'));
  const maxId = Math.max(...Object.keys(kV4).map(Number));
  const have = new Set(tj.added_tokens.map((t) => t.id));
  for (let id = Math.max(...have) + 1; id <= maxId; ++id) {
    tj.added_tokens.push({ id, content: kV4[id] || `<｜golden▁filler▁${id}｜>`, single_word: false, lstrip: false,
                           rstrip: false, normalized: false, special: false });
  }
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'v4b-golden-')), 'tokenizer.json');
  fs.writeFileSync(tmp, JSON.stringify(tj));
  const tok = Tokenizer.fromFile(tmp);
  const encode = async (text) => Array.from((await tok.encode(text, undefined, { addSpecialTokens: false })).getIds());

  const golden = JSON.parse(fs.readFileSync(goldenPath, 'utf8'));
  for (const c of golden.cases) c.ids = await encode(c.text);
  for (const n of golden.novels) {
    const text = fs.readFileSync(path.join(root, 'datasets', 'haystack', n.file), 'utf8');
    const ids = await encode(text);
    n.bytes = Buffer.byteLength(text, 'utf8');
    n.n_tokens = ids.length;
    n.fnv1a64 = fnv1a64(ids);
    n.first_ids = ids.slice(0, 16);
  }
  golden.generator = `tokenizers (Hugging Face, Rust) ${require('tokenizers/package.json').version} via its Node binding, ` +
                     `node ${process.version}; scripts/tokenizer_golden.js`;
  // One case or novel per line: diffs stay readable.
  const lines = (xs) => xs.map((x) => '  ' + JSON.stringify(x)).join(',\n');
  fs.writeFileSync(goldenPath, `{\n "generator": ${JSON.stringify(golden.generator)},\n "note": ${JSON.stringify(golden.note)},\n` +
                   ` "cases": [\n${lines(golden.cases)}\n ],\n "novels": [\n${lines(golden.novels)}\n ]\n}\n`);
  console.log(`wrote ${goldenPath}: ${golden.cases.length} cases, ${golden.novels.length} novels`);
})();
