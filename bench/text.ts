/**
 * Text-layer benchmark: tokenizer throughput against @lenml/tokenizers (and
 * @huggingface/tokenizers) on the same >= 1 MB mixed corpus in one process,
 * checking the ids are identical, and the output parser's cost per token.
 * Run: `node dist/bench/text.js [--json]`.
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { TokenizerLoader } from "@lenml/tokenizers";
import { pathToFileURL } from "node:url";
import { buildDefaultTokenizerJson, V4_TOKENIZER_CONFIG } from "../src/text/default-vocab.js";
import { OutputParser } from "../src/text/parser.js";
import { loadDefaultTokenizer } from "../src/text/tokenizer.js";
import { createToolCallIdGenerator } from "../src/text/tool-call-id.js";
import { seededRandom } from "../src/text/seeded-random.js";

const WORDS = (
  "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were " +
  "her she there been one all we their has would when if so no will more can model token server stream request response " +
  "cache prefix attention sliding window expert router kernel latency throughput quantized weights gradient reasoning"
).split(" ");
const HAN =
  "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从深度求索模型推理工具调用温泉世界著名";
const EMOJI = ["😀", "🚀", "🧪", "👍🏽", "🇨🇳", "❤️", "🤖", "👨‍👩‍👧"];
const CODE_LINES = [
  "export function {id}(input: string[], limit = {n}): Promise<number> {",
  "  const {id} = await fetch(`${base}/v1/{id}?q=${encodeURIComponent(q)}`);",
  "  if ({id}.length > {n} && !done) { return {id}.slice(0, -1); }",
  "def {id}(self, x, *args, **kwargs):\n    return [y ** 2 for y in x if y % {n} == 0]",
  "#include <stdio.h>\nint {id}(int argc, char **argv) { printf(\"%d\\n\", argc * {n}); }",
  "SELECT {id}, COUNT(*) FROM events WHERE ts >= '2026-04-24' GROUP BY 1 ORDER BY 2 DESC;",
  '{"name": "{id}", "arguments": {"city": "Paris", "days": {n}, "ok": true}}',
  "\t\t// {id}: handle CRLF\r\n\t\treturn null;",
];


/**
 * A deterministic mix of English prose, Chinese, source code, numbers, emoji,
 * odd whitespace and a few special-token strings, of at least `minBytes` UTF-8 bytes.
 */
export function mixedCorpus(minBytes: number, seed = 1): string {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const ident = () => Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(["get", "set", "user", "tok", "enc", "Cache", "Row", "_x", "v4", "ids"])).join("");
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < minBytes) {
    let piece: string;
    const kind = r();
    if (kind < 0.35) {
      const n = 20 + Math.floor(r() * 60);
      const words = Array.from({ length: n }, () => pick(WORDS));
      words[0] = words[0]![0]!.toUpperCase() + words[0]!.slice(1);
      piece = words.join(" ").replace(/ (\w+) /g, (m, w: string) => (r() < 0.08 ? ` ${w}, ` : r() < 0.03 ? ` ${w}. ` : m)) + ".\n\n";
    } else if (kind < 0.6) {
      const n = 10 + Math.floor(r() * 80);
      piece = Array.from({ length: n }, () => (r() < 0.1 ? pick(["，", "。", "：", "、", "（", "）"]) : HAN[Math.floor(r() * HAN.length)])).join("") + "。\n";
    } else if (kind < 0.85) {
      piece = pick(CODE_LINES).replace(/\{id\}/g, ident).replace(/\{n\}/g, () => String(Math.floor(r() * 100000))) + "\n";
    } else if (kind < 0.93) {
      piece = `${pick(EMOJI)} ${pick(WORDS)} ${pick(EMOJI)}${pick(EMOJI)} ${(r() * 1e6).toFixed(3)} ` + (r() < 0.5 ? "\u00a0\u3000 café naïve Ünïcödé\n" : "  \n");
    } else {
      piece = pick(["<｜User｜>", "<｜Assistant｜>", "<think>", "</think>", "<｜end▁of▁sentence｜>", "｜DSML｜", "<tool_result>", "<|EOT|>"]) + pick(WORDS) + " ";
    }
    parts.push(piece);
    bytes += Buffer.byteLength(piece);
  }
  return parts.join("");
}

/** A plausible thinking-mode completion with reasoning, an answer and two tool calls. */
export function sampleCompletion(seed = 7, reasoningWords = 4000): string {
  const r = seededRandom(seed);
  const words = Array.from({ length: reasoningWords }, () => WORDS[Math.floor(r() * WORDS.length)]).join(" ");
  return (
    `${words}\n\nLet me check with the tools.</think>I will look this up.\n\n<｜DSML｜tool_calls>\n` +
    `<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="location" string="true">Hangzhou, "West Lake" 西湖</｜DSML｜parameter>\n` +
    `<｜DSML｜parameter name="days" string="false">3</｜DSML｜parameter>\n</｜DSML｜invoke>\n` +
    `<｜DSML｜invoke name="search">\n<｜DSML｜parameter name="query" string="true">${words.slice(0, 2000)}</｜DSML｜parameter>\n</｜DSML｜invoke>\n` +
    `</｜DSML｜tool_calls><｜end▁of▁sentence｜>`
  );
}

