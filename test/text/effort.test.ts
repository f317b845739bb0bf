/** Request reasoning_effort → the effort text of the encoder in use (api.md §B.2), for both encoders. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { API_EFFORTS, DEFAULT_EFFORT, EFFORT_TABLE, encoderEffort } from "../../src/text/effort.js";
import { encodeMessages, EncodingError, type ChatMessage } from "../../src/text/encoding.js";
import { EFFORT_ABSOLUTE_MAXIMUM, EFFORT_BEYOND_MAXIMUM } from "../../src/text/prompt-texts.js";
import { fixtureInput, fixtureOutput } from "./support.js";

const BOS = "<｜begin▁of▁sentence｜>";
const msgs: ChatMessage[] = [{ role: "user", content: "Hi" }];
const TAIL = "<｜User｜>Hi<｜Assistant｜><think>";

/** The effort text a request value renders as, through the encoder itself. */
function prefixOf(apiValue: string | undefined, encoding: "april" | "0731"): string {
  const text = encodeMessages(msgs, { reasoning_effort: encoderEffort(apiValue, encoding), effort_prompts: encoding });
  assert.ok(text.startsWith(BOS) && text.endsWith(TAIL));
  return text.slice(BOS.length, text.length - TAIL.length);
}

test("April: every value below max renders no effort text, max the Absolute-maximum text (§B.2 recommendation)", () => {
  for (const v of ["minimal", "low", "medium", "high", "xhigh"]) assert.equal(prefixOf(v, "april"), "", v);
  assert.equal(prefixOf("max", "april"), EFFORT_ABSOLUTE_MAXIMUM);
  assert.equal(prefixOf("ultra", "april"), EFFORT_ABSOLUTE_MAXIMUM);
});

test("0731: the documented mapping, low → none, medium/high/xhigh → Absolute maximum, max → Beyond maximum", () => {
  const expected: Record<string, string> = {
    minimal: "",
    low: "",
    medium: EFFORT_ABSOLUTE_MAXIMUM,
    high: EFFORT_ABSOLUTE_MAXIMUM,
    xhigh: EFFORT_ABSOLUTE_MAXIMUM,
    max: EFFORT_BEYOND_MAXIMUM,
    ultra: EFFORT_BEYOND_MAXIMUM,
  };
  for (const v of API_EFFORTS) assert.equal(prefixOf(v, "0731"), expected[v], v);
});

test("the effort texts are api.md's, byte for byte (three lines each, a blank line after, an EM DASH in 0731 max)", () => {
  assert.ok(EFFORT_ABSOLUTE_MAXIMUM.startsWith("Reasoning Effort: Absolute maximum with no shortcuts permitted.\nYou MUST be very thorough"));
  assert.ok(EFFORT_BEYOND_MAXIMUM.startsWith("Reasoning Effort: Beyond maximum \u2014 exhaustive, relentless, and uncompromising.\nYou MUST reason with the utmost depth"));
  for (const text of [EFFORT_ABSOLUTE_MAXIMUM, EFFORT_BEYOND_MAXIMUM]) {
    assert.ok(text.endsWith(".\n\n"));
    assert.equal(text.split("\n").length, 5, "three lines, then the blank line");
  }
});

test("no reasoning_effort renders each encoder's default, which adds no text (April high, 0731 low)", () => {
  for (const enc of ["april", "0731"] as const) {
    assert.equal(prefixOf(undefined, enc), "");
    assert.equal(prefixOf(DEFAULT_EFFORT[enc], enc), "");
  }
  assert.deepEqual(DEFAULT_EFFORT, { april: "high", "0731": "low" });
});

test("every table entry is a word its encoder accepts", () => {
  for (const enc of ["april", "0731"] as const) {
    for (const v of API_EFFORTS) assert.doesNotThrow(() => encodeMessages(msgs, { reasoning_effort: EFFORT_TABLE[enc][v], effort_prompts: enc }), `${enc} ${v}`);
  }
});

test("an unknown value is an EncodingError on reasoning_effort that lists the accepted values", () => {
  for (const enc of ["april", "0731"] as const) {
    assert.throws(
      () => encoderEffort("extreme", enc),
      (e: unknown) => e instanceof EncodingError && e.field === "reasoning_effort" && /minimal, low, medium, high, xhigh, max/.test(e.message),
    );
  }
});

test("effort text appears only in thinking mode, with either encoder", () => {
  for (const enc of ["april", "0731"] as const) {
    const chat = encodeMessages(msgs, { thinking_mode: "chat", reasoning_effort: "max", effort_prompts: enc });
    assert.equal(chat, `${BOS}<｜User｜>Hi<｜Assistant｜></think>`);
  }
});

test("the official vectors render byte for byte with the 0731 encoder too: only the effort texts differ (§0)", () => {
  const modes = { 1: "thinking", 2: "thinking", 3: "thinking", 4: "chat" } as const;
  for (const n of [1, 2, 3, 4] as const) {
    const input = fixtureInput(n) as ChatMessage[] | { messages: ChatMessage[]; tools: never };
    const { messages, tools } = Array.isArray(input) ? { messages: input, tools: undefined } : input;
    assert.equal(encodeMessages(messages, { thinking_mode: modes[n], tools, effort_prompts: "0731" }), fixtureOutput(n), `fixture ${n}`);
  }
});
