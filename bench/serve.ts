/**
 * Serving benchmark (issue 11): the real HTTP server on a generated checkpoint (default
 * flash-slice: real V4-Flash dimensions, 2 layers), driven over HTTP the way clients use it
 * (streamed /chat/completions, thinking disabled, greedy), measuring what a deployment feels:
 *
 *  - health_p99_ms: GET /health every ~20 ms (from a separate process, one at a time, the
 *    intervals a slow answer skipped counted as the probes they would have been) while a
 *    long prompt is prefilled next to running decode streams;
 *  - itl_ratio: those streams' inter-token latency while the prompt is prefilled (p99) over
 *    their idle ITL (p50), per token: a chunk's gap shared by the tokens it carries (the
 *    streams ask for vLLM's continuous usage stats), so that a token whose text the server
 *    holds back (half a UTF-8 character, frequent in a random-weight model's output) is not
 *    counted as a stall. The per-chunk figures (vLLM's bench convention) are reported beside;
 *  - engine_prefill_vs_model: prompt tokens/s through the server for the long prompt alone
 *    (time to its first token) over one model forward of the same length (bench decode);
 *  - throughput_tok_s at 1/4/16/64 concurrent streams, and each decode step's time against
 *    its roofline (distinct weight bytes / memory bandwidth, FLOPs / GEMM peak);
 *  - paused_reader_heap_growth_mib: heap growth while one client stops reading its stream.
 *
 * Every figure comes with its goal in `goals`. Only the public engine and server API is used
 * (Engine.load, engine.promptTokens, startServer, HTTP), plus a separately loaded model for
 * counting the weight bytes and FLOPs of a decode step.
 *
 * Run: `dsv4 bench serve [--preset NAME] [--backend NAME] [--quick] [--json] ...` or
 * `node --expose-gc dist/bench/serve.js ...` (same flags; listed in `dsv4 bench --help`).
 */
import { fork } from "node:child_process";
import { connect, type Socket } from "node:net";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Engine } from "../src/engine/engine.js";
import type { GenerateRequest } from "../src/engine/types.js";
import type { MatrixHandle } from "../src/kernels/backend.js";
import { createBackend } from "../src/kernels/index.js";
import { nativeAddon } from "../src/kernels/native/addon.js";
import { Dsv4Model } from "../src/model/transformer.js";
import { loadEngineForBench } from "./locked-load.js";
import { startServer } from "../src/server/index.js";
import { cachedPreset } from "./checkpoints.js";
import { runDecodeBench } from "./decode.js";
import { measureGemmPeak } from "./kernels.js";
import { observeBackend, productsOf } from "./observe.js";
import type { ProbeSample } from "./serve-probe.js";

export interface ServeBenchOptions {
  preset?: string;
  backend?: string;
  /** Smaller everything: 1,024-token prompt, 4 streams, 16 tokens per throughput stream, 5 s paused. */
  quick?: boolean;
  /** Target length of the long prompts, in prompt tokens (4096; quick 1024). */
  promptTokens?: number;
  /** Decode streams running while the long prompt is prefilled (16; quick 4). */
  streams?: number;
  /** Concurrent streams of the throughput rows (1, 4, 16, 64). */
  concurrency?: number[];
  /** max_tokens of each throughput stream (32; quick 16); a single stream's is 4x that. */
  maxTokens?: number;
  /** Tokens every stream decodes in the idle ITL window before the long prompt arrives (8; quick 4). */
  idleTokens?: number;
  /** Interval of the /health probes (20 ms). */
  healthIntervalMs?: number;
  /** How long the paused client stays paused, and the baseline window before it (30 s; quick 5 s). */
  pausedSeconds?: number;
  /** Streams running beside the paused client (4). */
  pausedStreams?: number;
  /** Bandwidth probe buffer (1 GiB; quick 256 MiB). */
  probeBytes?: number;
  /**
   * Only the throughput rows and their rooflines (`--throughput-only`): the /health, ITL,
   * prefill and paused-reader phases are skipped and their figures are NaN (goals not met).
   */
  throughputOnly?: boolean;
  log?: (line: string) => void;
}

export interface Stats {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  count: number;
}

export interface RooflineRow {
  concurrency: number;
  /** Distinct weight bytes one decode step of this many rows reads, counted on an instrumented forward. */
  weight_bytes: number;
  /** The same with the uniform-routing expectation for the routed experts: E·(1−(1−k/E)^N) per MoE layer. */
  weight_bytes_expected: number;
  /** Distinct routed experts per MoE layer in the counted step (mean over layers) and the expectation. */
  experts_per_layer: number;
  experts_per_layer_expected: number;
  /** 2 · rows · parameters of every product in the step. */
  flops: number;
  memory_ms: number;
  compute_ms: number;
  roofline_ms: number;
  /** Server decode step time at this concurrency (throughput window / decode steps in it). */
  measured_step_ms: number;
  fraction_of_roofline: number;
}

export interface Goal {
  value: number | null;
  goal: string;
  met: boolean;
}

