/** The server's pure parts: prices, keys, names, schema checks, JSON error positions. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { KeyRing, makeKey, presentedKey, readKeysFile } from "../../src/server/auth.js";
import { ApiError } from "../../src/server/errors.js";
import { jsonErrorOffset, lineColumn } from "../../src/server/json-error.js";
import { ModelNames } from "../../src/server/models.js";
import { checkTools } from "../../src/server/tool-schema.js";
import { DEFAULT_PRICES, parsePriceTable } from "../../src/server/prices.js";
import { costOf, toDeepSeekUsage } from "../../src/server/usage.js";

describe("usage and cost", () => {
  test("default prices are the model card's, with the cache-hit price of the spec", () => {
    assert.deepEqual(DEFAULT_PRICES, { cacheHitInput: 0.0028, cacheMissInput: 0.14, output: 0.28 });
    // 1M miss + 1M hit + 1M output
    assert.equal(costOf({ prompt_cache_hit_tokens: 1e6, prompt_cache_miss_tokens: 1e6, completion_tokens: 1e6 }, DEFAULT_PRICES), 0.4228);
    assert.equal(costOf({ prompt_cache_hit_tokens: 512, prompt_cache_miss_tokens: 703, completion_tokens: 85 }, DEFAULT_PRICES), 0.0001236536);
  });

  test("usage keeps DeepSeek's invariants and field order", () => {
    const u = toDeepSeekUsage(
      { prompt_tokens: 999, completion_tokens: 85, total_tokens: 0, prompt_cache_hit_tokens: 256, prompt_cache_miss_tokens: 50, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 31 } },
      DEFAULT_PRICES,
    );
    assert.deepEqual(Object.keys(u), ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details", "prompt_cache_hit_tokens", "prompt_cache_miss_tokens", "cost"]);
    assert.equal(u.prompt_tokens, 306);
    assert.equal(u.total_tokens, 391);
    assert.equal(u.prompt_tokens_details.cached_tokens, 256);
  });

  test("price tables: partial overrides, and bad values named", () => {
    assert.deepEqual(parsePriceTable({ output: 0.66 }), { ...DEFAULT_PRICES, output: 0.66 });
    assert.throws(() => parsePriceTable({ output: -1 }), /price "output"/);
    assert.throws(() => parsePriceTable({ input: 1 }), /unknown key "input"; the keys are cache_hit_input, cache_miss_input, output$/);
    assert.throws(() => parsePriceTable([]), /JSON object/);
  });
});

describe("API keys", () => {
  test("keys file: comments, balances, and errors with line numbers", () => {
    const dir = mkdtempSync(join(tmpdir(), "dsv4-keys-"));
    const file = join(dir, "keys");
    writeFileSync(file, "# team keys\nsk-one\nsk-two 5.5  # with a balance\n\n");
    const keys = readKeysFile(file);
    assert.equal(keys.length, 2);
    assert.equal(keys[1]!.balance, 5.5);
    assert.equal(keys[0]!.label, "…-one");
    writeFileSync(file, "sk-one\nsk-two lots\n");
    assert.throws(() => readKeysFile(file), /keys:2: balance must be/);
    writeFileSync(file, "# nothing\n");
    assert.throws(() => readKeysFile(file), /no API keys/);
  });

  test("lookup compares digests; bearer and x-api-key are both read", () => {
    const a = makeKey("sk-a");
    const b = makeKey("sk-b");
    const ring = new KeyRing([a, b]);
    assert.equal(ring.find("sk-b"), b);
    assert.equal(ring.find("sk-"), undefined);
    assert.equal(ring.find(undefined), undefined);
    assert.ok(!("key" in a), "the key itself is not kept");
    assert.equal(presentedKey({ authorization: "Bearer sk-a" }), "sk-a");
    assert.equal(presentedKey({ authorization: "bearer  sk-a " }), "sk-a");
    assert.equal(presentedKey({ "x-api-key": "sk-b" }), "sk-b");
    assert.equal(presentedKey({ authorization: "Basic xyz" }), undefined);
    assert.throws(() => makeKey("has space"), /whitespace/);
  });
});

describe("model names", () => {
  test("primary, aliases, and the Anthropic mapping", () => {
    const names = new ModelNames("deepseek-v4-flash", ["deepseek-v4-pro"]);
    assert.equal(names.resolve("deepseek-v4-pro"), "deepseek-v4-pro");
    assert.throws(() => names.resolve("deepseek-reasoner"), (e: unknown) => e instanceof ApiError && e.status === 400 && e.message === "Model Not Exist" && e.param === "model");
    assert.equal(names.resolveAnthropic("claude-opus-5"), "deepseek-v4-pro");
    assert.equal(names.resolveAnthropic("claude-haiku-5"), "deepseek-v4-flash");
    assert.deepEqual(names.list(), {
      object: "list",
      data: [
        { id: "deepseek-v4-flash", object: "model", owned_by: "deepseek" },
        { id: "deepseek-v4-pro", object: "model", owned_by: "deepseek" },
      ],
    });
  });
});

describe("tool schemas", () => {
  const fn = (parameters: unknown, strict?: boolean) => ({ type: "function", function: { name: "f", parameters: parameters as Record<string, unknown>, strict } });
  const param = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as ApiError).param;
    }
    return "no error";
  };

  /** The hosted service's strict-tool rules (--strict-api), under /beta and not. */
  const HOSTED_BETA = { beta: true, hostedRules: true };
  const HOSTED = { beta: false, hostedRules: true };

  test("strict mode (hosted rules): the documented subset, in /beta only", () => {
    const ok = { type: "object", properties: { a: { type: "string", format: "email" }, n: { type: "integer", minimum: 1 } }, required: ["a", "n"], additionalProperties: false };
    checkTools([fn(ok, true)], HOSTED_BETA);
    assert.equal(param(() => checkTools([fn(ok, true)], HOSTED)), "tools");
    assert.equal(param(() => checkTools([fn({ ...ok, required: ["a"] }, true)], HOSTED_BETA)), "tools[0].function.parameters.required");
    assert.equal(param(() => checkTools([fn({ ...ok, additionalProperties: true }, true)], HOSTED_BETA)), "tools[0].function.parameters.additionalProperties");
    assert.equal(param(() => checkTools([fn({ ...ok, properties: { ...ok.properties, a: { type: "string", minLength: 1 } } }, true)], HOSTED_BETA)), "tools[0].function.parameters.properties.a.minLength");
    assert.equal(param(() => checkTools([fn(ok, true), fn(ok)].map((t, i) => ({ ...t, function: { ...t.function, name: `f${i}` } })), HOSTED_BETA)), "tools[1].function.strict");
  });

  test("nested schemas are walked: anyOf, items, $defs", () => {
    assert.equal(param(() => checkTools([fn({ type: "object", properties: { a: { anyOf: [{ type: "string" }, { type: "bogus" }] } } })], HOSTED)), "tools[0].function.parameters.properties.a.anyOf[1].type");
    assert.equal(param(() => checkTools([fn({ type: "object", properties: { a: { type: "array", items: 5 } } })], HOSTED)), "tools[0].function.parameters.properties.a.items");
    assert.equal(param(() => checkTools([fn({ type: "object", $defs: { x: { type: "nope" } } })], HOSTED)), "tools[0].function.parameters.$defs.x.type");
  });
});

describe("JSON error positions", () => {
  test("the first invalid character, as line and column", () => {
    assert.equal(jsonErrorOffset('{"a": 1}'), -1);
    assert.equal(jsonErrorOffset('{"a": 1,}'), 8);
    assert.equal(jsonErrorOffset('{"a": tru}'), 6);
    assert.equal(jsonErrorOffset('{"a": "x'), 8);
    assert.equal(jsonErrorOffset("[1] 2"), 4);
    const text = '{\n  "a": [1,\n  }';
    assert.equal(lineColumn(text, jsonErrorOffset(text)), "line 3 column 3");
    assert.equal(jsonErrorOffset("[".repeat(20000)), 1001, "deep nesting stops, never overflows the stack");
  });
});

describe("tool schema depth", () => {
  test("absurd nesting is a 400, not a stack overflow", () => {
    let schema: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 5000; i++) schema = { type: "object", properties: { a: schema } };
    assert.throws(() => checkTools([{ type: "function", function: { name: "f", parameters: schema } }], { beta: false, hostedRules: false }), (e: unknown) => e instanceof ApiError && e.status === 400);
  });
});
