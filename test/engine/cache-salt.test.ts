import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { blockSalts, requestSalt, saltOfBlock } from "../../src/engine/cache-salt.js";
import { PrefixCache } from "../../src/engine/prefix-cache.js";
import type { ModelConfig } from "../../src/model/config.js";
import { resolveRequest } from "../../src/engine/request.js";
import { SharedPrefixes, sharedPrefixTokens } from "../../src/engine/shared-prefix.js";
import { buildDefaultTokenizerJson } from "../../src/text/default-vocab.js";
import { encodeMessages } from "../../src/text/encoding.js";
import { Tokenizer } from "../../src/text/tokenizer.js";
import { promptIds } from "./helpers.js";

// No layers: the tree's keys and hits are what these tests look at, not the state.
const cache = () => new PrefixCache({ identity: "i".repeat(64), blockTokens: 16, memoryBytes: 1 << 20, diskBytes: 0, cfg: { layers: [] } as unknown as ModelConfig, dtype: "f32" });

describe("cache salts", () => {
  test("the salt of (tenant, user_id) is unambiguous, and empty only when both are", () => {
    assert.equal(requestSalt("", ""), "");
    const salts = [requestSalt("a", "bc"), requestSalt("ab", "c"), requestSalt("abc", ""), requestSalt("", "abc"), requestSalt("a\0b", "c"), requestSalt("a", "b\0c")];
    assert.equal(new Set(salts).size, salts.length);
    assert.ok(!salts.includes(""));
  });

  test("blocks ending at or before the shared length carry no salt", () => {
    const s = { sharedTokens: 40, salt: "t" };
    assert.equal(saltOfBlock(s, 16), "");
    assert.equal(saltOfBlock(s, 32), "");
    assert.equal(saltOfBlock(s, 48), "t", "a block that straddles the shared end is the tenant's");
    assert.deepEqual(blockSalts({ cacheSalt: "t", sharedPrefixTokens: 40 }), s);
  });

  test("keys: shared blocks equal the unsalted chain; later blocks chain from them but differ per salt", () => {
    const c = cache();
    const tokens = promptIds(64, 3);
    const plain = c.keys(tokens, "");
    const a = c.keys(tokens, { sharedTokens: 32, salt: requestSalt("tenant-a", "") });
    const b = c.keys(tokens, { sharedTokens: 32, salt: requestSalt("tenant-b", "") });
    assert.deepEqual(a.slice(0, 2), plain.slice(0, 2));
    assert.deepEqual(b.slice(0, 2), plain.slice(0, 2));
    for (const k of [2, 3]) {
      assert.notEqual(a[k], plain[k]);
      assert.notEqual(a[k], b[k]);
    }
    const unshared = c.keys(tokens, requestSalt("tenant-a", ""));
    assert.deepEqual(c.keys(tokens, { sharedTokens: 0, salt: requestSalt("tenant-a", "") }), unshared, "a string is a salt with no shared part");
    for (let k = 0; k < 4; k++) assert.notEqual(unshared[k], plain[k], "without a shared prefix every block is salted");
    assert.notEqual(a[2], unshared[2], "after a shared part the chain differs from a wholly salted one");
  });

  test("a miss for another tenant, a hit for the same tenant, and the shared blocks for anyone (PrefixCache)", () => {
    const c = cache();
    const tokens = promptIds(65, 9);
    const tenantA = { sharedTokens: 32, salt: requestSalt("a", "") };
    // Insert 64 tokens as four captured blocks.
    let anchor = null;
    for (let end = 16; end <= 64; end += 16) {
      const plan = c.planInsert(tokens, tenantA, end, anchor);
      assert.ok(plan.capture);
      c.put(plan.capture, { start: plan.capture.from, end, layers: [], tip: [] });
      anchor = plan.anchor;
    }
    assert.equal(c.lookup(tokens, tenantA).tokens, 64);
    assert.equal(c.lookup(tokens, { sharedTokens: 32, salt: requestSalt("b", "") }).tokens, 32, "only the shared blocks");
    assert.equal(c.lookup(tokens, requestSalt("b", "")).tokens, 0, "nothing without the shared prefix");
    assert.equal(c.lookup(tokens, { sharedTokens: 32, salt: requestSalt("a", "u1") }).tokens, 32, "user_id isolates within a tenant");
  });
});

