import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "node:test";
import { encodeFim, encodeMessages, EncodingError, type ChatMessage, type EncodeOptions } from "../../src/text/encoding.js";
import { parseCompletion } from "../../src/text/parser.js";
import { parsePyJson } from "../../src/text/pyjson.js";
import { EFFORT_ABSOLUTE_MAXIMUM, EFFORT_BEYOND_MAXIMUM } from "../../src/text/prompt-texts.js";
import { fixtureDir, fixtureOutput } from "./support.js";

const BOS = "<｜begin▁of▁sentence｜>";
const EOS = "<｜end▁of▁sentence｜>";
const SYS: ChatMessage = { role: "system", content: "You are a helpful assistant." };

function fixture(n: number): { messages: ChatMessage[]; tools?: EncodeOptions["tools"] } {
  // Parsed as Python parses it, as the CLI does.
  const input = parsePyJson(readFileSync(resolve(fixtureDir, `test_input_${n}.json`), "utf8"));
  return Array.isArray(input) ? { messages: input as ChatMessage[] } : (input as { messages: ChatMessage[]; tools: EncodeOptions["tools"] });
}

const MODES: Record<number, "thinking" | "chat"> = { 1: "thinking", 2: "thinking", 3: "thinking", 4: "chat" };

test("the four official fixtures, byte for byte", () => {
  for (const n of [1, 2, 3, 4]) {
    const { messages, tools } = fixture(n);
    const prompt = encodeMessages(messages, { thinking_mode: MODES[n], tools });
    assert.equal(prompt, fixtureOutput(n), `fixture ${n}`);
    assert.equal(Buffer.byteLength(prompt), [0, 2390, 342, 3313, 2552][n]);
  }
});

test("fixture 1 with tools set on messages[0] (as the official test does) renders the same", () => {
  const { messages, tools } = fixture(1);
  const withTools = [{ ...messages[0]!, tools }, ...messages.slice(1)] as ChatMessage[];
  assert.equal(encodeMessages(withTools, { thinking_mode: "thinking" }), fixtureOutput(1));
});

test("fixtures 1 and 2: assistant segments parse back (official test, §C.10)", () => {
  const out1 = fixtureOutput(1);
  const cue = "<｜Assistant｜><think>";
  const first = out1.slice(out1.indexOf(cue) + cue.length, out1.indexOf("<｜User｜>", out1.indexOf(cue)));
  const p1 = parseCompletion(first);
  assert.equal(p1.reasoning_content, "The user wants to know the weather in Beijing. I should use the get_weather tool.");
  assert.equal(p1.content, "");
  assert.equal(p1.tool_calls.length, 1);
  assert.equal(p1.tool_calls[0]!.function.name, "get_weather");
  assert.deepEqual(JSON.parse(p1.tool_calls[0]!.function.arguments), { location: "Beijing", unit: "celsius" });
  assert.equal(p1.tool_calls[0]!.function.arguments, '{"location": "Beijing", "unit": "celsius"}');
  assert.equal(p1.finish_reason, "tool_calls");
  const last = parseCompletion(out1.slice(out1.lastIndexOf(cue) + cue.length));
  assert.equal(last.reasoning_content, "Got the weather data. Let me format a nice response.");
  assert.ok(last.content.includes("22°C"));
  assert.deepEqual(last.tool_calls, []);
  assert.deepEqual(last.warnings, []);

  const out2 = fixtureOutput(2);
  const p2 = parseCompletion(out2.slice(out2.lastIndexOf(cue) + cue.length));
  assert.equal(p2.reasoning_content, "The user asks about the capital of France. It is Paris.");
  assert.equal(p2.content, "The capital of France is Paris.");
  assert.deepEqual(p2.tool_calls, []);
  assert.ok(!out2.includes("The user said hello"));
});

