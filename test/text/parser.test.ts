import assert from "node:assert/strict";
import { test } from "node:test";
import { STRAY_SPECIALS } from "../../src/text/marker-scan.js";
import { OutputParser, parseCompletion, type OutputDelta, type ParsedOutput, type ParserOptions } from "../../src/text/parser.js";
import { pyJsonString } from "../../src/text/pyjson.js";
import { loadDefaultTokenizer } from "../../src/text/tokenizer.js";
import { createToolCallIdGenerator, TOOL_CALL_ID_PATTERN } from "../../src/text/tool-call-id.js";
import { pick, randomChunks, rng } from "./support.js";

const EOS = "<｜end▁of▁sentence｜>";
const D = "｜DSML｜";
const FORBIDDEN = [...new Set([...STRAY_SPECIALS, D, "</think>", "<think>", "<｜place▁holder▁no▁1｜>"])];

const seeded = (o: ParserOptions = {}): ParserOptions => ({ toolCallId: createToolCallIdGenerator(42), ...o });

interface Replay {
  reasoning: string;
  content: string;
  calls: Array<{ index: number; id: string; name: string; arguments: string }>;
  deltas: OutputDelta[];
  result: ParsedOutput;
}

/** Feeds chunks, checks every delta is free of markup, and rebuilds the message from the deltas. */
function stream(chunks: string[], options: ParserOptions, cause: "stop" | "length" = "stop"): Replay {
  const parser = new OutputParser(options);
  const deltas: OutputDelta[] = [];
  for (const c of chunks) deltas.push(...parser.pushText(c));
  const end = parser.finish(cause);
  deltas.push(...end.deltas);
  const replay: Replay = { reasoning: "", content: "", calls: [], deltas, result: end.result };
  for (const d of deltas) {
    const text = d.type === "tool_call" ? d.name : d.text;
    for (const bad of FORBIDDEN) assert.ok(!text.includes(bad), `delta ${JSON.stringify(d)} contains ${bad}`);
    if (d.type === "reasoning") replay.reasoning += d.text;
    else if (d.type === "content") replay.content += d.text;
    else if (d.type === "tool_call") {
      assert.equal(d.index, replay.calls.length);
      replay.calls.push({ index: d.index, id: d.id, name: d.name, arguments: "" });
    } else replay.calls[d.index]!.arguments += d.text;
  }
  return replay;
}

function assertReplayMatches(r: Replay, expected: ParsedOutput, label: string): void {
  assert.equal(r.reasoning, expected.reasoning_content ?? "", `${label}: reasoning`);
  assert.equal(r.content, expected.content, `${label}: content`);
  assert.deepEqual(
    r.calls,
    expected.tool_calls.map((c) => ({ index: c.index, id: c.id, name: c.function.name, arguments: c.function.arguments })),
    `${label}: tool calls`,
  );
  assert.deepEqual(r.result, expected, `${label}: final message`);
}

const WEATHER =
  'Need weather.</think>Checking.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n' +
  '<｜DSML｜parameter name="location" string="true">Hangzhou "West" \\ 西湖\n</｜DSML｜parameter>\n' +
  '<｜DSML｜parameter name="days" string="false">{"n": [1, 2.0]}</｜DSML｜parameter>\n</｜DSML｜invoke>\n' +
  '<｜DSML｜invoke name="now">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>' +
  EOS;

test("reasoning, content and parallel tool calls; arguments rebuilt as §D.2 says", () => {
  const r = parseCompletion(WEATHER, seeded());
  assert.equal(r.reasoning_content, "Need weather.");
  assert.equal(r.content, "Checking.");
  assert.equal(r.finish_reason, "tool_calls");
  assert.deepEqual(r.warnings, []);
  assert.equal(r.tool_calls.length, 2);
  const [a, b] = r.tool_calls;
  assert.equal(a!.function.name, "get_weather");
  assert.equal(a!.function.arguments, '{"location": "Hangzhou \\"West\\" \\\\ 西湖\\n", "days": {"n": [1, 2.0]}}');
  assert.deepEqual(JSON.parse(a!.function.arguments), { location: 'Hangzhou "West" \\ 西湖\n', days: { n: [1, 2] } });
  assert.equal(b!.function.arguments, "{}");
  assert.equal(b!.index, 1);
  assert.match(a!.id, TOOL_CALL_ID_PATTERN);
  assert.ok(a!.id.startsWith("call_00_") && b!.id.startsWith("call_01_"));
  assert.equal(a!.type, "function");
});