export interface ServeBenchResult {
  preset: string;
  backend: string;
  quick: boolean;
  params: {
    prompt_tokens: number; streams: number; concurrency: number[]; max_tokens: number; idle_tokens: number;
    health_interval_ms: number; paused_seconds: number; paused_streams: number;
    /** The engine's maxConcurrentSequences (raised to the largest concurrency); prefix cache and MTP speculation off. */
    max_running: number;
  };
  health_p50_ms: number;
  health_p99_ms: number;
  health_max_ms: number;
  /** Probe intervals in the prefill, counting those a slow answer skipped (see withSkippedProbes)... */
  health_count: number;
  /** …and the probes actually sent in it. */
  health_probes_sent: number;
  /** /health while the streams decode and nothing is being prefilled, for comparison. */
  health_idle: Stats;
  itl_p50_idle_ms: number;
  itl_p99_idle_ms: number;
  itl_p50_during_prefill_ms: number;
  itl_p99_during_prefill_ms: number;
  itl_ratio: number;
  itl_samples: { idle: number; during_prefill: number };
  /** The same per chunk (each chunk's gap one sample, whatever it carries), as vLLM's bench counts. */
  itl_chunk: { p50_idle_ms: number; p99_during_prefill_ms: number; ratio: number };
  /** Of the streams' tokens in both windows, the share that reached the client in a chunk with others (text held back). */
  held_back_token_share: number;
  /** The long prompt beside the streams: its length and time to first token. */
  prefill_with_streams: { prompt_tokens: number; ttft_ms: number; tok_s: number };
  /** The long prompt alone through the server (a fresh prompt; prefix cache off). */
  server_prefill_tok_s: number;
  server_prefill_ttft_ms: number;
  server_prefill_prompt_tokens: number;
  /** One model forward of the same length (bench decode's prefill_tok_s, same process, run right after). */
  model_prefill_tok_s: number;
  engine_prefill_vs_model: number;
  throughput_tok_s: Record<string, number>;
  /**
   * tok_s and measured_step_ms over the window in which all streams decode (from the last first
   * token to the first finish; all_decoding false: no such window, the whole span instead);
   * wall_s and tokens: that window.
   */
  throughput: ThroughputRow[];
  /**
   * Every single-stream run's tok_s in order: the 1 row, then one after each other row. The
   * n-vs-1 ratios divide by the mean of the single-stream runs just before and after row n
   * (`single_beside_tok_s`): the host's speed drifts by tens of percent over a minute, and a
   * single-stream run minutes away measures that drift as much as the batching.
   */
  single_stream_runs_tok_s: number[];
  throughput_4_vs_1: number | null;
  throughput_16_vs_1: number | null;
  throughput_64_vs_1: number | null;
  roofline: Record<string, RooflineRow>;
  fraction_of_roofline_16: number | null;
  bandwidth_gbs: number;
  compute_peak_gflops: number;
  /** Where the two roofline rates come from. */
  roofline_note: string;
  paused_reader_heap_growth_mib: number;
  paused_other_streams_tok_s: number;
  paused_baseline_tok_s: number;
  paused_other_streams_ratio: number;
  /**
   * Seconds from the paused client's request to the engine pausing its sequence (the socket,
   * Node's buffer and the event queue full); null when that did not happen within the window
   * (the client's own receive buffer takes its events first: ~150-190 KB when they come in
   * bursts, more and more when they trickle in, as its kernel grows the buffer).
   */
  paused_reader_blocked_after_s: number | null;
  /** Whether the heap was measured after a full GC (always, unless the runtime refused). */
  paused_heap_after_gc: boolean;
  errors: number;
  /**
   * CPUs and 1-minute load average before and after: on a shared machine, how much the figures
   * can be trusted; and whether the weights were locked in memory (locked-load.ts).
   */
  machine: { cpus: number; loadavg_start: number; loadavg_end: number; weights_locked: boolean };
  goals: Record<string, Goal>;
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Per-token latencies of output chunks: a chunk that carries n tokens after a gap of g ms counts n times, as g / n. */
export function perToken(gaps: ReadonlyArray<{ ms: number; tokens: number }>): number[] {
  return gaps.flatMap((g) => Array<number>(g.tokens).fill(g.ms / g.tokens));
}

function stats(values: number[]): Stats {
  return { p50_ms: quantile(values, 0.5), p99_ms: quantile(values, 0.99), max_ms: values.length ? Math.max(...values) : NaN, count: values.length };
}

async function until(cond: () => boolean, what: string, timeoutMs = 3_600_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`bench serve: timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A full collection before reading the heap: global.gc under --expose-gc, else enabled here. */
function garbageCollector(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return null;
  }
}

// ───────────────────────────── prompts ─────────────────────────────

const WORDS = (
  "river stone light paper garden window music orange silver morning forest signal market engine winter harbor " +
  "pencil valley rocket thunder candle meadow planet bridge copper lantern island mirror puzzle ribbon saddle " +
  "tunnel velvet wagon anchor basket cactus dragon falcon glacier helmet jacket kettle ladder magnet needle " +
  "oyster parrot quartz rabbit shadow tomato violin walnut yogurt zebra acorn blossom canyon desert ember"
).split(" ");

/** `n` pseudo-random words, the same first ones for the same salt (so lengths grow with n). */
function words(salt: number, n: number): string[] {
  let x = (salt * 2654435761 + 12345) >>> 0;
  return range(n).map(() => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return WORDS[x % WORDS.length]!;
  });
}

const userRequest = (content: string): GenerateRequest => ({ messages: [{ role: "user", content }], thinking: { type: "disabled" } });

/** The longest text of salted words whose chat prompt has at most `target` tokens (by the engine's own count). */
function sizedPrompt(engine: Engine, target: number, salt: number): { content: string; tokens: number } {
  const head = `Document ${salt}:`;
  const length = (k: number, pool: string[]) => engine.promptTokens(userRequest([head, ...pool.slice(0, k)].join(" "))).length;
  let hi = Math.max(16, target);
  let pool = words(salt, hi);
  while (length(hi, pool) < target) pool = words(salt, (hi *= 2));
  let lo = 0;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (length(mid, pool) <= target) lo = mid;
    else hi = mid - 1;
  }
  const content = [head, ...pool.slice(0, lo)].join(" ");
  return { content, tokens: engine.promptTokens(userRequest(content)).length };
}

const shortPrompt = (salt: number) => `Question ${salt}: ${words(salt, 8).join(" ")}?`;

// ───────────────────────────── HTTP clients ─────────────────────────────

interface StreamResult {
  start: number;
  /** Arrival of the first chunk with text (or a tool call): the first token as a client sees it. */
  first: number | null;
  /** Arrival of the chunk with finish_reason. */
  finish: number | null;
  chunks: number;
  completionTokens: number | null;
  promptTokens: number | null;
  error: string | null;
  aborted: boolean;
}

/**
 * One streamed chat completion read to the end; `onToken` at every chunk that carries output,
 * with the tokens it carries (from continuous usage stats where the body asked for them, else 1).
 */
async function chatStream(url: string, body: object, opts: { signal?: AbortSignal; onToken?: (t: number, tokens: number) => void } = {}): Promise<StreamResult> {
  const r: StreamResult = { start: now(), first: null, finish: null, chunks: 0, completionTokens: null, promptTokens: null, error: null, aborted: false };
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: opts.signal });
    if (res.status !== 200) {
      r.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
      return r;
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let counted = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const t = now();
      buf += decoder.decode(value, { stream: true });
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!event.startsWith("data: {")) continue;
        const j = JSON.parse(event.slice(6)) as {
          error?: { message?: string };
          usage?: { completion_tokens: number; prompt_tokens: number } | null;
          choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null; tool_calls?: unknown }; finish_reason?: string | null }>;
        };
        if (j.error) r.error = `stream error: ${j.error.message ?? "?"}`;
        if (j.usage) {
          r.completionTokens = j.usage.completion_tokens;
          r.promptTokens = j.usage.prompt_tokens;
        }
        const c = j.choices?.[0];
        if (!c) continue;
        const d = c.delta ?? {};
        if (d.content || d.reasoning_content || d.tool_calls) {
          r.chunks++;
          r.first ??= t;
          const total = j.usage?.completion_tokens;
          opts.onToken?.(t, total === undefined ? 1 : Math.max(1, total - counted));
          if (total !== undefined) counted = total;
        }
        if (c.finish_reason) r.finish = t;
      }
    }
    if (r.finish === null && r.error === null) r.error = "stream ended without a finish chunk";
  } catch (err) {
    if (opts.signal?.aborted) r.aborted = true;
    else r.error = String((err as Error).message ?? err);
  }
  return r;
}

/**
 * `n` streams kept running (each restarted with a new prompt when it finishes), recording every
 * token chunk's arrival and the gap since the stream's previous one.
 */
class StreamPool {
  /** Per output chunk after a stream's first: arrival, the gap since the previous one, the tokens it carries. */
  readonly gaps: Array<{ t: number; ms: number; tokens: number }> = [];
  readonly tokens: number[];
  errors: string[] = [];
  private readonly controllers: AbortController[] = [];
  private readonly loops: Array<Promise<void>> = [];
  private stopped = false;

  constructor(
    private readonly url: string,
    n: number,
    private readonly body: (stream: number, round: number) => object,
  ) {
    this.tokens = new Array<number>(n).fill(0);
  }

  start(): this {
    for (let i = 0; i < this.tokens.length; i++) this.loops.push(this.run(i));
    return this;
  }

  total(): number {
    return this.tokens.reduce((a, b) => a + b, 0);
  }

  private async run(i: number): Promise<void> {
    for (let round = 0; !this.stopped; round++) {
      const controller = new AbortController();
      this.controllers[i] = controller;
      let prev: number | null = null;
      const r = await chatStream(this.url, this.body(i, round), {
        signal: controller.signal,
        onToken: (t, tokens) => {
          if (prev !== null) this.gaps.push({ t, ms: t - prev, tokens });
          prev = t;
          this.tokens[i]! += tokens;
        },
      });
      if (r.error !== null && !this.stopped) {
        this.errors.push(r.error);
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.controllers) c?.abort();
    await Promise.all(this.loops);
  }
}

/** The /health prober process (bench/serve-probe.ts). */
async function startProber(url: string, intervalMs: number): Promise<{ stop: () => Promise<ProbeSample[]> }> {
  const child = fork(fileURLToPath(new URL("./serve-probe.js", import.meta.url)), [url, String(intervalMs)], { execArgv: [], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`health prober exited (${code})`)));
  });
  return {
    stop: () =>
      new Promise<ProbeSample[]>((resolve, reject) => {
        child.removeAllListeners("exit");
        child.once("message", (m) => resolve((m as { samples: ProbeSample[] }).samples));
        child.once("exit", (code) => reject(new Error(`health prober exited (${code}) before reporting`)));
        child.send("stop");
      }),
  };
}

/** A client that sends a streaming request on a raw socket and then never reads: the kernel buffers fill. */
async function pausedClient(port: number, body: object): Promise<Socket> {
  const json = JSON.stringify(body);
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => undefined);
  socket.write(
    `POST /chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
  );
  socket.pause();
  return socket;
}

