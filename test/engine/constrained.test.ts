import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { sampleAllowed } from "../../src/engine/constraints/masked-sampler.js";
import { jsonComplete, jsonStart, jsonStep, minCloseBytes, JSON_WS_LIMIT } from "../../src/engine/constraints/json.js";
import { Engine } from "../../src/engine/engine.js";
import { isEngineError } from "../../src/engine/errors.js";
import { Rng } from "../../src/engine/rng.js";
import { samplingProbs } from "../../src/engine/sampler.js";
import type { GenerateRequest, GenerationResult, LogitsProcessor } from "../../src/engine/types.js";
import { checkpoint } from "./helpers.js";

// ───────────────────────────── the validator ─────────────────────────────

/** Feeds UTF-8 bytes; the index of the first rejected byte, or -1. */
function feed(text: string, state = jsonStart()): { at: number; state: ReturnType<typeof jsonStart> } {
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i++) if (!jsonStep(state, bytes[i]!)) return { at: i, state };
  return { at: -1, state };
}

describe("JSON validator", () => {
  test("accepts JSON objects byte by byte and knows when they are complete", () => {
    const docs = [
      "{}",
      '{ "a" : 1 }',
      '{"a":[1,-0.5e+3,true,false,null,{"b":[]}],"c":"x\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"}',
      '{"ü€😀":"日本語","e":1E9,"z":0}',
    ];
    for (const d of docs) {
      const r = feed(d);
      assert.equal(r.at, -1, `rejected ${JSON.stringify(d)} at byte ${r.at}`);
      assert.ok(jsonComplete(r.state), d);
      assert.equal(minCloseBytes(r.state), 0);
      assert.deepEqual(typeof JSON.parse(d), "object");
    }
    // Every proper prefix is incomplete, and closable in at most minCloseBytes more.
    const d = docs[2]!;
    for (let n = 0; n < d.length; n++) assert.ok(!jsonComplete(feed(d.slice(0, n)).state));
  });

  test("rejects what JSON.parse would, at the first impossible byte", () => {
    const bad: Array<[string, number]> = [
      ["[1]", 0], // json_object: the top level is an object
      [' {"a":1}', 0], // and nothing comes before it
      ['{"a":01}', 6],
      ['{"a":1,}', 7],
      ['{"a" 1}', 5],
      ['{"a":tru}', 8],
      ['{"a":"\u0001"}', 6],
      ['{"a":"\\x"}', 7],
      ['{"a":"\\u12G4"}', 10],
      ["{}}", 2],
      ["{} ", 2], // generation ends at the closing brace
      ['{"a":1.}', 7],
      ['{"a":-}', 6],
    ];
    for (const [text, at] of bad) {
      assert.equal(feed(text).at, at, JSON.stringify(text));
      if (text !== "[1]" && text !== "{} " && text !== ' {"a":1}') assert.throws(() => JSON.parse(text), JSON.stringify(text));
    }
  });

  test("UTF-8 is checked across byte boundaries (overlong, surrogates, stray continuations)", () => {
    const s = jsonStart();
    for (const b of new TextEncoder().encode('{"k":"')) assert.ok(jsonStep(s, b));
    const step = (bytes: number[]) => {
      const c = { ...s };
      return bytes.every((b) => jsonStep(c, b));
    };
    assert.ok(step([0xe2, 0x82, 0xac])); // €
    assert.ok(step([0xf0, 0x9f, 0x98, 0x80])); // 😀
    assert.ok(!step([0x80])); // continuation without a lead
    assert.ok(!step([0xc0, 0x80])); // overlong
    assert.ok(!step([0xed, 0xa0, 0x80])); // UTF-16 surrogate
    assert.ok(!step([0xf4, 0x90, 0x80, 0x80])); // > U+10FFFF
    assert.ok(!step([0xe2, 0x22])); // a quote inside a character
  });

  test("whitespace runs are bounded, so a model cannot pad forever", () => {
    assert.equal(feed(`{"a":${" ".repeat(JSON_WS_LIMIT)}1,${" ".repeat(JSON_WS_LIMIT)}"b":2}`).at, -1);
    assert.equal(feed(`{"a":${" ".repeat(JSON_WS_LIMIT + 1)}1}`).at, 5 + JSON_WS_LIMIT);
  });

  test("no whitespace before the object: json_object content starts with `{`", () => {
    for (const lead of [" ", "\n", "\t", "\r"]) assert.equal(feed(`${lead}{}`).at, 0, JSON.stringify(lead));
  });

  test("minCloseBytes is the length of the shortest completion", () => {
    const cases: Array<[string, string]> = [
      ["", "{}"],
      ["{", "}"],
      ['{"a', '":0}'],
      ['{"a"', ":0}"],
      ['{"a":', "0}"],
      ['{"a":[', "]}"],
      ['{"a":[1,', "0]}"],
      ['{"a":1,', '"":0}'],
      ['{"a":"x\\', 'n"}'],
      ['{"a":"\\u0', '000"}'],
      ['{"a":1e', "0}"],
      ['{"a":fa', "lse}"],
    ];
    for (const [prefix, rest] of cases) {
      const r = feed(prefix);
      assert.equal(r.at, -1);
      assert.equal(minCloseBytes(r.state), new TextEncoder().encode(rest).length, JSON.stringify(prefix));
      assert.equal(feed(prefix + rest).at, -1);
      assert.doesNotThrow(() => JSON.parse(prefix + rest));
    }
  });
});

