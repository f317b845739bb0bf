/**
 * One test suite for every ledger backend (memory, PGlite, Postgres): keys, budgets held
 * atomically under concurrency, settlement, the rows. Each test makes its own keys, so one
 * database serves the whole suite.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { seededKeyId } from "../../src/ledger/key-material.js";
import type { Ledger, UsageRecord } from "../../src/ledger/types.js";

let serial = 0;
export function record(keyId: string, costUsd: number, extra: Partial<UsageRecord> = {}): UsageRecord {
  serial++;
  return {
    requestId: `req-${serial}`, keyId, created: 1_790_000_000 + serial, model: "deepseek-v4-flash", promptTokens: 100, promptCacheHitTokens: 40,
    completionTokens: 7, costUsd, latencyMs: 12.5, upstream: null, finishReason: "stop", ...extra,
  };
}

export function ledgerSuite(name: string, open: () => Promise<Ledger>): void {
  describe(`ledger: ${name}`, () => {
    let ledger: Ledger;
    before(async () => {
      ledger = await open();
    });
    after(() => ledger?.close());
    const budgeted = async (budgetUsd: number | null) => (await ledger.createKey({ name: `k${++serial}`, budgetUsd })).key;

    test("a created key is returned once in plain text; the ledger keeps only its sha256", async () => {
      const { key, plain } = await ledger.createKey({ name: "alice" });
      assert.match(plain, /^sk-[0-9a-f]{48}$/);
      assert.equal(key.digest, createHash("sha256").update(plain).digest("hex"));
      const listed = (await ledger.listKeys()).find((k) => k.id === key.id)!;
      assert.ok(!JSON.stringify(listed).includes(plain));
      assert.equal(listed.name, "alice");
      assert.equal(listed.budgetUsd, null);
    });

    test("a key is found by id or by name", async () => {
      const { key } = await ledger.createKey({ name: `named-${serial}` });
      assert.equal((await ledger.findKey(key.id))?.id, key.id);
      assert.equal((await ledger.findKey(key.name!))?.id, key.id);
      assert.equal(await ledger.findKey("key_nonexistent"), undefined);
    });

    test("creating a key that exists is refused", async () => {
      const plain = `sk-dup-${serial++}-${Date.now()}`;
      await ledger.createKey({ plain });
      await assert.rejects(ledger.createKey({ plain }), /already exists/);
    });

    test("seeding is idempotent and sets the budget only when the seed has one", async () => {
      const plain = `sk-seed-${serial++}-${Date.now()}`;
      const seed = { id: seededKeyId(plain), digest: createHash("sha256").update(plain).digest("hex"), tenant: "t".repeat(32) };
      const first = await ledger.seedKey({ ...seed, budgetUsd: 2 });
      assert.equal(first.id, seededKeyId(plain));
      assert.equal(first.budgetUsd, 2);
      assert.equal((await ledger.seedKey(seed)).budgetUsd, 2);
      assert.equal((await ledger.seedKey({ ...seed, budgetUsd: 0.5 })).budgetUsd, 0.5);
      assert.equal((await ledger.listKeys()).filter((k) => k.digest === seed.digest).length, 1);
    });

    test("a reservation that fits the budget exactly is held; one more is refused", async () => {
      const key = await budgeted(0.3);
      assert.equal((await ledger.reserve(key.id, 0.1)).ok, true);
      assert.equal((await ledger.reserve(key.id, 0.2)).ok, true);
      assert.deepEqual(await ledger.reserve(key.id, 1e-12), { ok: false, reason: "insufficient_balance" });
      assert.equal((await ledger.findKey(key.id))!.reservedUsd, 0.3);
    });

    test("64 concurrent reservations never hold more than the budget", async () => {
      const key = await budgeted(5 * 0.0123);
      const outcomes = await Promise.all(Array.from({ length: 64 }, () => ledger.reserve(key.id, 0.0123)));
      assert.equal(outcomes.filter((o) => o.ok).length, 5);
      assert.ok(outcomes.filter((o) => !o.ok).every((o) => !o.ok && o.reason === "insufficient_balance"));
      const account = (await ledger.findKey(key.id))!;
      assert.ok(Math.abs(account.reservedUsd - 5 * 0.0123) < 1e-12);
    });

    test("64 concurrent reserve-then-settle requests never spend more than the budget", async () => {
      const key = await budgeted(0.05);
      const run = async (i: number) => {
        const held = await ledger.reserve(key.id, 0.01);
        if (!held.ok) return 0;
        const cost = 0.004 + (i % 3) * 0.001;
        await ledger.settle(held.reservationId, record(key.id, cost));
        return cost;
      };
      const charged = (await Promise.all(Array.from({ length: 64 }, (_, i) => run(i)))).reduce((a, b) => a + b, 0);
      const account = (await ledger.findKey(key.id))!;
      assert.ok(account.spentUsd <= 0.05, `spent ${account.spentUsd} of 0.05`);
      assert.equal(account.reservedUsd, 0);
      assert.ok(Math.abs(account.spentUsd - charged) < 1e-12);
    });

    test("settling moves the cost to spent, releases the rest of the hold and writes one row", async () => {
      const key = await budgeted(1);
      const held = await ledger.reserve(key.id, 0.5);
      assert.ok(held.ok);
      await ledger.settle(held.reservationId, record(key.id, 0.000123456789, { upstream: "http://r1:8000", finishReason: "length", requestId: "the-id" }));
      const account = (await ledger.findKey(key.id))!;
      assert.equal(account.spentUsd, 0.000123456789);
      assert.equal(account.reservedUsd, 0);
      assert.equal(account.requests, 1);
      const [row] = await ledger.recent({ keyId: key.id });
      assert.deepEqual({ ...row, created: 0 }, { ...record(key.id, 0.000123456789, { upstream: "http://r1:8000", finishReason: "length", requestId: "the-id" }), created: 0 });
    });

    test("settling a reservation twice writes one row", async () => {
      const key = await budgeted(null);
      const held = await ledger.reserve(key.id, 0);
      assert.ok(held.ok);
      await ledger.settle(held.reservationId, record(key.id, 0.01));
      await ledger.settle(held.reservationId, record(key.id, 0.01));
      assert.equal((await ledger.recent({ keyId: key.id })).length, 1);
      assert.equal((await ledger.findKey(key.id))!.spentUsd, 0.01);
    });

    test("the ledger's sum equals the sum of the costs settled, to the last of 12 decimals", async () => {
      const key = await budgeted(null);
      const costs = Array.from({ length: 40 }, (_, i) => Math.round((0.1 + i * 0.000000314159) * 1e12) / 1e12);
      for (const c of costs) {
        const held = await ledger.reserve(key.id, 0);
        assert.ok(held.ok);
        await ledger.settle(held.reservationId, record(key.id, c));
      }
      const exact = costs.reduce((a, c) => a + BigInt(Math.round(c * 1e12)), 0n);
      assert.equal(await ledger.totalCostUsd(key.id), Number(exact) / 1e12);
    });

    test("a disabled key cannot reserve", async () => {
      const key = await budgeted(null);
      assert.equal(await ledger.disableKey(key.id), true);
      assert.deepEqual(await ledger.reserve(key.id, 0), { ok: false, reason: "disabled" });
      assert.equal((await ledger.findKey(key.id))!.disabled, true);
    });

    test("a budget can be raised, lowered or removed", async () => {
      const key = await budgeted(0);
      assert.equal((await ledger.reserve(key.id, 0.01)).ok, false);
      assert.equal(await ledger.setBudget(key.id, 0.01), true);
      assert.equal((await ledger.reserve(key.id, 0.01)).ok, true);
      assert.equal(await ledger.setBudget(key.id, null), true);
      assert.equal((await ledger.reserve(key.id, 1000)).ok, true);
      assert.equal(await ledger.setBudget("key_missing", 1), false);
    });

    test("rows come newest first, limited", async () => {
      const key = await budgeted(null);
      for (let i = 0; i < 3; i++) {
        const held = await ledger.reserve(key.id, 0);
        assert.ok(held.ok);
        await ledger.settle(held.reservationId, record(key.id, 0.001, { requestId: `order-${i}` }));
      }
      assert.deepEqual((await ledger.recent({ keyId: key.id, limit: 2 })).map((r) => r.requestId), ["order-2", "order-1"]);
    });

    test("holds older than the limit are released (a process died mid-request)", async () => {
      const key = await budgeted(1);
      assert.equal((await ledger.reserve(key.id, 0.4)).ok, true);
      await new Promise((r) => setTimeout(r, 20));
      assert.ok((await ledger.releaseStale(0.01)) >= 1);
      assert.equal((await ledger.findKey(key.id))!.reservedUsd, 0);
    });
  });
}