/**
 * The samples a probe every `intervalMs` would have taken while one was outstanding: a probe
 * that waited L ms stands for probes sent intervalMs, 2·intervalMs, … later that would have
 * waited L − intervalMs, L − 2·intervalMs, … (the usual coordinated-omission correction).
 */
function withSkippedProbes(samples: readonly ProbeSample[], intervalMs: number): ProbeSample[] {
  const out: ProbeSample[] = [];
  for (const s of samples) {
    out.push(s);
    for (let k = 1; s.ms - k * intervalMs >= intervalMs; k++) out.push({ sent: s.sent + k * intervalMs, ms: s.ms - k * intervalMs, ok: s.ok });
  }
  return out;
}

/** One throughput row of bench serve. */
export interface ThroughputRow {
  concurrency: number;
  tok_s: number;
  wall_s: number;
  tokens: number;
  measured_step_ms: number;
  all_decoding: boolean;
  ttft_ms: number;
  /** Rows of more than one stream: the mean tok_s of the single-stream runs just before and after this one. */
  single_beside_tok_s?: number;
}

/** Aggregate tok/s at n streams over one stream's, the single stream measured beside row n. */
export function throughputVs1(rows: readonly ThroughputRow[], n: number): number | null {
  const row = rows.find((r) => r.concurrency === n);
  const single = row?.single_beside_tok_s ?? rows.find((r) => r.concurrency === 1)?.tok_s;
  return row !== undefined && single !== undefined ? row.tok_s / single : null;
}

// ───────────────────────────── roofline ─────────────────────────────

interface StepCount {
  bytes: number;
  bytesExpected: number;
  expertsPerLayer: number;
  expertsExpected: number;
  flops: number;
}

const EXPERT = /^(.*)\.ffn\.experts\.(\d+)\./;

/**
 * Weight bytes and FLOPs of one decode step of each row count, on a separately loaded model
 * whose backend counts every product: distinct matrices (each read once per step however many
 * rows use it) plus the embedding rows, and 2·rows·out·in per product.
 */
function countSteps(dir: string, backendName: string | undefined, rows: number[]): Map<number, StepCount> {
  const inner = createBackend(backendName);
  const seen = new Set<MatrixHandle>();
  let rowBytes = 0;
  let flops = 0;
  let counting = false;
  const backend = observeBackend(inner, (name, args, call) => {
    if (counting && (name === "linear" || name === "routedExperts")) {
      for (const { w, rows } of productsOf(name, args)) {
        seen.add(w);
        flops += 2 * rows * w.outFeatures * w.inFeatures;
      }
    } else if (counting && name === "matrixRow") {
      const m = args[0] as MatrixHandle;
      rowBytes += m.bytes / m.outFeatures;
    }
    return call();
  });
  const model = Dsv4Model.load(dir, { backend });
  const out = new Map<number, StepCount>();
  try {
    const V = model.cfg.vocabSize;
    for (const n of rows) {
      seen.clear();
      rowBytes = 0;
      flops = 0;
      // n sequences at position 0 with distinct tokens: distinct hidden states, distinct routes.
      const reqs = range(n).map((i) => ({ seq: model.newSequence(), tokens: [((i + 1) * 7919 + 17) % V] }));
      counting = true;
      model.forward(reqs, { logits: "last" });
      counting = false;
      let dense = rowBytes;
      const experts = new Map<string, { ids: Set<string>; bytes: number }>();
      for (const h of seen) {
        const m = EXPERT.exec(h.name);
        if (!m) {
          dense += h.bytes;
          continue;
        }
        const layer = experts.get(m[1]!) ?? { ids: new Set<string>(), bytes: 0 };
        layer.ids.add(m[2]!);
        layer.bytes += h.bytes;
        experts.set(m[1]!, layer);
      }
      let expertBytes = 0;
      let expectedBytes = 0;
      let count = 0;
      let expected = 0;
      for (const [, layer] of experts) {
        expertBytes += layer.bytes;
        count += layer.ids.size;
        const bytesPer = layer.bytes / layer.ids.size;
        const e = expectedExperts(model.cfg.numRoutedExperts, model.cfg.expertsPerToken, n);
        expected += e;
        expectedBytes += e * bytesPer;
      }
      const layers = Math.max(1, experts.size);
      out.set(n, { bytes: dense + expertBytes, bytesExpected: dense + expectedBytes, expertsPerLayer: count / layers, expertsExpected: expected / layers, flops });
    }
  } finally {
    model.close();
  }
  return out;
}