describe("masked sampling", () => {
  const logits = Float64Array.from([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0, 0.25, 1.25]);
  const allowed = (id: number) => id % 3 !== 0; // forbids the argmax (0) among others
  const params = { temperature: 1, topP: 1, topK: 0, minP: 0 };

  test("greedy takes the best allowed token", () => {
    assert.equal(sampleAllowed(logits, { ...params, temperature: 0 }, new Rng(1), allowed), 1);
    assert.equal(sampleAllowed(logits, { ...params, temperature: 0 }, new Rng(1), () => false), -1);
  });

  test("sampled tokens follow the renormalised masked distribution (with and without filters)", () => {
    for (const p of [params, { ...params, temperature: 0.7, topP: 0.8 }]) {
      const masked = Float64Array.from(logits, (v, i) => (allowed(i) ? v : -Infinity));
      const expected = samplingProbs(masked, p);
      const rng = new Rng(7);
      const n = 20000;
      const counts = new Array<number>(logits.length).fill(0);
      for (let i = 0; i < n; i++) counts[sampleAllowed(logits, p, rng, allowed)]!++;
      let chi2 = 0;
      let dof = -1;
      for (let i = 0; i < counts.length; i++) {
        if (expected[i] === 0) {
          assert.equal(counts[i], 0, `token ${i} is masked out but was drawn`);
          continue;
        }
        chi2 += (counts[i]! - n * expected[i]!) ** 2 / (n * expected[i]!);
        dof++;
      }
      assert.ok(chi2 < dof + 4.5 * Math.sqrt(2 * dof) + 5, `chi2 ${chi2.toFixed(1)} with ${dof} dof`);
    }
  });
});

// ───────────────────────────── the engine ─────────────────────────────

const TOOLS = [
  { type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: { type: "object", properties: { city: { type: "string" } } } } },
  { type: "function", function: { name: "search", parameters: { type: "object", properties: { q: { type: "string" } } } } },
];
const NAMES = TOOLS.map((t) => t.function.name);
const user = (content: string) => [{ role: "user", content }];