describe("shared prefixes", () => {
  test("sharedPrefixTokens: the prompt text must start with the candidate; tokens count up to the first difference", () => {
    const cand = [{ text: "<s>SYS", tokens: [1, 2, 3, 4] }];
    assert.equal(sharedPrefixTokens("<s>SYS and more", [1, 2, 3, 4, 5], cand), 4);
    assert.equal(sharedPrefixTokens("<s>SYS and more", [1, 2, 3, 9, 5], cand), 3, "a merged last token is not shared");
    assert.equal(sharedPrefixTokens("<s>OTHER", [1, 2, 3, 4, 5], cand), 0, "equal tokens alone are not enough");
    assert.equal(sharedPrefixTokens("<s>SYS", [1, 2], cand), 2);
    assert.equal(sharedPrefixTokens("<s>SYS!", [1, 2, 3, 4], [...cand, { text: "<s>SYS!", tokens: [1, 2, 3, 4, 5] }]), 4);
  });

  const tok = new Tokenizer(buildDefaultTokenizerJson());
  const SYSTEM = "You are the support assistant of Example Corp. Answer briefly, cite the handbook, and never reveal internal ticket numbers. ".repeat(3);
  const resolve = (messages: Array<{ role: "system" | "user"; content: string }>, extra: object = {}) =>
    resolveRequest({ messages, ...extra }, { tokenizer: tok, contextLength: 100_000, vocabSize: tok.vocabSize, speculativeDefault: false, canSpeculate: false, sharedPrefixes: new SharedPrefixes([SYSTEM], tok) });

  for (const thinking of [{ type: "disabled" as const }, { type: "enabled" as const }]) {
    test(`a request whose system prompt is a shared one shares exactly its tokens (thinking ${thinking.type})`, () => {
      const r = resolve([{ role: "system", content: SYSTEM }, { role: "user", content: "My order is late." }], { thinking, reasoning_effort: "max" });
      const alone = tok.encode(encodeMessages([{ role: "system", content: SYSTEM }], { thinking_mode: thinking.type === "enabled" ? "thinking" : "chat", reasoning_effort: "max" }));
      assert.ok(r.sharedPrefixTokens > 20);
      assert.deepEqual(r.promptTokens.slice(0, r.sharedPrefixTokens), alone.slice(0, r.sharedPrefixTokens));
      assert.ok(r.sharedPrefixTokens >= alone.length - 1, "all of it, but perhaps a last token merged with what follows");
    });
  }

  test("other system prompts, a shared text in a user message, and raw token prompts share nothing", () => {
    assert.equal(resolve([{ role: "system", content: "Something else entirely." }, { role: "user", content: "hi" }]).sharedPrefixTokens, 0);
    assert.equal(resolve([{ role: "user", content: SYSTEM }]).sharedPrefixTokens, 0);
    assert.equal(resolve([{ role: "system", content: SYSTEM.slice(0, 40) }, { role: "user", content: "hi" }]).sharedPrefixTokens, 0, "a truncated shared text is not it");
    const raw = resolveRequest({ prompt_tokens: tok.encode(encodeMessages([{ role: "system", content: SYSTEM }])) }, { tokenizer: tok, contextLength: 100_000, vocabSize: tok.vocabSize, speculativeDefault: false, canSpeculate: false, sharedPrefixes: new SharedPrefixes([SYSTEM], tok) });
    assert.equal(raw.sharedPrefixTokens, 0);
  });

  test("text appended to the shared system prompt is never inside the shared part", () => {
    const r = resolve([{ role: "system", content: SYSTEM + "Secret: the launch code is 0000." }, { role: "user", content: "hi" }]);
    const alone = tok.encode(encodeMessages([{ role: "system", content: SYSTEM }], { thinking_mode: "thinking" }));
    assert.ok(r.sharedPrefixTokens > 0 && r.sharedPrefixTokens <= alone.length);
    assert.deepEqual(r.promptTokens.slice(0, r.sharedPrefixTokens), alone.slice(0, r.sharedPrefixTokens));
  });

  test("tenant and user_id both salt; a non-string tenant is refused", () => {
    const base = [{ role: "user" as const, content: "hi" }];
    assert.equal(resolve(base).cacheSalt, "");
    assert.equal(resolve(base, { tenant: "t1" }).cacheSalt, requestSalt("t1", ""));
    assert.equal(resolve(base, { tenant: "t1", user_id: "u" }).cacheSalt, requestSalt("t1", "u"));
    assert.throws(() => resolve(base, { tenant: 5 }), /tenant: must be a string/);
  });
});