test("tool call ids: seeded generators repeat, unseeded ones differ", () => {
  assert.deepEqual(parseCompletion(WEATHER, seeded()), parseCompletion(WEATHER, seeded()));
  const x = parseCompletion(WEATHER).tool_calls[0]!.id;
  const y = parseCompletion(WEATHER).tool_calls[0]!.id;
  assert.match(x, TOOL_CALL_ID_PATTERN);
  assert.notEqual(x, y);
});

test("streaming: first fragment carries id and name, then argument pieces; phases in order", () => {
  const p = new OutputParser(seeded());
  const phases: string[] = [];
  const deltas: OutputDelta[] = [];
  for (const ch of WEATHER) {
    deltas.push(...p.pushText(ch));
    if (phases[phases.length - 1] !== p.phase) phases.push(p.phase);
  }
  assert.deepEqual(phases, ["reasoning", "content", "tool_calls", "done"]);
  assert.equal(p.done, true);
  const firstCall = deltas.findIndex((d) => d.type === "tool_call");
  assert.ok(deltas.slice(0, firstCall).every((d) => d.type === "reasoning" || d.type === "content"));
  assert.equal(deltas.filter((d) => d.type === "tool_arguments" && d.index === 0)[0]!.type, "tool_arguments");
  // The two newlines before the block are never shown.
  assert.equal(deltas.filter((d) => d.type === "content").map((d) => (d as { text: string }).text).join(""), "Checking.");
});

// ---- property tests ---------------------------------------------------------

const PLAIN = ["The", " answer", " is", " 42", ".", "\n", "\n\n", " 中文", "，", "😀", " code: `x < y && y > z`", ' "q"', " a\\b", " tab\t", " 1 < 2", " ≤ ≥"];
const TRICKY = ["<", "</", "</thi", "nk>", "<｜", "｜", "DSML", "tool_calls", ">", "<｜end▁of", "<｜place▁holder▁no▁1", "｜>", "<｜User｜>", "<think>", "</think>", "\n\n<", D, "<｜DSML｜invoke"];
const VALUES_STR = ["Paris", 'with "quotes"', "multi\nline\n", "<b>tag</b>", "反斜杠\\", "", " spaced ", "emoji 🧪"];
const VALUES_RAW = ["2", "3.5", "true", "null", '{"a": [1, 2]}', '["x", "y"]', '"raw"'];

interface Case {
  text: string;
  thinking: boolean;
  expected?: { reasoning: string; content: string; calls: Array<{ name: string; args: string }> };
}

function plainText(r: () => number, n: number): string {
  return Array.from({ length: n }, () => pick(r, PLAIN)).join("");
}

function wellFormed(r: () => number): Case {
  const thinking = r() < 0.7;
  const reasoning = thinking ? plainText(r, Math.floor(r() * 8)) : "";
  let content = plainText(r, Math.floor(r() * 8));
  const calls: Array<{ name: string; args: string }> = [];
  let block = "";
  if (r() < 0.6) {
    while (content.endsWith("\n")) content = content.slice(0, -1);
    const invokes: string[] = [];
    const nCalls = 1 + Math.floor(r() * 3);
    for (let c = 0; c < nCalls; c++) {
      const name = pick(r, ["get_weather", "search", "run-code", "f1"]);
      const params: string[] = [];
      const members: string[] = [];
      const nParams = Math.floor(r() * 4);
      for (let k = 0; k < nParams; k++) {
        const key = `k${k}${pick(r, ["", "_x", "键"])}`;
        const isStr = r() < 0.6;
        const v = isStr ? pick(r, VALUES_STR) : pick(r, VALUES_RAW);
        params.push(`<${D}parameter name="${key}" string="${isStr}">${v}</${D}parameter>`);
        members.push(`${pyJsonString(key)}: ${isStr ? pyJsonString(v) : v}`);
      }
      invokes.push(`<${D}invoke name="${name}">\n${params.join("\n")}\n</${D}invoke>`);
      calls.push({ name, args: members.length ? `{${members.join(", ")}}` : "{}" });
    }
    block = `\n\n<${D}tool_calls>\n${invokes.join("\n")}\n</${D}tool_calls>`;
  }
  const text = (thinking ? `${reasoning}</think>` : "") + content + block + (r() < 0.85 ? EOS : "");
  return { text, thinking, expected: { reasoning, content, calls } };
}

/** Well-formed output with random damage: deleted, duplicated or inserted markup fragments. */
function damaged(r: () => number): Case {
  const base = wellFormed(r);
  let text = base.text;
  const edits = 1 + Math.floor(r() * 3);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(r() * (text.length + 1));
    const kind = r();
    if (kind < 0.4) text = text.slice(0, at) + pick(r, TRICKY) + text.slice(at);
    else if (kind < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 12));
    else text = text.slice(0, at) + text.slice(Math.max(0, at - 20), at) + text.slice(at);
  }
  return { text, thinking: base.thinking };
}