test("§C.6 example 1: chat, thinking, max effort, no system message", () => {
  const msgs: ChatMessage[] = [SYS, { role: "user", content: "Hello!" }];
  assert.equal(encodeMessages(msgs, { thinking_mode: "chat" }), `${BOS}You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜></think>`);
  assert.equal(encodeMessages(msgs), `${BOS}You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜><think>`);
  assert.equal(encodeMessages(msgs, { reasoning_effort: "high" }), encodeMessages(msgs));
  assert.equal(
    encodeMessages(msgs, { reasoning_effort: "max" }),
    `${BOS}${EFFORT_ABSOLUTE_MAXIMUM}You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜><think>`,
  );
  assert.ok(EFFORT_ABSOLUTE_MAXIMUM.endsWith("unchecked.\n\n"));
  // No effort text in chat mode.
  assert.equal(encodeMessages(msgs, { thinking_mode: "chat", reasoning_effort: "max" }), encodeMessages(msgs, { thinking_mode: "chat" }));
  assert.equal(encodeMessages([{ role: "user", content: "Hello!" }], { thinking_mode: "chat" }), `${BOS}<｜User｜>Hello!<｜Assistant｜></think>`);
  // Effort goes before the first message whatever its role.
  assert.equal(
    encodeMessages([{ role: "user", content: "Hello!" }], { reasoning_effort: "max" }),
    `${BOS}${EFFORT_ABSOLUTE_MAXIMUM}<｜User｜>Hello!<｜Assistant｜><think>`,
  );
});

test("0731 effort texts are selectable", () => {
  const msgs: ChatMessage[] = [SYS, { role: "user", content: "Hi" }];
  const tail = "You are a helpful assistant.<｜User｜>Hi<｜Assistant｜><think>";
  assert.equal(encodeMessages(msgs, { effort_prompts: "0731" }), BOS + tail);
  assert.equal(encodeMessages(msgs, { effort_prompts: "0731", reasoning_effort: "low" }), BOS + tail);
  assert.equal(encodeMessages(msgs, { effort_prompts: "0731", reasoning_effort: "high" }), BOS + EFFORT_ABSOLUTE_MAXIMUM + tail);
  assert.equal(encodeMessages(msgs, { effort_prompts: "0731", reasoning_effort: "max" }), BOS + EFFORT_BEYOND_MAXIMUM + tail);
  assert.ok(EFFORT_BEYOND_MAXIMUM.startsWith("Reasoning Effort: Beyond maximum \u2014 exhaustive"));
  assert.throws(() => encodeMessages(msgs, { reasoning_effort: "low" }), (e: unknown) => e instanceof EncodingError && e.field === "options.reasoning_effort");
});

test("§C.6 example 2: earlier reasoning is dropped unless told otherwise", () => {
  const msgs: ChatMessage[] = [
    SYS,
    { role: "user", content: "Hi" },
    { role: "assistant", reasoning_content: "Greet.", content: "Hello! How can I help?" },
    { role: "user", content: "2+2?" },
  ];
  const head = `${BOS}You are a helpful assistant.<｜User｜>Hi<｜Assistant｜>`;
  assert.equal(encodeMessages(msgs), `${head}</think>Hello! How can I help?${EOS}<｜User｜>2+2?<｜Assistant｜><think>`);
  assert.equal(
    encodeMessages(msgs, { drop_thinking: false }),
    `${head}<think>Greet.</think>Hello! How can I help?${EOS}<｜User｜>2+2?<｜Assistant｜><think>`,
  );
  assert.equal(encodeMessages(msgs, { thinking_mode: "chat" }), `${head}</think>Hello! How can I help?${EOS}<｜User｜>2+2?<｜Assistant｜></think>`);
});

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"] },
  },
};