/** Expected distinct experts when n tokens each pick k of E uniformly: E·(1−(1−k/E)^n). */
function expectedExperts(E: number, k: number, n: number): number {
  return E * (1 - Math.pow(1 - k / E, n));
}

// ───────────────────────────── the benchmark ─────────────────────────────

export async function runServeBench(opts: ServeBenchOptions = {}): Promise<ServeBenchResult> {
  const log = opts.log ?? (() => undefined);
  const quick = opts.quick ?? false;
  const preset = opts.preset ?? "flash-slice";
  const promptTarget = opts.promptTokens ?? (quick ? 1024 : 4096);
  const streams = opts.streams ?? (quick ? 4 : 16);
  const concurrency = opts.concurrency ?? [1, 4, 16, 64];
  const maxTokens = Math.max(2, opts.maxTokens ?? (quick ? 16 : 32));
  const idleTokens = opts.idleTokens ?? (quick ? 4 : 8);
  const healthIntervalMs = opts.healthIntervalMs ?? 20;
  const pausedSeconds = opts.pausedSeconds ?? (quick ? 5 : 30);
  const pausedStreams = opts.pausedStreams ?? 4;
  const streamMaxTokens = 2048;
  const errors: string[] = [];
  const loadStart = loadavg()[0]!;

  const dir = await cachedPreset(preset);
  const maxRunning = Math.max(...concurrency, streams + 1, pausedStreams + 1);
  const { engine, locked } = await loadEngineForBench(dir, { backend: opts.backend, maxConcurrentSequences: maxRunning, prefixCache: { enabled: false }, speculative: { enabled: false } });
  try {
    const backendName = engine.model.backend;
    const longWith = sizedPrompt(engine, promptTarget, 1);
    const longAlone = sizedPrompt(engine, promptTarget, 2);
    log(`bench serve: preset ${preset}, backend ${backendName}; long prompts ${longWith.tokens} and ${longAlone.tokens} tokens`);

    log(`counting weight bytes and FLOPs of decode steps of ${concurrency.join("/")} rows…`);
    const steps = countSteps(dir, opts.backend, concurrency);
    // Roofline rates, probed now and again after the server phases; the best probe is the
    // machine's (other processes on a shared machine only ever lower one).
    const gemmBackend = createBackend(opts.backend);
    const probeBytes = opts.probeBytes ?? (quick ? 256 * 2 ** 20 : 2 ** 30);
    const probeGemm = () => measureGemmPeak(gemmBackend, quick ? [32] : [32, 128], quick ? 0.1 : 0.5);
    const probeBandwidth = () => {
      const loaded = nativeAddon();
      return "error" in loaded ? null : loaded.addon.memoryBandwidth(probeBytes, 5);
    };
    const peak1 = probeGemm();
    const bandwidth1 = probeBandwidth();

    const server = await startServer({ engine, port: 0, host: "127.0.0.1" });
    try {
      const url = `${server.url}/chat/completions`;
      const body = (content: string, max: number, extra: object = {}) => ({
        model: engine.model.name, messages: [{ role: "user", content }], thinking: { type: "disabled" }, temperature: 0, max_tokens: max, stream: true,
        // The usage so far on every chunk: how many tokens each chunk carries (perToken).
        stream_options: { include_usage: true, continuous_usage_stats: true }, ...extra,
      });
      const check = (rs: StreamResult[], what: string) => {
        for (const r of rs) if (r.error !== null) errors.push(`${what}: ${r.error}`);
        if (rs.some((r) => r.error !== null)) throw new Error(`bench serve: ${what} failed: ${rs.find((r) => r.error !== null)!.error}`);
      };

      // ── throughput ──
      log(`throughput (max_tokens ${maxTokens}, ${maxTokens * 4} for a single stream; short distinct prompts)…`);
      check(await Promise.all(range(Math.min(16, Math.max(...concurrency))).map((i) => chatStream(url, body(shortPrompt(900 + i), 4)))), "warm-up");
      const measure = async (n: number, salt: number): Promise<ThroughputRow> => {
        // n idle keep-alive connections first, so the n requests reach the server together
        // rather than over the several loop turns (each carrying a model step) that accepting
        // new connections takes.
        await Promise.all(range(n).map(async () => (await fetch(`${server.url}/health`)).text()));
        const times: number[][] = range(n).map(() => []);
        // A single stream decodes 4x the tokens: its 32 steps took ~1.3 s against ~6 s at 16
        // streams, and runs that short ranged 18.6-25.3 tok/s within one process.
        const perStream = n === 1 ? maxTokens * 4 : maxTokens;
        const rs = await Promise.all(range(n).map((i) => chatStream(url, body(shortPrompt(salt + i), perStream), { onToken: (t, k) => times[i]!.push(...Array<number>(k).fill(t)) })));
        check(rs, `throughput at ${n}`);
        // Steady state: from the moment every stream has its first token until the first one
        // finishes, every step decodes all n. A stream's tokens in that window: its tokens after
        // the first (exact, from usage) less those that arrived outside the window (each chunk's
        // count from the continuous usage stats: a token with no text yet rides on the next chunk).
        const firsts = rs.map((r) => r.first ?? r.finish!);
        let t0 = Math.max(...firsts);
        let t1 = Math.min(...rs.map((r) => r.finish!));
        let tokens = rs.reduce((a, r, i) => {
          const outside = times[i]!.filter((t) => (t > firsts[i]! && t <= t0) || t > t1).length;
          return a + Math.max(0, (r.completionTokens ?? 0) - 1 - outside);
        }, 0);
        let steps = tokens / n;
        const common = t1 > t0 && tokens >= n;
        if (!common) {
          // The streams did not all decode at once (one ended early, or max_tokens is too small
          // for the stagger): the whole span, first token to last.
          t0 = Math.min(...firsts);
          t1 = Math.max(...rs.map((r) => r.finish!));
          tokens = rs.reduce((a, r) => a + Math.max(0, (r.completionTokens ?? 0) - 1), 0);
          steps = Math.max(1, ...rs.map((r) => (r.completionTokens ?? 0) - 1));
        }
        const wall = (t1 - t0) / 1000;
        const row = {
          concurrency: n, tok_s: tokens / wall, wall_s: wall, tokens, measured_step_ms: (t1 - t0) / steps, all_decoding: common,
          ttft_ms: quantile(rs.map((r, i) => firsts[i]! - r.start), 0.5),
        };
        log(`  ${String(n).padStart(3)} streams: ${row.tok_s.toFixed(2)} tok/s, ${row.measured_step_ms.toFixed(1)} ms per step (${tokens} tokens in ${wall.toFixed(2)} s${common ? "" : ", streams staggered: whole span"}; median TTFT ${row.ttft_ms.toFixed(0)} ms)`);
        return row;
      };
      const throughput: ThroughputRow[] = [];
      // With a single-stream row, one single-stream run follows every other row, so each
      // n-vs-1 ratio compares runs a few seconds apart.
      const singles: number[] = [];
      const withSingle = concurrency.includes(1);
      for (const n of concurrency) {
        const row = await measure(n, n * 1000);
        if (n === 1) singles.push(row.tok_s);
        else if (withSingle) {
          const before = singles.at(-1);
          const after = (await measure(1, 1000 + 100 * singles.length)).tok_s;
          singles.push(after);
          row.single_beside_tok_s = before === undefined ? after : (before + after) / 2;
        }
        throughput.push(row);
      }

      if (opts.throughputOnly) {
        const peak2 = probeGemm();
        const peak = peak2.gflops > peak1.gflops ? peak2 : peak1;
        const nativeBandwidth = Math.max(bandwidth1 ?? 0, probeBandwidth() ?? 0);
        const bandwidth = nativeBandwidth > 0 ? nativeBandwidth : jsBandwidth(quick ? 64 * 2 ** 20 : 256 * 2 ** 20);
        log(`  bandwidth ${bandwidth.toFixed(1)} GB/s; GEMM peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.name}, ${peak.rows} rows)`);
        return throughputOnlyResult({
          preset, backend: backendName, quick, params: { prompt_tokens: longWith.tokens, streams, concurrency, max_tokens: maxTokens, idle_tokens: idleTokens, health_interval_ms: healthIntervalMs, paused_seconds: pausedSeconds, paused_streams: pausedStreams, max_running: maxRunning },
          throughput, singles, roofline: rooflineRows(throughput, steps, bandwidth, peak.gflops), bandwidth, peak,
          nativeBandwidth: nativeBandwidth > 0, errors: errors.length, machine: { cpus: availableParallelism(), loadavg_start: loadStart, loadavg_end: loadavg()[0]!, weights_locked: locked },
        });
      }

      // ── health and ITL while a long prompt is prefilled beside running streams ──
      log(`/health and ITL: ${streams} streams, then a ${longWith.tokens}-token prompt…`);
      const prober = await startProber(`${server.url}/health`, healthIntervalMs);
      const pool = new StreamPool(url, streams, (i, round) => body(shortPrompt(5000 + i * 100 + round), streamMaxTokens)).start();
      let idle0 = 0, idle1 = 0, l0 = 0, l1 = 0;
      let long: StreamResult;
      let samples: ProbeSample[] = [];
      try {
        await until(() => pool.tokens.every((c) => c >= 1), "the streams' first tokens");
        idle0 = now();
        const base = [...pool.tokens];
        await until(() => pool.tokens.every((c, i) => c >= base[i]! + idleTokens), "the idle ITL window");
        idle1 = now();
        long = await chatStream(url, body(longWith.content, 1));
        check([long], "long prompt beside the streams");
        l0 = long.start;
        l1 = long.first ?? long.finish!;
        // One more token per stream: the gaps that overlap the prefill have all ended.
        const after = [...pool.tokens];
        await until(() => pool.tokens.every((c, i) => c > after[i]!), "the streams' tokens after the prefill");
      } finally {
        await pool.stop();
        samples = await prober.stop();
      }
      errors.push(...pool.errors);
      const gapsIdle = pool.gaps.filter((g) => g.t > idle0 && g.t <= idle1);
      const gapsDuring = pool.gaps.filter((g) => g.t > l0 && g.t - g.ms < l1);
      const itlIdle = perToken(gapsIdle), itlDuring = perToken(gapsDuring);
      const windowTokens = [...gapsIdle, ...gapsDuring].reduce((n, g) => n + g.tokens, 0);
      const heldBack = [...gapsIdle, ...gapsDuring].reduce((n, g) => n + (g.tokens > 1 ? g.tokens - 1 : 0), 0) / Math.max(1, windowTokens);
      const chunkIdleP50 = quantile(gapsIdle.map((g) => g.ms), 0.5), chunkDuringP99 = quantile(gapsDuring.map((g) => g.ms), 0.99);
      const probes = withSkippedProbes(samples, healthIntervalMs);
      // A prefill shorter than the probe interval may see no probe sent inside it: then the first one after its start.
      let during = probes.filter((s) => s.sent >= l0 && s.sent <= l1);
      if (during.length === 0) during = probes.filter((s) => s.sent >= l0).sort((a, b) => a.sent - b.sent).slice(0, 1);
      const healthDuring = stats(during.map((s) => s.ms));
      const healthIdle = stats(probes.filter((s) => s.sent >= idle0 && s.sent <= idle1).map((s) => s.ms));
      if (samples.some((s) => !s.ok)) errors.push(`${samples.filter((s) => !s.ok).length} /health probes failed`);
      log(`  /health during the prefill: p50 ${healthDuring.p50_ms.toFixed(1)} ms, p99 ${healthDuring.p99_ms.toFixed(1)} ms (${healthDuring.count} probes); idle p99 ${healthIdle.p99_ms.toFixed(1)} ms`);
      log(`  ITL idle p50 ${quantile(itlIdle, 0.5).toFixed(1)} ms; during the prefill p99 ${quantile(itlDuring, 0.99).toFixed(1)} ms`);

      // ── the long prompt alone ──
      log(`prefill through the server: a ${longAlone.tokens}-token prompt alone…`);
      const alone = await chatStream(url, body(longAlone.content, 1));
      check([alone], "long prompt alone");
      const aloneTtft = (alone.first ?? alone.finish!) - alone.start;
      const serverPrefill = (alone.promptTokens ?? longAlone.tokens) / (aloneTtft / 1000);
      log(`  ${serverPrefill.toFixed(1)} tok/s (time to first token ${(aloneTtft / 1000).toFixed(2)} s)`);

      // One model forward of the long prompt's length, right after the server's prefill so
      // that both meet the same machine: the prefill speed the server is held to.
      log(`model prefill: one forward of ${longAlone.tokens} tokens (bench decode)…`);
      const decode = await runDecodeBench({
        preset, backend: opts.backend, prefillTokens: longAlone.tokens, decodeTokens: 2, repeats: 1, allRows: false,
        warmupTokens: Math.min(256, longAlone.tokens), probeBytes,
      });
      log(`  ${decode.prefill_tok_s.toFixed(1)} tok/s`);
      const peak2 = probeGemm();
      const peak = peak2.gflops > peak1.gflops ? peak2 : peak1;
      const nativeBandwidth = Math.max(bandwidth1 ?? 0, decode.bandwidth_gbs ?? 0);
      const bandwidth = nativeBandwidth > 0 ? nativeBandwidth : jsBandwidth(quick ? 64 * 2 ** 20 : 256 * 2 ** 20);
      log(`  bandwidth ${bandwidth.toFixed(1)} GB/s; GEMM peak ${peak.gflops.toFixed(1)} GFLOP/s (${peak.name}, ${peak.rows} rows)`);

      // ── a client that stops reading ──
      log(`paused reader: ${pausedStreams} streams for ${pausedSeconds} s, then the same beside a client that never reads for ${pausedSeconds} s…`);
      const gc = garbageCollector();
      const heap = () => {
        gc?.();
        return process.memoryUsage().heapUsed;
      };
      const others = new StreamPool(url, pausedStreams, (i, round) => body(shortPrompt(7000 + i * 100 + round), streamMaxTokens)).start();
      let baseline = 0, beside = 0, growth = 0;
      let blockedAfter: number | null = null;
      try {
        await until(() => others.tokens.every((c) => c >= 1), "the streams' first tokens");
        const b0 = now(), c0 = others.total();
        await sleep(pausedSeconds * 1000);
        baseline = (others.total() - c0) / ((now() - b0) / 1000);
        const heap0 = heap();
        // A request like the others (no logprobs: top_logprobs would add a costly row of its own).
        const sent = now();
        const paused = await pausedClient(server.port, body(shortPrompt(8000), 100_000));
        const p0 = now(), d0 = others.total();
        const watch = setInterval(() => {
          if (blockedAfter === null && engine.metrics().reader_blocked_sequences > 0) blockedAfter = (now() - sent) / 1000;
        }, 100);
        await sleep(pausedSeconds * 1000);
        clearInterval(watch);
        beside = (others.total() - d0) / ((now() - p0) / 1000);
        growth = (heap() - heap0) / 2 ** 20;
        paused.destroy();
      } finally {
        await others.stop();
      }
      errors.push(...others.errors);
      log(`  heap growth ${growth.toFixed(2)} MiB; other streams ${beside.toFixed(2)} tok/s vs ${baseline.toFixed(2)} without the paused client; its sequence paused ${blockedAfter === null ? "not within the window" : `after ${(blockedAfter as number).toFixed(1)} s`}`);

      // ── assemble ──
      const vs1 = (n: number) => throughputVs1(throughput, n);
      const roofline = rooflineRows(throughput, steps, bandwidth, peak.gflops);
      const itlP50Idle = quantile(itlIdle, 0.5);
      const itlP99During = quantile(itlDuring, 0.99);
      const result: ServeBenchResult = {
        preset, backend: backendName, quick,
        params: { prompt_tokens: longWith.tokens, streams, concurrency, max_tokens: maxTokens, idle_tokens: idleTokens, health_interval_ms: healthIntervalMs, paused_seconds: pausedSeconds, paused_streams: pausedStreams, max_running: maxRunning },
        health_p50_ms: healthDuring.p50_ms, health_p99_ms: healthDuring.p99_ms, health_max_ms: healthDuring.max_ms, health_count: healthDuring.count, health_probes_sent: samples.filter((s) => s.sent >= l0 && s.sent <= l1).length, health_idle: healthIdle,
        itl_p50_idle_ms: itlP50Idle, itl_p99_idle_ms: quantile(itlIdle, 0.99), itl_p50_during_prefill_ms: quantile(itlDuring, 0.5), itl_p99_during_prefill_ms: itlP99During,
        itl_ratio: itlP99During / itlP50Idle, itl_samples: { idle: itlIdle.length, during_prefill: itlDuring.length },
        itl_chunk: { p50_idle_ms: chunkIdleP50, p99_during_prefill_ms: chunkDuringP99, ratio: chunkDuringP99 / chunkIdleP50 }, held_back_token_share: heldBack,
        prefill_with_streams: { prompt_tokens: long!.promptTokens ?? longWith.tokens, ttft_ms: l1 - l0, tok_s: (long!.promptTokens ?? longWith.tokens) / ((l1 - l0) / 1000) },
        server_prefill_tok_s: serverPrefill, server_prefill_ttft_ms: aloneTtft, server_prefill_prompt_tokens: alone.promptTokens ?? longAlone.tokens,
        model_prefill_tok_s: decode.prefill_tok_s, engine_prefill_vs_model: serverPrefill / decode.prefill_tok_s,
        throughput_tok_s: Object.fromEntries(throughput.map((r) => [String(r.concurrency), r.tok_s])), throughput, single_stream_runs_tok_s: singles,
        throughput_4_vs_1: vs1(4), throughput_16_vs_1: vs1(16), throughput_64_vs_1: vs1(64),
        roofline, fraction_of_roofline_16: roofline["16"]?.fraction_of_roofline ?? null,
        bandwidth_gbs: bandwidth, compute_peak_gflops: peak.gflops,
        roofline_note: rooflineNote(nativeBandwidth > 0, backendName, peak),
        paused_reader_heap_growth_mib: growth, paused_other_streams_tok_s: beside, paused_baseline_tok_s: baseline, paused_other_streams_ratio: beside / baseline,
        paused_reader_blocked_after_s: blockedAfter,
        paused_heap_after_gc: gc !== null,
        errors: errors.length,
        machine: { cpus: availableParallelism(), loadavg_start: loadStart, loadavg_end: loadavg()[0]!, weights_locked: locked },
        goals: {},
      };
      result.goals = goalsOf(result);
      for (const e of errors) log(`  error: ${e}`);
      return result;
    } finally {
      await server.close();
    }
  } finally {
    await engine.dispose();
  }
}

