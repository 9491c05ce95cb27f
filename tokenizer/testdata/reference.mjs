// Reference token IDs for tokenizer's TestReference: runs the npm package
// @huggingface/tokenizers (tokenizers.js, Hugging Face's JavaScript port of
// the Rust library) on a tokenizer.json and a corpus, and, for GPT-2, the
// npm package gpt-3-encoder (OpenAI's original encoder, ported).
//
// usage: node reference.mjs NODE_MODULES TOKENIZER_JSON CONFIG_JSON|- CORPUS_JSON [gpt3]
// CORPUS_JSON is [{"text": "...", "special": bool}, ...]. Prints one JSON
// object: {"ids": [[...], ...], "decoded": ["...", ...], "ms": encode time,
// "gpt3": [[...] or null, ...] when asked (null for texts with <|endoftext|>,
// which gpt-3-encoder does not treat as special)}.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const [modules, tokPath, cfgPath, corpusPath, mode] = process.argv.slice(2);
const { Tokenizer } = await import(pathToFileURL(join(modules, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);
const json = JSON.parse(readFileSync(tokPath, "utf8"));
const cfg = cfgPath === "-" ? {} : JSON.parse(readFileSync(cfgPath, "utf8"));
const tok = new Tokenizer(json, cfg);
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));

const t0 = process.hrtime.bigint();
const ids = corpus.map((c) => tok.encode(c.text, { add_special_tokens: c.special }).ids);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const decoded = ids.map((x) => (x.length ? tok.decode(x, { clean_up_tokenization_spaces: false }) : ""));
const out = { ids, decoded, ms };
if (mode === "gpt3") {
  const require = createRequire(import.meta.url);
  const { encode } = require(join(modules, "gpt-3-encoder"));
  out.gpt3 = corpus.map((c) => (c.text.includes("<|endoftext|>") ? null : encode(c.text)));
}
process.stdout.write(JSON.stringify(out));