test("§C.6 example 3: tools, DSML call, tool result, next cue", () => {
  const msgs: ChatMessage[] = [
    SYS,
    { role: "user", content: "Weather in Paris for 2 days?" },
    {
      role: "assistant",
      content: "",
      reasoning_content: "Need the tool.",
      tool_calls: [{ id: "call_00_x", type: "function", function: { name: "get_weather", arguments: '{"city": "Paris", "days": 2}' } }],
    },
    { role: "tool", tool_call_id: "call_00_x", content: "Sunny, 21C" },
  ];
  const prompt = encodeMessages(msgs, { tools: [WEATHER_TOOL] });
  assert.ok(
    prompt.includes(
      '### Available Tool Schemas\n\n{"name": "get_weather", "description": "Get weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n<｜User｜>',
    ),
  );
  assert.ok(
    prompt.endsWith(
      '<｜User｜>Weather in Paris for 2 days?<｜Assistant｜><think>Need the tool.</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="get_weather">\n' +
        '<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name="days" string="false">2</｜DSML｜parameter>\n' +
        `</｜DSML｜invoke>\n</｜DSML｜tool_calls>${EOS}<｜User｜><tool_result>Sunny, 21C</tool_result><｜Assistant｜><think>`,
    ),
  );
  const chat = encodeMessages(msgs, { tools: [WEATHER_TOOL], thinking_mode: "chat" });
  assert.ok(chat.includes("<｜Assistant｜></think>\n\n<｜DSML｜tool_calls>"));
  assert.ok(chat.endsWith("<｜Assistant｜></think>") && !chat.includes("Need the tool."));
});

test("parallel tool results are rendered in call order; a following user message merges in", () => {
  const msgs: ChatMessage[] = [
    { role: "user", content: "q" },
    {
      role: "assistant",
      content: "",
      tool_calls: [
        { id: "A", type: "function", function: { name: "f", arguments: "{}" } },
        { id: "B", type: "function", function: { name: "g", arguments: '{"x": [1, 2.0, null]}' } },
      ],
    },
    { role: "tool", tool_call_id: "B", content: "rB" },
    { role: "tool", tool_call_id: "A", content: "rA" },
    { role: "user", content: "also this" },
  ];
  const prompt = encodeMessages(msgs, { thinking_mode: "chat" });
  assert.ok(prompt.includes('<｜DSML｜invoke name="f">\n\n</｜DSML｜invoke>'));
  assert.ok(prompt.includes('<｜DSML｜parameter name="x" string="false">[1, 2.0, null]</｜DSML｜parameter>'));
  assert.ok(prompt.endsWith("<｜User｜><tool_result>rA</tool_result>\n\n<tool_result>rB</tool_result>\n\nalso this<｜Assistant｜></think>"));
});

test("arguments keep Python's spelling: key order, floats, big integers, raw strings; invalid JSON becomes `arguments`", () => {
  const call = (args: string): ChatMessage[] => [
    { role: "user", content: "q" },
    { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "f", arguments: args } }] },
  ];
  const render = (args: string) => {
    const p = encodeMessages(call(args), { thinking_mode: "chat" });
    return p.slice(p.indexOf('name="f">\n') + 10, p.indexOf("\n</｜DSML｜invoke>"));
  };
  assert.equal(
    render('{"b": 1e5, "2": "x", "a": 12345678901234567890, "s": "line\\n\\"q\\" é"}'),
    '<｜DSML｜parameter name="b" string="false">100000.0</｜DSML｜parameter>\n' +
      '<｜DSML｜parameter name="2" string="true">x</｜DSML｜parameter>\n' +
      '<｜DSML｜parameter name="a" string="false">12345678901234567890</｜DSML｜parameter>\n' +
      '<｜DSML｜parameter name="s" string="true">line\n"q" é</｜DSML｜parameter>',
  );
  assert.equal(render('{"o": {"k": "é", "n": 1.5e-7, "t": true}}'), '<｜DSML｜parameter name="o" string="false">{"k": "é", "n": 1.5e-07, "t": true}</｜DSML｜parameter>');
  assert.equal(render("not json"), '<｜DSML｜parameter name="arguments" string="true">not json</｜DSML｜parameter>');
  assert.throws(() => render("[1, 2]"), (e: unknown) => e instanceof EncodingError && e.field === "messages[1].tool_calls[0].function.arguments");
});

