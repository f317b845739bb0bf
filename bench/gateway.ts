/**
 * `dsv4 bench gateway` (issue 16's figures):
 *  - overhead_p50_ms / overhead_p99_ms: the latency a non-streamed 1-token chat request gains
 *    through the gateway over the same request sent to its replica directly (one real `dsv4 serve`
 *    replica of the default model on loopback, in its own process as in a deployment, requests
 *    alternated so both see the same machine state): the gateway path's p50 (p99) latency minus
 *    the direct path's, as proxy benchmarks report added latency. overhead_paired_* are the
 *    percentiles of the per-pair differences instead: their p99 is mostly the spread of the
 *    replica's own runs (a 1-token request varies by 10 ms at p99 on this 2-core machine), which
 *    the `Server-Timing: engine;dur` both paths answer with lets one tell apart. The load average
 *    is reported beside, since on a busy machine the p99 is the scheduler's;
 *  - hit_ratio_vs_pinned / hit_ratio_vs_round_robin / max_replica_load_share: the multi-tenant
 *    agent trace (16 tenants, each a 20-step tool loop, steps of different tenants arriving in
 *    random order, 4 replicas), routed by the gateway's Router, by pinning each tenant to one
 *    replica, and round-robin over requests in arrival order. No model runs here: each replica's
 *    prefix cache is simulated as an LRU of block hashes of fixed capacity (a hit is the longest
 *    cached run of the prompt's leading blocks), and a request stays in flight on its replica
 *    for a random 2-6 arrivals, so the router sees load. The ratios are of hit tokens.
 *  - overspend_usd / ledger_sum_equals_usage: 64 concurrent requests through a gateway on one key
 *    whose budget covers 3.5 requests' worst case (gateway-budget.ts), with the embedded PGlite
 *    and, given --database postgres://…, with that PostgreSQL; the worst run of each is reported.
 *
 * Run: `dsv4 bench gateway [--json] [--requests N] [--database postgres://…]`.
 */
import { pathToFileURL } from "node:url";
import { blockHashes } from "../src/gateway/block-hashes.js";
import { startGateway } from "../src/gateway/index.js";
import { Replica } from "../src/gateway/replicas.js";
import { Router } from "../src/gateway/router.js";
import { ensureDefaultModel } from "../src/cli/default-model.js";
import { Engine } from "../src/engine/engine.js";
import { startServer } from "../src/server/index.js";
import { availableParallelism, loadavg } from "node:os";
import { budgetRun, type BudgetRun } from "./gateway-budget.js";
import { failoverRun, type FailoverRun } from "./gateway-failover.js";
import { startReplicaProcess } from "./replica-process.js";

export interface GatewayBenchResult {
  overhead_p50_ms: number;
  overhead_p99_ms: number;
  /** Percentiles of the per-pair latency differences. */
  overhead_paired_p50_ms: number;
  overhead_paired_p99_ms: number;
  direct_p50_ms: number;
  /** The 1-minute load average and core count when the overhead was measured. */
  load_average: number;
  cpus: number;
  hit_ratio_vs_pinned: number;
  hit_ratio_vs_round_robin: number;
  max_replica_load_share: number;
  /** The largest spend beyond a key's budget over the budget runs (must be 0). */
  overspend_usd: number;
  /** Requests sent after a replica crashed that succeeded elsewhere, over those sent (goal 1). */
  failover_success: number;
  failover: FailoverRun;
  /** Every run's ledger sum equals the sum of its responses' usage.cost. */
  ledger_sum_equals_usage: boolean;
  budget_runs: BudgetRun[];
  trace: { tenants: number; steps: number; replicas: number; block_tokens: number; cache_blocks_per_replica: number; hit_tokens: { gateway: number; pinned: number; round_robin: number } };
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/** Per-tenant prompts: a 2,000-token system prompt and tools, then per step a call (60) and its result (250). */
function tenantPrompt(tenant: number, step: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < 2000; i++) ids.push(tenant * 1_000_000 + i);
  for (let s = 0; s < step; s++) for (let i = 0; i < 310; i++) ids.push(tenant * 1_000_000 + 100_000 + s * 1000 + i);
  return ids;
}

