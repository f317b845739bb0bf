/** The router alone: affinity, the imbalance bound, power of two choices, replicas out of rotation. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { blockHashes } from "../../src/gateway/block-hashes.js";
import { Replica } from "../../src/gateway/replicas.js";
import { Router } from "../../src/gateway/router.js";

const prompt = (tenant: number, length: number) => Array.from({ length }, (_, i) => tenant * 100_000 + i);

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

test("block hashes cover whole blocks only, and equal prefixes hash equal", () => {
  assert.equal(blockHashes(prompt(1, 127), 64, "").length, 1);
  const a = blockHashes(prompt(1, 200), 64, "");
  const b = blockHashes([...prompt(1, 128), 7, 7, 7, 7], 64, "");
  assert.deepEqual(a.slice(0, 2), b.slice(0, 2));
  assert.notDeepEqual(blockHashes(prompt(1, 64), 64, "tenant-a"), blockHashes(prompt(1, 64), 64, "tenant-b"));
});

test("a prompt that extends a routed one goes to the same replica", () => {
  const replicas = [new Replica("a"), new Replica("b"), new Replica("c")];
  const router = new Router(replicas, { blockTokens: 64, random: seeded(1) });
  const first = router.route(prompt(1, 300), "")!;
  const next = router.route(prompt(1, 400), "")!;
  assert.equal(next.replica, first.replica);
  assert.equal(next.reason, "affinity");
  assert.equal(next.affinityBlocks, 4);
});

test("the preferred replica is skipped when its load exceeds 1.25 x mean + 1", () => {
  const replicas = [new Replica("a"), new Replica("b"), new Replica("c")];
  const router = new Router(replicas, { blockTokens: 64, random: seeded(2) });
  const home = router.route(prompt(1, 300), "")!.replica;
  home.inFlight = 6; // mean 2: bound 3.5
  const moved = router.route(prompt(1, 300), "")!;
  assert.notEqual(moved.replica, home);
  assert.equal(moved.reason, "balanced");
  // The prefix now lives on the replica it moved to too: that one is preferred from here on.
  assert.equal(router.route(prompt(1, 300), "")!.replica, moved.replica);
});

test("power of two choices picks the less loaded of two for a new prefix", () => {
  const replicas = [new Replica("a"), new Replica("b")];
  replicas[0]!.inFlight = 5;
  const router = new Router(replicas, { blockTokens: 64, random: seeded(3) });
  for (let t = 0; t < 10; t++) assert.equal(router.route(prompt(t + 10, 100), "")!.replica.url, "b");
});

test("replicas that are down or already tried are never chosen; none left is null", () => {
  const replicas = [new Replica("a"), new Replica("b")];
  const router = new Router(replicas, { blockTokens: 64 });
  replicas[0]!.markDown("test");
  assert.equal(router.route(prompt(1, 100), "")!.replica.url, "b");
  assert.equal(router.route(prompt(1, 100), "", new Set([replicas[1]!])), null);
});