test("§C.6 example 4: prefix completion leaves the assistant turn open", () => {
  const msgs = (extra: Partial<ChatMessage>): ChatMessage[] => [
    { role: "user", content: "Please write quick sort code" },
    { role: "assistant", content: "```python\n", prefix: true, ...extra },
  ];
  const head = `${BOS}<｜User｜>Please write quick sort code<｜Assistant｜>`;
  assert.equal(encodeMessages(msgs({}), { thinking_mode: "chat" }), `${head}</think>\`\`\`python\n`);
  assert.equal(encodeMessages(msgs({})), `${head}<think></think>\`\`\`python\n`);
  assert.equal(encodeMessages(msgs({ reasoning_content: "Use Lomuto partition." })), `${head}<think>Use Lomuto partition.</think>\`\`\`python\n`);
  assert.equal(encodeMessages([{ role: "user", content: "x" }, { role: "assistant", content: "y", wo_eos: true }], { thinking_mode: "chat" }), `${BOS}<｜User｜>x<｜Assistant｜></think>y`);
  assert.throws(
    () => encodeMessages([{ role: "assistant", content: "a", prefix: true }, { role: "user", content: "b" }]),
    (e: unknown) => e instanceof EncodingError && e.field === "messages[0].prefix",
  );
});

test("§C.6 example 5: response_format on the system message", () => {
  const msgs: ChatMessage[] = [
    { role: "system", content: "Reply in JSON.", response_format: { type: "json_object" } },
    { role: "user", content: "List two colors." },
  ];
  assert.equal(
    encodeMessages(msgs, { thinking_mode: "chat" }),
    `${BOS}Reply in JSON.\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{"type": "json_object"}<｜User｜>List two colors.<｜Assistant｜></think>`,
  );
});

test("request tools without a system message get a new empty one", () => {
  const prompt = encodeMessages([{ role: "user", content: "Hi" }], { tools: [WEATHER_TOOL] });
  assert.ok(prompt.startsWith(`${BOS}\n\n## Tools\n\nYou have access`));
  assert.ok(prompt.endsWith("invoke tool calls.\n<｜User｜>Hi<｜Assistant｜><think>"));
  // An empty tool list renders nothing and keeps dropping on.
  assert.equal(encodeMessages([{ role: "user", content: "Hi" }], { tools: [] }), `${BOS}<｜User｜>Hi<｜Assistant｜><think>`);
});

test("turn boundaries: consecutive users merge, trailing system gets no cue, system+system concatenate", () => {
  assert.equal(
    encodeMessages([{ role: "user", content: "u1" }, { role: "user", content: "u2" }], { thinking_mode: "chat" }),
    `${BOS}<｜User｜>u1\n\nu2<｜Assistant｜></think>`,
  );
  assert.equal(
    encodeMessages([{ role: "user", content: "q" }, { role: "assistant", content: "a" }, { role: "system", content: "late" }], { thinking_mode: "chat" }),
    `${BOS}<｜User｜>q<｜Assistant｜></think>a${EOS}late`,
  );
  assert.equal(encodeMessages([{ role: "system", content: "A" }, { role: "system", content: "B" }]), `${BOS}AB`);
  // Text content parts are concatenated.
  assert.equal(
    encodeMessages([{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }], { thinking_mode: "chat" }),
    `${BOS}<｜User｜>ab<｜Assistant｜></think>`,
  );
});

test("history turns keep reasoning when any message has tools; missing reasoning renders <think></think>", () => {
  const msgs: ChatMessage[] = [
    { role: "system", content: "S", tools: [WEATHER_TOOL] },
    { role: "user", content: "a" },
    { role: "assistant", content: "b" },
    { role: "user", content: "c" },
  ];
  const p = encodeMessages(msgs);
  assert.ok(p.endsWith(`<｜User｜>a<｜Assistant｜><think></think>b${EOS}<｜User｜>c<｜Assistant｜><think>`));
});

test("context: earlier messages shape the rendering but are not output, and no BOS is written", () => {
  const context: ChatMessage[] = [SYS, { role: "user", content: "Hi" }];
  assert.equal(
    encodeMessages([{ role: "assistant", content: "Hello", reasoning_content: "r" }, { role: "user", content: "More" }], { context }),
    `Hello${EOS}<｜User｜>More<｜Assistant｜><think>`,
  );
  assert.equal(encodeMessages([{ role: "assistant", content: "Hello", reasoning_content: "r" }], { context }), `r</think>Hello${EOS}`);
  assert.equal(encodeMessages([{ role: "user", content: "x" }], { add_default_bos_token: false, thinking_mode: "chat" }), "<｜User｜>x<｜Assistant｜></think>");
});