/** Each throughput row's decode step against its roofline (weight bytes / bandwidth, FLOPs / GEMM peak). */
function rooflineRows(throughput: ServeBenchResult["throughput"], steps: Map<number, StepCount>, bandwidth: number, peakGflops: number): Record<string, RooflineRow> {
  const roofline: Record<string, RooflineRow> = {};
  for (const row of throughput) {
    const c = steps.get(row.concurrency)!;
    const memory = (c.bytes / (bandwidth * 1e9)) * 1000;
    const compute = (c.flops / (peakGflops * 1e9)) * 1000;
    const rl = Math.max(memory, compute);
    roofline[String(row.concurrency)] = {
      concurrency: row.concurrency, weight_bytes: c.bytes, weight_bytes_expected: c.bytesExpected, experts_per_layer: c.expertsPerLayer,
      experts_per_layer_expected: c.expertsExpected, flops: c.flops, memory_ms: memory, compute_ms: compute, roofline_ms: rl,
      measured_step_ms: row.measured_step_ms, fraction_of_roofline: rl / row.measured_step_ms,
    };
  }
  return roofline;
}

function rooflineNote(nativeBandwidth: boolean, backendName: string, peak: { name: string; rows: number }): string {
  return `memory: distinct weight bytes of a decode step (counted on an instrumented forward of N rows at position 0; attention state and activations not counted) / ` +
    `${nativeBandwidth ? "the best of the native multi-threaded read-bandwidth probes (before the server phases, and bench decode's or after the throughput rows)" : "a JavaScript read-bandwidth probe"}; ` +
    `compute: 2·rows·parameters of every product / the best ${backendName} GEMM rate measured (${peak.name}, ${peak.rows} rows), not the CPU's datasheet FMA peak`;
}