class LruBlocks {
  private readonly set = new Map<string, true>();
  constructor(private readonly capacity: number) {}
  /** Leading blocks present, then all of them inserted (most recent last). */
  serve(hashes: readonly string[]): number {
    let hit = 0;
    while (hit < hashes.length && this.set.has(hashes[hit]!)) hit++;
    for (const h of hashes) {
      this.set.delete(h);
      this.set.set(h, true);
    }
    while (this.set.size > this.capacity) this.set.delete(this.set.keys().next().value!);
    return hit;
  }
}

type Strategy = "gateway" | "pinned" | "round_robin";

function simulate(strategy: Strategy, o: { tenants: number; steps: number; replicas: number; blockTokens: number; capacity: number; seed: number }) {
  const random = seeded(o.seed);
  const replicas = Array.from({ length: o.replicas }, (_, i) => new Replica(`r${i}`));
  const router = new Router(replicas, { blockTokens: o.blockTokens, random: seeded(o.seed + 1) });
  const caches = replicas.map(() => new LruBlocks(o.capacity));
  const next = new Array<number>(o.tenants).fill(0);
  const busyUntil = new Array<number>(o.tenants).fill(0);
  const inFlight: Array<{ replica: Replica; until: number }> = [];
  const served = new Array<number>(o.replicas).fill(0);
  let hitTokens = 0;
  let rr = 0;
  for (let clock = 0; next.some((n) => n < o.steps); clock++) {
    for (let i = inFlight.length - 1; i >= 0; i--) {
      if (inFlight[i]!.until <= clock) {
        inFlight[i]!.replica.inFlight--;
        inFlight.splice(i, 1);
      }
    }
    // A random tenant whose previous step has finished sends its next one (arrival order is random).
    const ready = next.map((n, t) => t).filter((t) => next[t]! < o.steps && busyUntil[t]! <= clock);
    if (ready.length === 0) continue;
    const t = ready[Math.floor(random() * ready.length)]!;
    const ids = tenantPrompt(t, next[t]!);
    const index = strategy === "pinned" ? t % o.replicas : strategy === "round_robin" ? rr++ % o.replicas : replicas.indexOf(router.route(ids, String(t))!.replica);
    const replica = replicas[index]!;
    hitTokens += caches[index]!.serve(blockHashes(ids, o.blockTokens, String(t))) * o.blockTokens;
    served[index]!++;
    const until = clock + 2 + Math.floor(random() * 5);
    replica.inFlight++;
    inFlight.push({ replica, until });
    busyUntil[t] = until;
    next[t]!++;
  }
  const total = served.reduce((a, b) => a + b, 0);
  return { hitTokens, maxShare: Math.max(...served) / total };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function overhead(requests: number): Promise<{ p50: number; p99: number; pairedP50: number; pairedP99: number; direct: number }> {
  const { dir } = await ensureDefaultModel();
  const replica = await startReplicaProcess();
  const gateway = await startGateway({ upstreams: [replica.url], modelDir: dir, port: 0 });
  try {
    const time = async (url: string, i: number) => {
      const body = JSON.stringify({ model: "deepseek-v4-flash", messages: [{ role: "user", content: `Ping ${i % 4}` }], thinking: { type: "disabled" }, max_tokens: 1, seed: 1 });
      const t0 = performance.now();
      const res = await fetch(`${url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      await res.text();
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      return performance.now() - t0;
    };
    for (let i = 0; i < 20; i++) (await time(replica.url, i), await time(gateway.url, i));
    const direct: number[] = [];
    const through: number[] = [];
    for (let i = 0; i < requests; i++) {
      direct.push(await time(replica.url, i));
      through.push(await time(gateway.url, i));
    }
    const paired = through.map((g, i) => g - direct[i]!);
    return {
      p50: percentile(through, 50) - percentile(direct, 50),
      p99: percentile(through, 99) - percentile(direct, 99),
      pairedP50: percentile(paired, 50),
      pairedP99: percentile(paired, 99),
      direct: percentile(direct, 50),
    };
  } finally {
    await gateway.close();
    await replica.close();
  }
}

async function budgetRuns(database: string | undefined): Promise<BudgetRun[]> {
  const { dir } = await ensureDefaultModel();
  const engine = await Engine.load(dir, { speculative: { enabled: false } });
  const replica = await startServer({ engine, port: 0 });
  try {
    const runs = [await budgetRun("pglite:memory", replica.url, dir)];
    if (database !== undefined) runs.push(await budgetRun(database, replica.url, dir));
    return runs;
  } finally {
    await replica.close();
    await engine.dispose();
  }
}

export async function runGatewayBench(opts: { requests?: number; database?: string } = {}): Promise<GatewayBenchResult> {
  // Each replica's cache holds about four tenants' full contexts (2,000 + 19 × 310 ≈ 7,900 tokens each).
  const trace = { tenants: 16, steps: 20, replicas: 4, blockTokens: 128, capacity: Math.floor((4 * 8000) / 128), seed: 7 };
  const g = simulate("gateway", trace);
  const p = simulate("pinned", trace);
  const r = simulate("round_robin", trace);
  const o = await overhead(opts.requests ?? 400);
  const load = loadavg()[0]!;
  const budgets = await budgetRuns(opts.database);
  const failover = await failoverRun();
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    overhead_p50_ms: round(o.p50),
    overhead_p99_ms: round(o.p99),
    overhead_paired_p50_ms: round(o.pairedP50),
    overhead_paired_p99_ms: round(o.pairedP99),
    direct_p50_ms: round(o.direct),
    load_average: round(load),
    cpus: availableParallelism(),
    hit_ratio_vs_pinned: round(g.hitTokens / p.hitTokens),
    hit_ratio_vs_round_robin: round(g.hitTokens / r.hitTokens),
    max_replica_load_share: round(g.maxShare),
    overspend_usd: Math.max(...budgets.map((b) => b.overspend_usd)),
    ledger_sum_equals_usage: budgets.every((b) => b.ledger_sum_equals_usage),
    failover_success: failover.failover_success,
    failover,
    budget_runs: budgets,
    trace: { tenants: trace.tenants, steps: trace.steps, replicas: trace.replicas, block_tokens: trace.blockTokens, cache_blocks_per_replica: trace.capacity, hit_tokens: { gateway: g.hitTokens, pinned: p.hitTokens, round_robin: r.hitTokens } },
  };
}

export function printGatewayTable(r: GatewayBenchResult): void {
  const rows: Array<[string, string]> = [
    ["overhead p50 / p99 (ms)", `${r.overhead_p50_ms} / ${r.overhead_p99_ms} (per-pair differences ${r.overhead_paired_p50_ms} / ${r.overhead_paired_p99_ms}; direct p50 ${r.direct_p50_ms}; load ${r.load_average} on ${r.cpus} cores)`],
    ["hit tokens vs pinned", String(r.hit_ratio_vs_pinned)],
    ["hit tokens vs round-robin", String(r.hit_ratio_vs_round_robin)],
    ["max replica load share", String(r.max_replica_load_share)],
    ["failover", `${r.failover.failover_success * r.failover.failover_requests} of ${r.failover.failover_requests} requests after a replica crash succeeded; ${r.failover.failover_streams_interrupted} running stream(s) on it, ${(r.failover.failover_streams_clean * 100).toFixed(0)}% ended with an error event`],
    ...r.budget_runs.map((b): [string, string] => [
      `budget, ${b.backend}`,
      `64 concurrent: ${b.served} served, ${b.refused_402} got 402; spent $${b.spent_usd.toFixed(9)} of $${b.budget_usd.toFixed(9)}, overspend $${b.overspend_usd}, ledger = responses: ${b.ledger_sum_equals_usage}`,
    ]),
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(28)}${v}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await runGatewayBench();
  process.stdout.write(JSON.stringify(result) + "\n");
}