test("property: any chunking streams to the non-streamed result, and no delta carries markup", () => {
  const r = rng(2024);
  for (let n = 0; n < 600; n++) {
    const c = n % 3 === 0 ? damaged(r) : wellFormed(r);
    const options = (): ParserOptions => seeded({ thinking_mode: c.thinking ? "thinking" : "chat" });
    const whole = parseCompletion(c.text, options());
    const label = `case ${n}: ${JSON.stringify(c.text)}`;
    if (c.expected) {
      assert.equal(whole.reasoning_content, c.thinking ? c.expected.reasoning : null, label);
      assert.equal(whole.content, c.expected.content, label);
      assert.deepEqual(whole.tool_calls.map((t) => ({ name: t.function.name, args: t.function.arguments })), c.expected.calls, label);
      for (const t of whole.tool_calls) JSON.parse(t.function.arguments);
      assert.deepEqual(whole.warnings, [], label);
    }
    assertReplayMatches(stream([...c.text], options()), whole, `${label} (char by char)`);
    for (const max of [2, 5, 17]) assertReplayMatches(stream(randomChunks(c.text, r, max), options()), whole, `${label} (chunks ≤ ${max})`);
  }
});

test("property: token-by-token feeding (with detokenisation) equals parsing the text", () => {
  const tok = loadDefaultTokenizer();
  const r = rng(7);
  for (let n = 0; n < 150; n++) {
    const c = n % 3 === 0 ? damaged(r) : wellFormed(r);
    const opts = (): ParserOptions => seeded({ thinking_mode: c.thinking ? "thinking" : "chat", tokenizer: tok });
    const p = new OutputParser(opts());
    const deltas: OutputDelta[] = [];
    for (const id of tok.encode(c.text)) deltas.push(...p.pushToken(id));
    const { result } = p.finish();
    assert.deepEqual(result, parseCompletion(c.text, opts()), JSON.stringify(c.text));
    for (const d of deltas) if (d.type !== "tool_call") assert.ok(!d.text.includes("\uFFFD"));
  }
});

// ---- degraded and lenient cases --------------------------------------------

test("malformed block: the text stays visible as content, with a warning", () => {
  const r = parseCompletion(`Sure.\n\n<${D}tool_calls>\nI changed my mind.${EOS}`, seeded({ thinking_mode: "chat" }));
  assert.equal(r.content, "Sure.\n\n<tool_calls>\nI changed my mind.");
  assert.deepEqual(r.tool_calls, []);
  assert.equal(r.finish_reason, "stop");
  assert.match(r.warnings.join("\n"), /malformed tool call block/);
});

test("block without calls and without its closing tag is shown as content", () => {
  const r = parseCompletion(`A\n\n<${D}tool_calls>\n${EOS}`, seeded({ thinking_mode: "chat" }));
  assert.equal(r.content, "A\n\n<tool_calls>\n");
  assert.match(r.warnings.join(), /without any call/);
});

test("malformed parameter tag: the call closes with the arguments so far, the rest is content", () => {
  const text = `<${D}tool_calls>\n<${D}invoke name="f">\n<${D}parameter name="a" string="true">x</${D}parameter>\n<${D}parameter name="b">y</${D}parameter>\n</${D}invoke>\n</${D}tool_calls>${EOS}`;
  const r = parseCompletion(text, seeded({ thinking_mode: "chat" }));
  assert.equal(r.tool_calls.length, 1);
  assert.equal(r.tool_calls[0]!.function.arguments, '{"a": "x"}');
  assert.equal(r.content, '\n<parameter name="b">y</parameter>\n</invoke>\n</tool_calls>');
  assert.match(r.warnings.join(), /malformed/);
});

test("a parameter value left open is closed at the next DSML tag", () => {
  const text = `<${D}tool_calls>\n<${D}invoke name="f">\n<${D}parameter name="a" string="true">x\n</${D}invoke>\n</${D}tool_calls>${EOS}`;
  const r = parseCompletion(text, seeded({ thinking_mode: "chat" }));
  assert.equal(r.tool_calls[0]!.function.arguments, '{"a": "x\\n"}');
  assert.equal(r.content, "");
  assert.match(r.warnings.join(), /not closed/);
});

test("cut off by max_tokens inside a value: partial call kept with valid JSON, finish_reason length", () => {
  const text = `Hmm</think>\n\n<${D}tool_calls>\n<${D}invoke name="search">\n<${D}parameter name="q" string="true">deep se`;
  const r = parseCompletion(text, seeded(), "length");
  assert.equal(r.finish_reason, "length");
  assert.equal(r.tool_calls[0]!.function.arguments, '{"q": "deep se"}');
  const eos = parseCompletion(`${text}${EOS}`, seeded());
  assert.equal(eos.tool_calls[0]!.function.arguments, '{"q": "deep se"}');
  assert.equal(eos.finish_reason, "tool_calls");
  assert.ok(eos.warnings.length > 0);
});