describe("constrained decoding in the engine (tiny preset, real tokenizer)", async () => {
  const dir = await checkpoint("tiny");
  /** Per request id: which token the "model" should strongly prefer after `generated`. */
  const scripts = new Map<string, (generated: readonly number[]) => number | undefined>();
  const logitsProcessor: LogitsProcessor = ({ id, generated, logits }) => {
    const want = scripts.get(id)?.(generated);
    if (want === undefined) return;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
    logits[want] = max + 50;
  };
  const engine = await Engine.load(dir, { prefixCache: { blockTokens: 16 }, logitsProcessor });
  after(() => engine.dispose());
  const tok = engine.tokenizer!;
  const eos = tok.specialIds.eos;
  const dsml = tok.specialIds.dsml!;
  let n = 0;

  async function run(req: GenerateRequest, script?: (generated: readonly number[]) => number | undefined): Promise<GenerationResult> {
    const id = `c${n++}`;
    if (script) scripts.set(id, script);
    try {
      return await engine.generate({ ...req, id }).result();
    } finally {
      scripts.delete(id);
    }
  }
  /** A script that spells `ids` and then ends. */
  const spell = (ids: number[]) => (g: readonly number[]) => ids[g.length] ?? eos;
  const callText = `\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>`;
  const callIds = tok.encode(callText);
  // The same text without the special token: `｜DSML｜` spelled out in ordinary byte-level tokens.
  const spelledIds = callText.split("｜DSML｜").flatMap((part, i) => [...(i > 0 ? [...tok.encode("｜"), ...tok.encode("DSML"), ...tok.encode("｜")] : []), ...tok.encode(part)]);

  test("the forced-logits script really makes the model call a tool under tool_choice auto", async () => {
    assert.ok(callIds.includes(dsml));
    assert.ok(!spelledIds.includes(dsml));
    assert.equal(tok.decode(spelledIds), callText);
    for (const ids of [callIds, spelledIds]) {
      const r = await run({ messages: user("Weather?"), tools: TOOLS, thinking: false, max_tokens: 80, temperature: 0 }, spell(ids));
      assert.equal(r.finish_reason, "tool_calls");
      assert.equal(r.message.tool_calls[0]!.function.name, "get_weather");
    }
  });

  test('tool_choice "none": tools stay in the prompt but no tool call can be written, even when the logits insist', async () => {
    const auto = engine.promptTokens({ messages: user("Weather?"), tools: TOOLS, thinking: false });
    const none = engine.promptTokens({ messages: user("Weather?"), tools: TOOLS, tool_choice: "none", thinking: false });
    assert.deepEqual(none, auto, "tools are rendered for none as well (spec §C.7)");
    const runs: Array<Promise<GenerationResult>> = [];
    for (const ids of [callIds, spelledIds]) {
      for (const thinking of [false, true]) {
        for (const temperature of [0, 1]) {
          runs.push(run({ messages: user("Weather?"), tools: TOOLS, tool_choice: "none", thinking, max_tokens: 24, temperature, seed: 3 }, spell(ids)));
        }
      }
    }
    for (const r of await Promise.all(runs)) {
          assert.deepEqual(r.message.tool_calls, []);
          assert.notEqual(r.finish_reason, "tool_calls");
          assert.ok(!r.tokens.includes(dsml));
          assert.ok(!tok.decode(r.tokens).includes("｜DSML｜"), JSON.stringify(tok.decode(r.tokens)));
          assert.ok(tok.decode(r.tokens).includes("tool_calls>"), "the rest of the script still came out, as text");
    }
  });

  test('tool_choice "required": the answer ends in a call to a declared tool, finish_reason tool_calls', async () => {
    const preferEos = () => eos;
    for (const thinking of [false, true]) {
      for (const [temperature, seed] of [[0, 1], [1, 1], [1, 2], [1, 3]] as const) {
        const r = await run({ messages: user("Weather in Paris?"), tools: TOOLS, tool_choice: "required", thinking, max_tokens: 40, temperature, seed }, preferEos);
        assert.equal(r.finish_reason, "tool_calls", JSON.stringify(r.message));
        assert.equal(r.message.tool_calls.length, 1);
        assert.ok(NAMES.includes(r.message.tool_calls[0]!.function.name), r.message.tool_calls[0]!.function.name);
        assert.equal(r.message.tool_calls[0]!.function.arguments, "{}");
        assert.equal(r.message.content, "");
        // The forced tokens are part of the completion like any other.
        assert.equal(r.usage.completion_tokens, r.tokens.length);
        const text = tok.decode(r.tokens);
        assert.ok(text.startsWith(`${thinking ? "</think>" : ""}\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="`), JSON.stringify(text));
        if (thinking) assert.equal(r.message.reasoning_content, "");
      }
    }
  });

  test("a named function: that call at once, whatever the model would write first", async () => {
    const named = { type: "function" as const, function: { name: "search" } };
    const wrong = tok.encode(`Let me check.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n`);
    const r = await run({ messages: user("Find it"), tools: TOOLS, tool_choice: named, thinking: false, max_tokens: 40, temperature: 0 }, (g) => wrong[g.length]);
    assert.equal(r.finish_reason, "tool_calls");
    assert.equal(r.message.content, "");
    assert.deepEqual(r.message.tool_calls.map((c) => c.function.name), ["search"]);
    assert.ok(tok.decode(r.tokens).startsWith(`\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="search">\n`));
    assert.deepEqual(r.message.warnings, []);
  });

  test("strict tools under tool_choice auto: the model's own call continues under the schema", async () => {
    const strict = [{ type: "function", function: { name: "get_weather", strict: true, parameters: { type: "object", properties: { city: { type: "string", maxLength: 10 } }, required: ["city"], additionalProperties: false } } }];
    // The script writes some text, then a call with a number where the schema wants a string, then ends.
    const wrongArgs = tok.encode(`Let me check.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n<｜DSML｜parameter name="city" string="false">42</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>`);
    const r = await run({ messages: user("Weather?"), tools: strict, thinking: false, max_tokens: 60, temperature: 0 }, (g) => wrongArgs[g.length] ?? eos);
    assert.equal(r.finish_reason, "tool_calls");
    assert.equal(r.message.content, "Let me check.");
    const args = JSON.parse(r.message.tool_calls[0]!.function.arguments) as { city: unknown };
    assert.equal(typeof args.city, "string");
    assert.ok((args.city as string).length <= 10);
  });

  test("strict tools under tool_choice auto: a model that does not call ends as it likes", async () => {
    const strict = [{ type: "function", function: { name: "get_weather", strict: true, parameters: { type: "object", properties: {} } } }];
    const text = tok.encode("No call needed.");
    const r = await run({ messages: user("Hi"), tools: strict, thinking: false, max_tokens: 20, temperature: 0 }, (g) => text[g.length] ?? eos);
    assert.equal(r.finish_reason, "stop");
    assert.equal(r.message.content, "No call needed.");
    assert.deepEqual(r.message.tool_calls, []);
  });

  test("required with a random model and a small max_tokens: the whole call still fits", async () => {
    const runs: Array<Promise<GenerationResult>> = [];
    for (const seed of [1, 2]) for (const max_tokens of [29, 36]) runs.push(run({ messages: user("Weather?"), tools: TOOLS, tool_choice: "required", max_tokens, seed }));
    for (const r of await Promise.all(runs)) {
      assert.equal(r.message.tool_calls.length, 1, JSON.stringify(tok.decode(r.tokens)));
      assert.ok(NAMES.includes(r.message.tool_calls[0]!.function.name));
      assert.equal(r.finish_reason, "tool_calls");
      assert.equal(typeof JSON.parse(r.message.tool_calls[0]!.function.arguments), "object");
    }
  });

  test("json_object: content parses as a JSON object for many seeds at temperature 1, and greedy", async () => {
    const reqs: GenerateRequest[] = [];
    for (let seed = 1; seed <= 10; seed++) reqs.push({ messages: user("Two colors as JSON."), response_format: { type: "json_object" }, thinking: false, max_tokens: 32, seed });
    reqs.push({ messages: user("Two colors as JSON."), response_format: { type: "json_object" }, thinking: false, max_tokens: 32, temperature: 0 });
    reqs.push({ messages: user("Two colors as JSON."), response_format: { type: "json_object" }, thinking: false, max_tokens: 12, seed: 5, top_p: 0.9 });
    // Thinking mode: the budget forces `</think>` while `{}` still fits.
    reqs.push({ messages: user("Two colors as JSON."), response_format: { type: "json_object" }, max_tokens: 20, seed: 9 });
    reqs.push({ messages: user("Two colors as JSON."), response_format: { type: "json_object" }, max_tokens: 28, reasoning_budget: 6, seed: 9 });
    const results = await Promise.all(reqs.map((r) => run(r)));
    results.forEach((r, i) => {
      assert.equal(r.finish_reason, "stop", `request ${i}: ${JSON.stringify(r.message.content)}`);
      const v: unknown = JSON.parse(r.message.content);
      assert.ok(typeof v === "object" && v !== null && !Array.isArray(v), r.message.content);
      assert.ok(r.message.content.trimEnd().endsWith("}"));
      assert.ok(r.tokens.length <= reqs[i]!.max_tokens!);
      assert.deepEqual(r.message.warnings, []);
    });
    assert.ok(results.some((r) => r.message.content.length > 10), "not only `{}`");
  });

  test("json_object with logprobs reports the raw distribution's logprobs, one per content token", async () => {
    const r = await run({ messages: user("JSON please"), response_format: { type: "json_object" }, thinking: false, max_tokens: 24, seed: 4, logprobs: true, top_logprobs: 3 });
    JSON.parse(r.message.content);
    const lp = r.logprobs!.content!;
    assert.equal(lp.length, r.tokens.length);
    assert.equal(lp.map((t) => t.token).join(""), r.message.content);
    for (const t of lp) {
      assert.ok(Number.isFinite(t.logprob) && t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
    }
  });

  test("json_object when the logits push whitespace or tool calls: still one closed object", async () => {
    const space = tok.encode(" ")[0]!;
    const r = await run({ messages: user("x"), response_format: { type: "json_object" }, thinking: false, max_tokens: 64, temperature: 0 }, () => space);
    assert.equal(r.finish_reason, "stop");
    const v: unknown = JSON.parse(r.message.content);
    assert.ok(typeof v === "object" && v !== null && !Array.isArray(v));
    assert.ok(r.tokens.filter((t) => t === space).length >= JSON_WS_LIMIT, "the model did pad where it could");
    const t = await run({ messages: user("x"), tools: TOOLS, response_format: { type: "json_object" }, max_tokens: 64, temperature: 0 }, spell(callIds));
    assert.deepEqual(t.message.tool_calls, []);
    JSON.parse(t.message.content);
    // A model that wants to stop while reasoning: its EOS becomes `</think>`, then the JSON follows.
    const e = await run({ messages: user("x"), response_format: { type: "json_object" }, max_tokens: 16, temperature: 0 }, () => eos);
    assert.equal(e.tokens[0], tok.specialIds.thinkEnd);
    assert.equal(e.message.reasoning_content, "");
    assert.equal(e.finish_reason, "stop");
    JSON.parse(e.message.content);
  });

  test("constrained requests do not speculate", async () => {
    const r = await run({ messages: user("x"), response_format: { type: "json_object" }, thinking: false, max_tokens: 8, seed: 1, speculative: true });
    assert.equal(r.stats.speculative.enabled, false);
    assert.equal(r.stats.speculative.drafted, 0);
  });

  test("bad tool_choice / response_format values are invalid_request errors naming the field", () => {
    const cases: Array<[Partial<GenerateRequest>, string, RegExp]> = [
      [{ tools: TOOLS, tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice", /"nope" is not among the tools/],
      [{ tool_choice: { type: "function", function: { name: "search" } } }, "tool_choice", /not among the tools/],
      [{ tool_choice: "required" }, "tool_choice", /needs at least one function/],
      [{ tools: TOOLS, tool_choice: "sometimes" as never }, "tool_choice", /must be/],
      [{ response_format: { type: "xml" } as never }, "response_format", /"text", "json_object" or "json_schema"/],
      [{ tools: TOOLS, tool_choice: "required", response_format: { type: "json_object" } }, "response_format", /cannot be combined/],
    ];
    for (const [extra, param, message] of cases) {
      assert.throws(
        () => engine.generate({ messages: user("hi"), ...extra }),
        (e: unknown) => isEngineError(e) && e.code === "invalid_request" && e.param === param && message.test(e.message) && e.message.startsWith(`${param}:`),
      );
    }
  });
});
