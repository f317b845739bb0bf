/**
 * Server benchmark on the embedded default model (tiny random weights):
 *  - overhead: p50/p99 latency of a 1-token completion over HTTP (JSON and SSE)
 *    against the same call made in-process on the engine;
 *  - load: requests/s and tokens/s sustained by 64 concurrent streaming clients,
 *    with every error counted (the run fails if there is one).
 *
 * Run: `node dist/bench/server.js [--json] [--backend NAME] [--seconds N] [--clients N]`.
 */
import { join } from "node:path";
import { tmpdir } from "node:os";
import { pathToFileURL } from "node:url";
import { ensureDefaultModel } from "../src/cli/default-model.js";
import { Engine } from "../src/engine/engine.js";
import type { GenerateRequest } from "../src/engine/types.js";
import { startServer } from "../src/server/index.js";

export interface ServerBenchOptions {
  backend?: string;
  seconds?: number;
  clients?: number;
  samples?: number;
  log?: (line: string) => void;
}

interface Latency {
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

export interface ServerBenchResult {
  backend: string;
  samples: number;
  /** A bare HTTP round trip (GET /health) with the same client: the transport's share of the overhead. */
  http_round_trip: Latency;
  one_token: { in_process: Latency; http_json: Latency; http_stream: Latency; overhead_p50_ms: number; overhead_p99_ms: number };
  load: {
    clients: number; seconds: number; requests: number; requests_per_s: number; tokens_per_s: number; errors: number; p50_ms: number; p99_ms: number; max_tokens: number;
    /** The same clients calling the engine in-process: the ceiling the server is measured against. */
    in_process_requests_per_s: number;
  };
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

function latency(ms: number[]): Latency {
  const s = [...ms].sort((a, b) => a - b);
  return { p50_ms: quantile(s, 0.5), p99_ms: quantile(s, 0.99), mean_ms: s.reduce((a, b) => a + b, 0) / s.length };
}

const PROMPT = [{ role: "user", content: "Hello! How are you?" }];
const ONE_TOKEN: GenerateRequest = { messages: PROMPT, max_tokens: 1, thinking: { type: "disabled" }, seed: 1, cache: false };

async function timed(f: () => Promise<unknown>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

async function readStream(res: Response): Promise<{ tokens: number; done: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  const usage = /"completion_tokens":(\d+)/.exec(text);
  return { tokens: usage ? Number(usage[1]) : 0, done: text.endsWith("data: [DONE]\n\n") };
}

export async function runServerBench(options: ServerBenchOptions = {}): Promise<ServerBenchResult> {
  const log = options.log ?? (() => undefined);
  const samples = options.samples ?? 200;
  const seconds = options.seconds ?? 20;
  const clients = options.clients ?? 64;
  const { dir } = await ensureDefaultModel(join(process.env.DSV4_HOME ?? join(tmpdir(), "dsv4-bench"), "default-model"));
  const engine = await Engine.load(dir, { backend: options.backend, prefixCache: { enabled: false }, speculative: { enabled: false } });
  const server = await startServer({ engine, port: 0, keepAliveMs: 0 });
  try {
    const url = `${server.url}/chat/completions`;
    const body = (extra: object) => JSON.stringify({ model: "deepseek-v4-flash", messages: PROMPT, max_tokens: 1, thinking: { type: "disabled" }, seed: 1, ...extra });
    const post = (b: string) => fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: b });
    const json = async () => {
      const r = await post(body({}));
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      await r.json();
    };
    const stream = async () => {
      const r = await post(body({ stream: true }));
      if (!(await readStream(r)).done) throw new Error("stream did not finish");
    };
    const inProcess = () => engine.generate(ONE_TOKEN).result();
    const health = async () => {
      await (await fetch(`${server.url}/health`)).text();
    };

    log(`warming up (${engine.model.backend} backend)…`);
    await timed(inProcess, 10);
    await timed(json, 10);
    await timed(stream, 10);
    log(`1-token completions, ${samples} each…`);
    // Interleaved in rounds so drift (heat, GC) hits all three alike.
    const a: number[] = [], b: number[] = [], c: number[] = [];
    for (let i = 0; i < samples; i += 10) {
      a.push(...(await timed(inProcess, 10)));
      b.push(...(await timed(json, 10)));
      c.push(...(await timed(stream, 10)));
    }
    const roundTrip = latency(await timed(health, samples));
    const inProc = latency(a);
    const httpJson = latency(b);
    const httpStream = latency(c);

    log(`${clients} streaming clients for ${seconds} s…`);
    const maxTokens = 8;
    const loadBody = body({ stream: true, max_tokens: maxTokens, seed: undefined, stream_options: { include_usage: true } });
    const end = performance.now() + seconds * 1000;
    const durations: number[] = [];
    let tokens = 0;
    let errors = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < end) {
          const s = performance.now();
          try {
            const r = await post(loadBody);
            if (r.status !== 200) {
              errors++;
              await r.text();
              continue;
            }
            const got = await readStream(r);
            if (!got.done) errors++;
            tokens += got.tokens;
            durations.push(performance.now() - s);
          } catch {
            errors++;
          }
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;

    log(`${clients} in-process callers for ${seconds} s…`);
    const endIn = performance.now() + seconds * 1000;
    let inRequests = 0;
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < endIn) {
          await engine.generate({ ...ONE_TOKEN, seed: undefined, max_tokens: maxTokens }).result();
          inRequests++;
        }
      }),
    );
    const inWall = (performance.now() - t1) / 1000;
    const ds = [...durations].sort((x, y) => x - y);
    return {
      backend: engine.model.backend,
      samples,
      http_round_trip: roundTrip,
      one_token: {
        in_process: inProc,
        http_json: httpJson,
        http_stream: httpStream,
        overhead_p50_ms: httpJson.p50_ms - inProc.p50_ms,
        overhead_p99_ms: httpJson.p99_ms - inProc.p99_ms,
      },
      load: {
        clients,
        seconds: wall,
        requests: durations.length,
        requests_per_s: durations.length / wall,
        tokens_per_s: tokens / wall,
        errors,
        p50_ms: ds.length ? quantile(ds, 0.5) : NaN,
        p99_ms: ds.length ? quantile(ds, 0.99) : NaN,
        max_tokens: maxTokens,
        in_process_requests_per_s: inRequests / inWall,
      },
    };
  } finally {
    await server.close();
    await engine.dispose();
  }
}