function goalsOf(r: ServeBenchResult): Record<string, Goal> {
  const goal = (value: number | null, op: "<" | "<=" | ">=", target: number): Goal => ({
    value, goal: `${op} ${target}`, met: value !== null && Number.isFinite(value) && (op === "<" ? value < target : op === "<=" ? value <= target : value >= target),
  });
  return {
    health_p99_ms: goal(r.health_p99_ms, "<", 50),
    itl_ratio: goal(r.itl_ratio, "<=", 3),
    engine_prefill_vs_model: goal(r.engine_prefill_vs_model, ">=", 0.8),
    throughput_16_vs_1: goal(r.throughput_16_vs_1, ">=", 4),
    fraction_of_roofline_16: goal(r.fraction_of_roofline_16, ">=", 0.6),
    paused_reader_heap_growth_mib: goal(r.paused_reader_heap_growth_mib, "<", 4),
  };
}

/** The result of a --throughput-only run: the phases not run are NaN. */
function throughputOnlyResult(a: {
  preset: string; backend: string; quick: boolean; params: ServeBenchResult["params"]; throughput: ThroughputRow[]; singles: number[];
  roofline: Record<string, RooflineRow>; bandwidth: number; peak: { gflops: number; name: string; rows: number }; nativeBandwidth: boolean;
  errors: number; machine: ServeBenchResult["machine"];
}): ServeBenchResult {
  const vs1 = (n: number) => throughputVs1(a.throughput, n);
  const none: Stats = { p50_ms: NaN, p99_ms: NaN, max_ms: NaN, count: 0 };
  const result: ServeBenchResult = {
    preset: a.preset, backend: a.backend, quick: a.quick, params: a.params,
    health_p50_ms: NaN, health_p99_ms: NaN, health_max_ms: NaN, health_count: 0, health_probes_sent: 0, health_idle: none,
    itl_p50_idle_ms: NaN, itl_p99_idle_ms: NaN, itl_p50_during_prefill_ms: NaN, itl_p99_during_prefill_ms: NaN, itl_ratio: NaN, itl_samples: { idle: 0, during_prefill: 0 },
    itl_chunk: { p50_idle_ms: NaN, p99_during_prefill_ms: NaN, ratio: NaN }, held_back_token_share: NaN,
    prefill_with_streams: { prompt_tokens: 0, ttft_ms: NaN, tok_s: NaN },
    server_prefill_tok_s: NaN, server_prefill_ttft_ms: NaN, server_prefill_prompt_tokens: 0, model_prefill_tok_s: NaN, engine_prefill_vs_model: NaN,
    throughput_tok_s: Object.fromEntries(a.throughput.map((r) => [String(r.concurrency), r.tok_s])), throughput: a.throughput, single_stream_runs_tok_s: a.singles,
    throughput_4_vs_1: vs1(4), throughput_16_vs_1: vs1(16), throughput_64_vs_1: vs1(64),
    roofline: a.roofline, fraction_of_roofline_16: a.roofline["16"]?.fraction_of_roofline ?? null,
    bandwidth_gbs: a.bandwidth, compute_peak_gflops: a.peak.gflops, roofline_note: rooflineNote(a.nativeBandwidth, a.backend, a.peak),
    paused_reader_heap_growth_mib: NaN, paused_other_streams_tok_s: NaN, paused_baseline_tok_s: NaN, paused_other_streams_ratio: NaN, paused_reader_blocked_after_s: null, paused_heap_after_gc: false,
    errors: a.errors, machine: a.machine, goals: {},
  };
  result.goals = goalsOf(result);
  return result;
}