export interface TextBenchResult {
  corpusBytes: number;
  tokens: number;
  loadMs: { dsv4: number; lenml: number; huggingface: number };
  /**
   * MB/s = 1e6 bytes per second. dsv4Cold: first text ever (JIT and word cache cold);
   * dsv4: unseen text after warm-up; dsv4Repeat / lenml / huggingface: best of repeated
   * runs on the same text (all three keep word caches).
   */
  mbPerSecond: { dsv4Cold: number; dsv4: number; dsv4Repeat: number; lenml: number; huggingface: number };
  idsIdentical: { lenml: boolean; huggingface: boolean };
  parser: { tokens: number; microsPerToken: number; microsPerTokenTextOnly: number };
}

function timeMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function best(runs: number, fn: () => void): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, timeMs(fn));
  return min;
}

function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function runTextBench(opts: { json: boolean }): Promise<TextBenchResult> {
  // Warm-up text and measured text differ, so the word cache only helps as it would on new input.
  const warmup = mixedCorpus(1_100_000, 1);
  const corpus = mixedCorpus(1_100_000, 2);
  const bytes = Buffer.byteLength(corpus);
  const mbps = (ms: number) => Number((bytes / 1e6 / (ms / 1000)).toFixed(2));

  let tok!: ReturnType<typeof loadDefaultTokenizer>;
  const loadDsv4 = timeMs(() => (tok = loadDefaultTokenizer()));
  let lenml!: ReturnType<typeof TokenizerLoader.fromPreTrained>;
  const loadLenml = timeMs(() => {
    lenml = TokenizerLoader.fromPreTrained({
      tokenizerJSON: buildDefaultTokenizerJson() as never,
      tokenizerConfig: { ...V4_TOKENIZER_CONFIG, tokenizer_class: "LlamaTokenizerFast" } as never,
    });
  });
  let hf!: HfTokenizer;
  const loadHf = timeMs(() => (hf = new HfTokenizer(buildDefaultTokenizerJson(), { ...V4_TOKENIZER_CONFIG })));

  const coldMs = timeMs(() => tok.encode(warmup));
  let ids: number[] = [];
  const fresh = timeMs(() => (ids = tok.encode(corpus)));
  const repeat = best(3, () => tok.encode(corpus));
  let lenmlIds: number[] = [];
  const lenmlMs = best(2, () => (lenmlIds = lenml.encode(corpus, { add_special_tokens: false })));
  let hfIds: number[] = [];
  const hfMs = best(2, () => (hfIds = hf.encode(corpus, { add_special_tokens: false }).ids));

  const completion = sampleCompletion();
  const completionIds = tok.encode(completion);
  const pieces = completionIds.map((id) => tok.decode([id]));
  const runParser = (byText: boolean) => {
    const p = new OutputParser({ tokenizer: tok, toolCallId: createToolCallIdGenerator(1) });
    if (byText) for (const t of pieces) p.pushText(t);
    else for (const id of completionIds) p.pushToken(id);
    p.finish();
  };
  const parserMs = best(5, () => runParser(false));
  const parserTextMs = best(5, () => runParser(true));

  const result: TextBenchResult = {
    corpusBytes: bytes,
    tokens: ids.length,
    loadMs: { dsv4: Math.round(loadDsv4), lenml: Math.round(loadLenml), huggingface: Math.round(loadHf) },
    mbPerSecond: { dsv4Cold: mbps(coldMs), dsv4: mbps(fresh), dsv4Repeat: mbps(repeat), lenml: mbps(lenmlMs), huggingface: mbps(hfMs) },
    idsIdentical: { lenml: sameIds(ids, lenmlIds), huggingface: sameIds(ids, hfIds) },
    parser: {
      tokens: completionIds.length,
      microsPerToken: Number(((parserMs * 1000) / completionIds.length).toFixed(3)),
      microsPerTokenTextOnly: Number(((parserTextMs * 1000) / completionIds.length).toFixed(3)),
    },
  };
  if (opts.json) {
    process.stdout.write(JSON.stringify(result) + "\n");
  } else {
    const r = result;
    process.stdout.write(
      [
        `text bench: ${(bytes / 1e6).toFixed(2)} MB mixed corpus, ${r.tokens} tokens`,
        `  tokenizer load ms   dsv4 ${r.loadMs.dsv4}   lenml ${r.loadMs.lenml}   huggingface ${r.loadMs.huggingface}`,
        `  encode MB/s         dsv4 ${r.mbPerSecond.dsv4} on unseen text (cold ${r.mbPerSecond.dsv4Cold}, repeated ${r.mbPerSecond.dsv4Repeat})   lenml ${r.mbPerSecond.lenml}   huggingface ${r.mbPerSecond.huggingface} (repeated)`,
        `  ids identical       lenml ${r.idsIdentical.lenml}   huggingface ${r.idsIdentical.huggingface}`,
        `  parser              ${r.parser.microsPerToken} µs/token with detokenisation, ${r.parser.microsPerTokenTextOnly} µs/token on text (${r.parser.tokens} tokens)`,
        "",
      ].join("\n"),
    );
  }
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runTextBench({ json: process.argv.includes("--json") });
  if (!result.idsIdentical.lenml) process.exitCode = 1;
}
