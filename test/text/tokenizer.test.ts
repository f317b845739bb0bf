import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { mixedCorpus } from "../../bench/text.js";
import { buildDefaultTokenizerJson } from "../../src/text/default-vocab.js";
import { SPECIAL_IDS, V4_VOCAB_SIZE } from "../../src/text/special-tokens.js";
import { loadDefaultTokenizer, loadTokenizer, writeDefaultTokenizerFiles } from "../../src/text/tokenizer.js";

const tok = loadDefaultTokenizer();

// Spec §E.2 (and the §C.6 prompts), add_special_tokens=False.
const VECTORS: Array<[string, number[]]> = [
  ["Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ", [19923, 3, 223, 5464, 5008, 1175, 19, 940, 223, 19, 438, 223, 20, 6113, 257, 76589, 131, 100, 76032, 1628, 76589, 131, 108, 76589, 131, 98]],
  ["<｜User｜>你好<｜Assistant｜><think>推理</think>答案<｜end▁of▁sentence｜>", [128803, 30594, 128804, 128821, 36101, 128822, 7624, 1]],
  ["<｜begin▁of▁sentence｜>SYS<｜User｜>问题<｜Assistant｜><think>", [0, 53, 20842, 128803, 2056, 128804, 128821]],
  ["<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜></think>", [0, 128803, 3085, 344, 223, 20, 13, 20, 33, 128804, 128822]],
  ["Hello, DeepSeek V4.", [19923, 14, 22651, 4374, 1465, 721, 22, 16]],
  ["你好，世界。", [30594, 303, 3427, 320]],
  ["Codex 🧪🚀", [9945, 90, 7351, 103, 106, 74287, 225]],
  ["The capital of France is", [671, 6102, 294, 8760, 344]],
  ["You are a helpful assistant", [3476, 477, 260, 11502, 22896]],
  ["Hi", [23166]],
  ["Hello", [19923]],
  ["<tool_result>Sunny, 21C</tool_result>", [30, 72461, 46148, 32, 31704, 2928, 14, 223, 1602, 37, 1718, 72461, 46148, 32]],
  [
    "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜></think>",
    [0, 3476, 477, 260, 11502, 22896, 16, 128803, 19923, 3, 128804, 128822],
  ],
  [
    "<｜begin▁of▁sentence｜><｜User｜>用一句话解释什么是 Large Language Model？<｜Assistant｜><think>",
    [0, 128803, 642, 34543, 9068, 25043, 27357, 10900, 9662, 1148, 128804, 128821],
  ],
];

test("spec §E.2 token-id vectors", () => {
  for (const [text, ids] of VECTORS) assert.deepEqual(tok.encode(text), ids, text);
});

test("vocabulary: 129,280 ids with the V4 special tokens at their ids", () => {
  assert.equal(tok.vocabSize, V4_VOCAB_SIZE);
  const expected: Record<string, number> = {
    "<｜begin▁of▁sentence｜>": 0,
    "<｜end▁of▁sentence｜>": 1,
    "<｜User｜>": 128803,
    "<｜Assistant｜>": 128804,
    "<think>": 128821,
    "</think>": 128822,
    "｜DSML｜": 128825,
    "<｜latest_reminder｜>": 128828,
    "<｜action｜>": 128829,
    "<｜query｜>": 128830,
    "<｜authority｜>": 128831,
    "<｜domain｜>": 128832,
    "<｜title｜>": 128836,
    "<｜read_url｜>": 128845,
    "<｜image｜>": 129279,
    "<｜fim▁begin｜>": 128801,
  };
  for (const [token, id] of Object.entries(expected)) {
    assert.equal(tok.tokenToId(token), id, token);
    assert.equal(tok.idToToken(id), token);
  }
  assert.equal(tok.idToToken(128900), "<｜place▁holder▁no▁900｜>");
  assert.deepEqual(tok.specialIds, {
    bos: 0, eos: 1, pad: 2, user: 128803, assistant: 128804, thinkStart: 128821, thinkEnd: 128822, dsml: 128825, latestReminder: 128828,
  });
  assert.equal(tok.isSpecial(SPECIAL_IDS.thinkEnd), true);
  assert.equal(tok.isSpecial(19923), false);
});

test("DSML markup: ｜DSML｜ is one token even inside <｜DSML｜invoke", () => {
  const ids = tok.encode('\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="f">');
  assert.deepEqual(ids.slice(0, 3), [271, 30, 128825]);
  assert.equal(ids.filter((id) => id === 128825).length, 2);
});

test("encode/decode round trip over a mixed English/Chinese/code/emoji corpus", () => {
  const corpus = mixedCorpus(150_000, 11);
  assert.equal(tok.decode(tok.encode(corpus)), corpus);
  for (const line of corpus.split("\n").slice(0, 400)) assert.equal(tok.decode(tok.encode(line)), line);
  const odd = "tab\tNEL\u0085BOM\uFEFFnbsp\u00a0 zwj👨‍👩‍👧 flag🇨🇳 combining é e\u0301 ＡＢＣ ١٢٣ \r\n\r\n   \n\u2028x";
  assert.equal(tok.decode(tok.encode(odd)), odd);
});

test("ids match @huggingface/tokenizers on the mixed corpus (fast path is exact)", () => {
  const hf = new HfTokenizer(buildDefaultTokenizerJson(), { add_bos_token: false });
  const corpus = mixedCorpus(120_000, 5) + "\u0085\uFEFF \u3000x\u2029y" + "9".repeat(50) + "字".repeat(600) + " ".repeat(300);
  assert.deepEqual(tok.encode(corpus), hf.encode(corpus, { add_special_tokens: false }).ids);
});

test("decode can leave special tokens out", () => {
  const ids = tok.encode("<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>");
  assert.equal(tok.decode(ids), "<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>");
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "Hi");
});

test("stream decoder never emits a broken character, whatever the split", () => {
  const text = "emoji 🧪🚀👍🏽 中文字符 café — ∑ 𝔘";
  const ids = tok.encode(text);
  // Several of these tokens hold a fraction of a character.
  assert.ok(ids.some((id) => new TextDecoder("utf-8", { fatal: false }).decode(tok.tokenBytes(id)).includes("\uFFFD")));
  const dec = tok.createStreamDecoder();
  let out = "";
  for (const id of ids) {
    const piece = dec.push(id);
    assert.ok(!piece.includes("\uFFFD"), `partial character emitted for token ${id}`);
    out += piece;
  }
  out += dec.flush();
  assert.equal(out, text);
});

test("a model directory's tokenizer files load to the same tokenizer", async () => {
  const dir = await mkdtemp(join(tmpdir(), "dsv4-tok-"));
  try {
    await writeDefaultTokenizerFiles(dir);
    const config = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
    assert.equal(config.add_bos_token, false);
    assert.equal(config.model_max_length, 1048576);
    const loaded = await loadTokenizer(dir);
    assert.equal(loaded.vocabSize, V4_VOCAB_SIZE);
    for (const [text, ids] of VECTORS.slice(0, 4)) assert.deepEqual(loaded.encode(text), ids);
    await assert.rejects(loadTokenizer(join(dir, "missing")), /tokenizer\.json/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