/** Read bandwidth of plain JavaScript over a buffer (only when the native probe is unavailable). */
function jsBandwidth(bytes: number): number {
  const a = new Float64Array(bytes / 8).fill(1);
  let best = Infinity;
  let sink = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < a.length; i++) sink += a[i]!;
    best = Math.min(best, performance.now() - t0);
  }
  if (sink < 0) console.log(sink);
  return bytes / (best / 1000) / 1e9;
}

export function printServeTable(r: ServeBenchResult): void {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const p = r.params;
  const met = (k: string) => {
    const g = r.goals[k]!;
    return `[goal ${g.goal}: ${g.met ? "met" : "not met"}]`;
  };
  // A --throughput-only run prefilled nothing beside streams: only its throughput rows exist.
  const onlyThroughput = r.prefill_with_streams.prompt_tokens === 0;
  console.log(`serve: preset ${r.preset}, backend ${r.backend}, the HTTP server on 127.0.0.1${r.quick ? " (quick)" : ""}`);
  if (onlyThroughput) {
    console.log("  --throughput-only: the /health, ITL, prefill and paused-reader phases were not run");
  } else {
    console.log(`  /health every ${p.health_interval_ms} ms during a ${r.prefill_with_streams.prompt_tokens}-token prefill beside ${p.streams} streams:`);
    console.log(`      p50 ${ms(r.health_p50_ms)}, p99 ${ms(r.health_p99_ms)}, max ${ms(r.health_max_ms)} (${r.health_count} intervals, ${r.health_probes_sent} probes sent; idle p99 ${ms(r.health_idle.p99_ms)})  ${met("health_p99_ms")}`);
    console.log(`  ITL of the ${p.streams} streams: idle p50 ${ms(r.itl_p50_idle_ms)}; during the prefill p50 ${ms(r.itl_p50_during_prefill_ms)}, p99 ${ms(r.itl_p99_during_prefill_ms)}`);
    console.log(`      ratio ${r.itl_ratio.toFixed(2)} (${r.itl_samples.idle} idle, ${r.itl_samples.during_prefill} during token samples)  ${met("itl_ratio")}`);
    console.log(`      per chunk: idle p50 ${ms(r.itl_chunk.p50_idle_ms)}, during p99 ${ms(r.itl_chunk.p99_during_prefill_ms)}, ratio ${r.itl_chunk.ratio.toFixed(2)} (${(100 * r.held_back_token_share).toFixed(1)}% of tokens came with the next one: text held back)`);
    console.log(`  prefill, ${r.server_prefill_prompt_tokens}-token prompt alone: server ${r.server_prefill_tok_s.toFixed(1)} tok/s (TTFT ${(r.server_prefill_ttft_ms / 1000).toFixed(2)} s), one model forward ${r.model_prefill_tok_s.toFixed(1)} tok/s`);
    console.log(`      ratio ${r.engine_prefill_vs_model.toFixed(2)}  ${met("engine_prefill_vs_model")}`);
  }
  console.log(`  decode throughput (max_tokens ${p.max_tokens}) and step roofline (${r.bandwidth_gbs.toFixed(1)} GB/s, ${r.compute_peak_gflops.toFixed(0)} GFLOP/s):`);
  console.log("      streams      tok/s   step ms   weights MiB  experts/layer   memory ms  compute ms   of roofline");
  for (const t of r.throughput) {
    const f = r.roofline[String(t.concurrency)]!;
    console.log(
      `      ${String(t.concurrency).padStart(7)} ${t.tok_s.toFixed(2).padStart(10)} ${t.measured_step_ms.toFixed(1).padStart(9)} ${(f.weight_bytes / 2 ** 20).toFixed(0).padStart(13)}` +
        ` ${f.experts_per_layer.toFixed(1).padStart(8)} (${f.experts_per_layer_expected.toFixed(0).padStart(3)}) ${f.memory_ms.toFixed(1).padStart(10)} ${f.compute_ms.toFixed(1).padStart(11)} ${(100 * f.fraction_of_roofline).toFixed(0).padStart(12)}%`,
    );
  }
  const x = (v: number | null) => (v === null ? "-" : `${v.toFixed(2)}x`);
  console.log(`      single-stream runs (one after each other row): ${r.single_stream_runs_tok_s.map((v) => v.toFixed(2)).join(", ")} tok/s`);
  console.log(`      16 vs 1: ${x(r.throughput_16_vs_1)}, 4 vs 1: ${x(r.throughput_4_vs_1)}, 64 vs 1: ${x(r.throughput_64_vs_1)}  ${met("throughput_16_vs_1")}; 16 streams' step at roofline ${met("fraction_of_roofline_16")}`);
  if (!onlyThroughput) {
    console.log(`  paused reader (${p.paused_seconds} s beside ${p.paused_streams} streams): heap +${r.paused_reader_heap_growth_mib.toFixed(2)} MiB${r.paused_heap_after_gc ? "" : " (no GC)"}  ${met("paused_reader_heap_growth_mib")}`);
    console.log(`      other streams ${r.paused_other_streams_tok_s.toFixed(2)} tok/s vs ${r.paused_baseline_tok_s.toFixed(2)} without it (${r.paused_other_streams_ratio.toFixed(2)}); its sequence paused ${r.paused_reader_blocked_after_s === null ? "not within the window" : `after ${r.paused_reader_blocked_after_s.toFixed(1)} s`}`);
  }
  console.log(`  machine: ${r.machine.cpus} CPUs, load average ${r.machine.loadavg_start.toFixed(1)} at the start, ${r.machine.loadavg_end.toFixed(1)} at the end; weights ${r.machine.weights_locked ? "locked in memory" : "not locked"}`);
  if (r.errors > 0) console.log(`  ${r.errors} errors`);
}

