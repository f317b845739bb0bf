import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { blockSalts, requestSalt, saltOfBlock } from "../../src/engine/cache-salt.js";
import { PrefixCache } from "../../src/engine/prefix-cache.js";
import { promptIds } from "./helpers.js";

const cache = () => new PrefixCache({ identity: "i".repeat(64), blockTokens: 16, memoryBytes: 1 << 20, diskBytes: 0 });

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
      c.put(plan.capture, end, { length: end, mtpLength: 0, layers: [], mtp: [] });
      anchor = plan.anchor;
    }
    assert.equal(c.lookup(tokens, tenantA).tokens, 64);
    assert.equal(c.lookup(tokens, { sharedTokens: 32, salt: requestSalt("b", "") }).tokens, 32, "only the shared blocks");
    assert.equal(c.lookup(tokens, requestSalt("b", "")).tokens, 0, "nothing without the shared prefix");
    assert.equal(c.lookup(tokens, { sharedTokens: 32, salt: requestSalt("a", "u1") }).tokens, 32, "user_id isolates within a tenant");
  });
});