test("developer messages: rendered as user turns, removed from history when reasoning is dropped", () => {
  const msgs: ChatMessage[] = [
    { role: "developer", content: "D1" },
    { role: "assistant", content: "A1", reasoning_content: "R1" },
    { role: "user", content: "U2" },
  ];
  // The dropped developer turn takes its cue with it (as in the reference).
  assert.equal(encodeMessages(msgs), `${BOS}A1${EOS}<｜User｜>U2<｜Assistant｜><think>`);
  assert.equal(encodeMessages(msgs, { thinking_mode: "chat" }), `${BOS}<｜User｜>D1<｜Assistant｜></think>A1${EOS}<｜User｜>U2<｜Assistant｜></think>`);
});

test("tasks: non-action tasks write only their token; the next assistant gets no thinking part", () => {
  const msgs: ChatMessage[] = [{ role: "user", content: "Name this chat", task: "title" }, { role: "assistant", content: "Greeting" }];
  assert.equal(encodeMessages(msgs), `${BOS}<｜User｜>Name this chat<｜title｜>Greeting${EOS}`);
  assert.equal(encodeMessages([{ role: "user", content: "x", task: "action" }]), `${BOS}<｜User｜>x<｜Assistant｜><think><｜action｜>`);
});

test("invalid requests throw EncodingError naming the field", () => {
  const cases: Array<[() => unknown, string, RegExp]> = [
    [() => encodeMessages([{ role: "wizard", content: "x" }]), "messages[0].role", /unknown role "wizard"/],
    [() => encodeMessages([{ role: "user", content: "x", task: "fly" as never }]), "messages[0].task", /unknown task "fly"/],
    [() => encodeMessages([{ role: "user", content: 5 as never }]), "messages[0].content", /must be a string/],
    [() => encodeMessages([{ role: "developer", content: "" }]), "messages[0].content", /developer/],
    [() => encodeMessages([{ role: "assistant", content: "", tool_calls: [{ function: {} } as never] }]), "messages[0].tool_calls[0].function.name", /string/],
    [() => encodeMessages([], { thinking_mode: "deep" as never }), "options.thinking_mode", /invalid value "deep"/],
    [() => encodeMessages([], { drop_thinking: "yes" as never }), "options.drop_thinking", /boolean/],
    [() => encodeMessages([], { colour: 1 } as never), "options.colour", /unknown option/],
    [() => encodeMessages([], { tools: [{ type: "function" }] as never }), "options.tools[0].function", /function/],
    [() => encodeMessages("hi" as never), "messages", /array/],
  ];
  for (const [fn, field, message] of cases) {
    assert.throws(fn, (e: unknown) => e instanceof EncodingError && e.field === field && message.test(e.message), field);
  }
});

test("FIM prompt (§C.9)", () => {
  assert.equal(encodeFim({ prompt: "def f(", suffix: "\n    return x" }), `${BOS}<｜fim▁begin｜>def f(<｜fim▁hole｜>\n    return x<｜fim▁end｜>`);
  assert.equal(encodeFim({ prompt: "a" }, { add_default_bos_token: false }), "<｜fim▁begin｜>a<｜fim▁hole｜><｜fim▁end｜>");
});

test("add_generation_prompt false ends after the last message, without the assistant cue", () => {
  const messages: ChatMessage[] = [SYS, { role: "user", content: "Hi" }];
  for (const thinking_mode of ["thinking", "chat"] as const) {
    const open = encodeMessages(messages, { thinking_mode });
    const closed = encodeMessages(messages, { thinking_mode, add_generation_prompt: false });
    assert.equal(open, closed + "<｜Assistant｜>" + (thinking_mode === "thinking" ? "<think>" : "</think>"));
  }
  // A cue before an assistant turn inside the conversation is part of that turn, not the generation prompt.
  const turns: ChatMessage[] = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }];
  assert.equal(encodeMessages(turns, { thinking_mode: "chat", add_generation_prompt: false }), encodeMessages(turns, { thinking_mode: "chat" }));
});