/** `--flag value` options shared by the CLI and direct runs. */
export function serveOptionsFromArgs(get: (flag: string) => string | undefined, has: (flag: string) => boolean): ServeBenchOptions {
  const num = (flag: string, min = 1) => {
    const v = get(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} must be a number >= ${min}, got "${v}"`);
    return n;
  };
  const int = (flag: string) => {
    const n = num(flag);
    if (n !== undefined && !Number.isInteger(n)) throw new Error(`--${flag} must be a positive integer, got "${get(flag)}"`);
    return n;
  };
  const list = get("concurrency");
  const concurrency = list?.split(",").map((s) => Number(s.trim()));
  if (concurrency?.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--concurrency must be positive integers separated by commas, got "${list}"`);
  return {
    preset: get("preset"), backend: get("backend"), quick: has("quick"), promptTokens: int("prompt"), streams: int("streams"), concurrency,
    maxTokens: int("max-tokens"), idleTokens: int("idle-tokens"), healthIntervalMs: num("health-interval"), pausedSeconds: num("paused-seconds", 0), pausedStreams: int("paused-streams"),
    throughputOnly: has("throughput-only"),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const get = (flag: string) => {
    const i = args.indexOf(`--${flag}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const json = args.includes("--json");
  const result = await runServeBench({ ...serveOptionsFromArgs(get, (f) => args.includes(`--${f}`)), log: (line) => process.stderr.write(line + "\n") });
  if (json) console.log(JSON.stringify(result));
  else printServeTable(result);
  if (result.errors > 0) process.exitCode = 1;
}