test("missing </think> in thinking mode: everything is reasoning (§D.3)", () => {
  const r = parseCompletion("still thinking about it", {}, "length");
  assert.deepEqual([r.reasoning_content, r.content, r.finish_reason], ["still thinking about it", "", "length"]);
});

test("a tool block inside reasoning ends the reasoning and is parsed", () => {
  const r = parseCompletion(`Let me search.\n\n<${D}tool_calls>\n<${D}invoke name="s">\n</${D}invoke>\n</${D}tool_calls>${EOS}`, seeded());
  assert.equal(r.reasoning_content, "Let me search.");
  assert.equal(r.content, "");
  assert.equal(r.tool_calls[0]!.function.name, "s");
  assert.match(r.warnings.join(), /inside reasoning/);
});

test("chat mode strips stray think tags and special tokens; text after a tool block stays visible", () => {
  const r = parseCompletion(`<think>a</think>b<｜User｜>c<｜place▁holder▁no▁77｜>d${EOS}ignored`, { thinking_mode: "chat" });
  assert.equal(r.content, "abcd");
  assert.equal(r.reasoning_content, null);
  const after = parseCompletion(`<${D}tool_calls>\n<${D}invoke name="f">\n</${D}invoke>\n</${D}tool_calls>\nP.S. done${EOS}`, seeded({ thinking_mode: "chat" }));
  assert.equal(after.tool_calls.length, 1);
  assert.equal(after.content, "P.S. done");
  assert.match(after.warnings.join(), /after the tool call block/);
});

test("duplicate parameters are kept (last wins for JSON readers) with a warning", () => {
  const text = `<${D}tool_calls>\n<${D}invoke name="f">\n<${D}parameter name="a" string="false">1</${D}parameter>\n<${D}parameter name="a" string="false">2</${D}parameter>\n</${D}invoke>\n</${D}tool_calls>${EOS}`;
  const r = parseCompletion(text, seeded({ thinking_mode: "chat" }));
  assert.equal(r.tool_calls[0]!.function.arguments, '{"a": 1, "a": 2}');
  assert.match(r.warnings.join(), /duplicate/);
});

test("prefix completion can start in content even in thinking mode", () => {
  const r = parseCompletion(`print(1)\n\`\`\`${EOS}`, { startInContent: true });
  assert.equal(r.content, "print(1)\n```");
  assert.equal(r.reasoning_content, "");
});

test("stop strings end the content, whatever the chunking; never matched in reasoning", () => {
  const text = `STOP in reasoning</think>Answer: 42\nEND of it${EOS}`;
  const whole = parseCompletion(text, { stop: ["\nEND", "zzz"] });
  assert.equal(whole.reasoning_content, "STOP in reasoning");
  assert.equal(whole.content, "Answer: 42");
  assert.equal(whole.finish_reason, "stop");
  assert.equal(whole.stop_string, "\nEND");
  const r = rng(3);
  for (let i = 0; i < 50; i++) assertReplayMatches(stream(randomChunks(text, r, 4), { stop: ["\nEND", "zzz"] }), whole, "stop");
  const p = new OutputParser({ thinking_mode: "chat", stop: ["###"] });
  p.pushText("ab#");
  assert.equal(p.done, false);
  p.pushText("##cd");
  assert.equal(p.done, true);
  assert.equal(p.finish().result.content, "ab");
});

test("disarmed stops (vLLM's min_tokens) let earlier text through; once armed, a stop may begin before the arming but must end after it", () => {
  const p = new OutputParser({ thinking_mode: "chat", stop: ["o", "XY"] });
  const q = new OutputParser({ thinking_mode: "chat", stop: ["o", "XY"], stopsArmed: false });
  q.pushText("Hello wor");
  q.pushText("ld X");
  assert.equal(q.done, false, "no stop before arming");
  q.armStops();
  q.pushText("Y and more");
  assert.equal(q.done, true, "XY began before the arming and ends after it");
  assert.equal(q.finish().result.content, "Hello world ");
  p.pushText("Hello");
  assert.equal(p.done, true, "armed from the start, as by default");
  const r = new OutputParser({ thinking_mode: "chat", stop: ["o"], stopsArmed: false });
  r.pushText("Hello");
  r.armStops();
  r.pushText(" there, you");
  assert.equal(r.finish().result.content, "Hello there, y");
});

test("pushToken without a tokenizer is a programming error", () => {
  assert.throws(() => new OutputParser().pushToken(5), /tokenizer/);
});