export function printServerTable(r: ServerBenchResult): void {
  const f = (x: number) => x.toFixed(2).padStart(8);
  console.log(`server overhead, 1-token completion (${r.backend} backend, tiny default model, ${r.samples} samples each)`);
  console.log("                          p50 ms   p99 ms  mean ms");
  const rows = [["in-process engine", r.one_token.in_process], ["HTTP JSON", r.one_token.http_json], ["HTTP SSE stream", r.one_token.http_stream], ["HTTP GET /health", r.http_round_trip]] as const;
  for (const [name, l] of rows) {
    console.log(`  ${name.padEnd(22)}${f(l.p50_ms)} ${f(l.p99_ms)} ${f(l.mean_ms)}`);
  }
  console.log(`  HTTP overhead: p50 ${r.one_token.overhead_p50_ms.toFixed(2)} ms, p99 ${r.one_token.overhead_p99_ms.toFixed(2)} ms`);
  const l = r.load;
  console.log(`load: ${l.clients} concurrent streaming clients, max_tokens ${l.max_tokens}, ${l.seconds.toFixed(1)} s`);
  console.log(`  ${l.requests} requests, ${l.requests_per_s.toFixed(1)} req/s, ${l.tokens_per_s.toFixed(0)} generated tokens/s, ${l.errors} errors; request p50 ${l.p50_ms.toFixed(0)} ms, p99 ${l.p99_ms.toFixed(0)} ms`);
  console.log(`  in-process, same load: ${l.in_process_requests_per_s.toFixed(1)} req/s (HTTP reaches ${((100 * l.requests_per_s) / l.in_process_requests_per_s).toFixed(0)}%)`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const json = argv.includes("--json");
  const result = await runServerBench({
    backend: value("--backend"),
    seconds: value("--seconds") ? Number(value("--seconds")) : undefined,
    clients: value("--clients") ? Number(value("--clients")) : undefined,
    log: json ? undefined : (line) => process.stderr.write(line + "\n"),
  });
  if (json) console.log(JSON.stringify(result));
  else printServerTable(result);
  if (result.load.errors > 0) process.exitCode = 1;
}
