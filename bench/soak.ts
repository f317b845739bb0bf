/**
 * `npm run soak`: N streaming clients against a real `dsv4 serve` (its own process, so its
 * memory is measured alone) for R rounds of S seconds. A third of the clients leave early,
 * half of those mid-stream and half while their request may still be queued. After each
 * round it reports: stuck requests (a stream that never ended), 5xx answers, whether
 * /metrics returned to idle (no active, queued or reader-blocked sequences, no request in
 * flight), the server's RSS, and the
 * cancellation latency (from a client leaving to the engine counting the cancel, which
 * is when the sequence's slot and state are freed).
 *
 *   npm run soak -- [--clients 64] [--rounds 3] [--seconds 30] [--model DIR] [--max-tokens 256]
 *
 * Goals (the closing line says which held): 0 stuck, 0 5xx, idle after every round, RSS
 * growth < 10% over the last round, every abandoned stream stopped within 1 s.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { seededRandom } from "../src/text/seeded-random.js";

const { values: opts } = parseArgs({
  options: {
    clients: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "30" },
    model: { type: "string" },
    "max-tokens": { type: "string", default: "256" },
    port: { type: "string", default: "0" },
    "stuck-after": { type: "string", default: "60" },
  },
});
const CLIENTS = Number(opts.clients);
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
const MAX_TOKENS = Number(opts["max-tokens"]);
/** A stream not ended this many seconds after its round is stuck. */
const STUCK_AFTER_S = Number(opts["stuck-after"]);
const cli = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "main.js");

const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const args = [cli, "serve", "--port", opts.port!, ...(opts.model ? ["--model", opts.model] : [])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const started = now();
  for (;;) {
    const m = /http:\/\/[\d.]+:\d+/.exec(out);
    if (m) {
      const url = m[0];
      return {
        url,
        pid: child.pid!,
        stop: () => new Promise((r) => {
          child.once("exit", () => r());
          child.kill("SIGINT");
        }),
      };
    }
    if (child.exitCode !== null) throw new Error(`dsv4 serve exited (${child.exitCode}): ${out}`);
    if (now() - started > 300_000) throw new Error(`dsv4 serve did not start: ${out}`);
    await sleep(100);
  }
}

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;

async function metrics(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^dsv4_(\w+)(?:\{[^}]*\})? ([\d.e+-]+)$/.exec(line);
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  }
  return out;
}

interface RoundStats {
  requests: number;
  completed: number;
  left: number;
  status5xx: number;
  otherErrors: number;
  stuck: number;
  aborts: number[];
  /** Where each stuck request was: waiting for the head, or reading the body (chunks so far). */
  stuckAt: string[];
}

type Behaviour = "stay" | "leave-mid-stream" | "leave-queued";

/** One streaming request; resolves when it ended (or was abandoned). */
async function oneRequest(url: string, behaviour: Behaviour, r: () => number, stats: RoundStats, progress: { at: string }): Promise<void> {
  const ac = new AbortController();
  const body = {
    model: "deepseek-v4-flash",
    messages: [{ role: "user", content: `soak ${Math.floor(r() * 1e9)}: tell me a story about the number ${Math.floor(r() * 1000)}` }],
    max_tokens: behaviour === "stay" ? 8 + Math.floor(r() * 56) : MAX_TOKENS,
    stream: true,
    thinking: { type: "disabled" },
  };
  stats.requests++;
  const leaveAfterMs = 20 + r() * 300;
  const leaveAfterChunks = 2 + Math.floor(r() * 6);
  let timer: NodeJS.Timeout | undefined;
  const abort = () => {
    if (ac.signal.aborted) return;
    stats.aborts.push(now());
    stats.left++;
    ac.abort();
  };
  try {
    progress.at = "waiting for the response head";
    const res = await fetch(`${url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: ac.signal });
    // Leaving "while queued": soon after the head, so the server surely holds the request, most
    // often before its first token (64 clients share 16 sequence slots).
    if (behaviour === "leave-queued") timer = setTimeout(abort, leaveAfterMs);
    if (res.status >= 500) stats.status5xx++;
    else if (res.status !== 200) stats.otherErrors++;
    const reader = res.body!.getReader();
    let chunks = 0;
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString("utf8");
      chunks += (text.match(/\n\n/g) ?? []).length;
      progress.at = `reading the body (${chunks} events${text.includes("[DONE]") ? ", [DONE] seen" : ""})`;
      text = text.slice(text.lastIndexOf("\n\n") + 2);
      if (behaviour === "leave-mid-stream" && chunks >= leaveAfterChunks) {
        abort();
        return;
      }
    }
    if (!ac.signal.aborted) stats.completed++;
  } catch (err) {
    if (!ac.signal.aborted) stats.otherErrors++;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function round(url: string, pid: number, index: number): Promise<Record<string, unknown>> {
  const stats: RoundStats = { requests: 0, completed: 0, left: 0, status5xx: 0, otherErrors: 0, stuck: 0, aborts: [], stuckAt: [] };
  const before = await metrics(url);
  const cancelSeen: number[] = [];
  let polling = true;
  const poller = (async () => {
    let last = before.requests_cancelled_total ?? 0;
    while (polling) {
      const m = await metrics(url).catch(() => null);
      const t = now();
      if (m) {
        const c = m.requests_cancelled_total ?? 0;
        for (; last < c; last++) cancelSeen.push(t);
      }
      await sleep(25);
    }
  })();
  const end = now() + SECONDS * 1000;
  const clients = Array.from({ length: CLIENTS }, (_, c) => (async () => {
    const r = seededRandom(index * 1000 + c);
    const behaviour: Behaviour = c % 3 !== 2 ? "stay" : c % 6 === 2 ? "leave-mid-stream" : "leave-queued";
    while (now() < end) {
      const progress = { at: "starting" };
      const p = oneRequest(url, behaviour, r, stats, progress);
      const outcome = await Promise.race([p.then(() => "done"), sleep(Math.max(0, end - now()) + STUCK_AFTER_S * 1000).then(() => "stuck")]);
      if (outcome === "stuck") {
        stats.stuck++;
        stats.stuckAt.push(`${behaviour}: ${progress.at}`);
        return;
      }
    }
  })());
  await Promise.all(clients);
  // Idle: no active or queued sequences within 10 s of the last client finishing.
  let idle = false;
  let after: Record<string, number> = {};
  const idleBy = now() + 10_000;
  while (now() < idleBy) {
    after = await metrics(url);
    // In flight: just this /metrics request.
    if (after.active_sequences === 0 && after.queue_depth === 0 && after.reader_blocked_sequences === 0 && after.http_requests_in_flight! <= 1) {
      idle = true;
      break;
    }
    await sleep(100);
  }
  await sleep(200);
  polling = false;
  await poller;
  // The k-th cancel the engine counted belongs to the k-th client that left (both in arrival order).
  const latencies = cancelSeen.slice(0, stats.aborts.length).map((t, k) => t - stats.aborts.sort((a, b) => a - b)[k]!);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!) : null);
  return {
    round: index + 1,
    requests: stats.requests,
    completed: stats.completed,
    left_early: stats.left,
    cancels_counted: cancelSeen.length,
    status_5xx: stats.status5xx,
    other_errors: stats.otherErrors,
    stuck: stats.stuck,
    ...(stats.stuck > 0 ? { stuck_at: stats.stuckAt } : {}),
    idle_after: idle,
    active_sequences_after: after.active_sequences ?? null,
    queued_after: after.queue_depth ?? null,
    http_in_flight_after: (after.http_requests_in_flight ?? 1) - 1,
    state_bytes_after: after.state_bytes ?? null,
    rss_mib: Math.round(rssBytes(pid) / 2 ** 20),
    cancel_latency_ms: { p50: pct(0.5), p99: pct(0.99), max: latencies.length ? Math.round(latencies[latencies.length - 1]!) : null },
  };
}

async function main(): Promise<void> {
  const server = await startServer();
  process.stderr.write(`soak: ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s against ${server.url} (pid ${server.pid})\n`);
  const rounds: Array<Record<string, any>> = [];
  try {
    const rss0 = Math.round(rssBytes(server.pid) / 2 ** 20);
    process.stderr.write(`soak: server RSS at start ${rss0} MiB\n`);
    for (let i = 0; i < ROUNDS; i++) {
      const r = await round(server.url, server.pid, i);
      rounds.push(r);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  } finally {
    await server.stop();
  }
  const last = rounds[rounds.length - 1]!;
  const prev = rounds.length > 1 ? rounds[rounds.length - 2]! : null;
  const growth = prev ? (last.rss_mib - prev.rss_mib) / prev.rss_mib : null;
  const maxCancel = Math.max(...rounds.map((r) => r.cancel_latency_ms.max ?? 0));
  const goals = {
    stuck: rounds.reduce((n, r) => n + r.stuck, 0) === 0,
    no_5xx: rounds.reduce((n, r) => n + r.status_5xx, 0) === 0,
    idle_after_each_round: rounds.every((r) => r.idle_after),
    rss_growth_last_round_below_10pct: growth === null || growth < 0.1,
    cancel_within_1s: maxCancel < 1000,
  };
  const summary = { clients: CLIENTS, rounds: ROUNDS, seconds: SECONDS, rss_growth_last_round: growth === null ? null : `${(growth * 100).toFixed(1)}%`, max_cancel_latency_ms: maxCancel, goals };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.stderr.write(`soak: ${Object.values(goals).every(Boolean) ? "every goal held" : `goals missed: ${Object.entries(goals).filter(([, v]) => !v).map(([k]) => k).join(", ")}`}\n`);
  process.exitCode = Object.values(goals).every(Boolean) ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
