import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";

export const benchCommand: Command = {
  name: "bench",
  summary: "benchmarks: kernel GEMV throughput vs memory bandwidth, end-to-end decode/prefill speed, the HTTP server under load, the prefix cache",
  usage: `Usage: dsv4 bench kernels [--json] [--quick] [--no-ref]
       dsv4 bench kernels --rows [--formats F,..] [--row-counts N,..] [--baseline ADDON] [--small-head] [--json] [--quick]
       dsv4 bench decode [--preset NAME] [--backend ref|native] [--prompt N] [--decode N] [--profile] [--json]
       dsv4 bench serve [--preset NAME] [--backend ref|native] [--quick] [--json] [size flags below]
       dsv4 bench cache [--quick] [--context N] [--backend NAME] [--json]
       dsv4 bench gateway [--requests N] [--database postgres://…] [--json]
       dsv4 bench spec [--preset NAME] [--prompt N] [--tokens N] [--engine-tokens N] [--draft-vocab N] [--json]

kernels  Measures this machine's memory bandwidth (multi-threaded read of 1 GiB), then GEMV
         throughput in weight GB/s for FP8 4096x4096, the FP4 expert shapes 2048x4096 and
         4096x2048, and BF16 4096x4096, on the native and reference backends, each as a
         fraction of the bandwidth; plus native GEMM (prefill) throughput.
         With --rows: decode-batch products (BF16 129280x4096 head, FP8 1024x4096 and
         32768x1024) at 1-64 activation rows, in GFLOP/s and weight GB/s against the
         bandwidth and the FMA peak, and the fraction of max(bytes / bandwidth, FLOPs / peak).
decode   Decode and prefill tokens/s on a generated checkpoint (default preset flash-slice:
         real V4-Flash dimensions, 2 layers; generated once into ~/.cache/dsv4), the weight
         bytes each decoded token reads and the fraction of the bandwidth ceiling reached.
         The backend defaults to DSV4_BACKEND, else native when built.
serve    The HTTP server on 127.0.0.1 (default preset flash-slice), driven over HTTP with
         streamed chat completions: /health latency and the streams' inter-token latency
         while a long prompt is prefilled beside them, prefill tok/s through the server vs
         one model forward, decode throughput at 1/4/16/64 streams against each step's
         roofline (weight bytes / bandwidth, FLOPs / GEMM rate), and heap growth while a
         client stops reading. Each figure with its goal under "goals". The full run on
         flash-slice takes several minutes; --quick is a smaller one.
cache    The prefix cache: bytes per cached token (flash-slice, scaled to V4-Flash's 43
         layers), the hit ratio of 8 concurrent 20-step tool loops under a memory budget
         smaller than their state (against an ideal cache of the same block size), and
         time to first token at a 16K-token context cold vs warm (flash-slice).
spec     DSpark speculative decoding (default preset flash-slice-0731, ~22 GB generated
         once): a plain step, a draft block, verifying k = 1..5 drafts, measured speed-up
         with the oracle drafter forcing j accepted drafts, the per-op split, and a
         projection to the 43-layer model; through the engine, --speculative auto
         over off at 1 and 16 streams (--engine-tokens 0 skips those runs); the draft
         and the forced speed-ups again with drafts over the N lowest ids and the
         added tokens (--draft-vocab N, default 32768; 0 skips).
gateway  dsv4 gateway: its latency over calling a replica directly (p50/p99, one default-
         model replica, --requests N pairs, default 200), and on a simulated 16-tenant x
         20-step agent trace over 4 replicas (LRU block caches, no model) the prompt cache
         hit tokens of its routing against pinning tenants and round-robin, and the
         largest share of requests one replica got; and 64 concurrent requests on a key
         whose budget covers 3.5 (overspend_usd must be 0, ledger_sum_equals_usage true),
         with the embedded PGlite and, with --database postgres://…, that PostgreSQL; and
         a replica crash under six streams (failover_success: requests after it that
         succeed elsewhere, must be 1; interrupted streams end with an error event).

Options:
  --json          one JSON object instead of a table
  --quick         (kernels) smaller working sets, shorter timings
  --no-ref        (kernels) skip the slow reference backend
  --rows          (kernels) the row-count sweep instead
  --baseline PATH (kernels --rows) another build of the addon (dsv4.node), timed
                  alternately in the same process, with the speedup over it
  --small-head    (kernels --rows) a 32768-row slice of the head (a quarter of the time)
  --formats F,..  (kernels --rows) only these weight formats' shapes (bf16, fp8, fp4)
  --row-counts N,.. (kernels --rows) activation row counts (default 1,2,4,8,16,32,64)
  --preset NAME   (decode) checkpoint preset (see \`dsv4 tiny --help\`)
  --backend NAME  (decode) ref or native
  --prompt N      (decode) prompt tokens in the prefill forward (native 64, ref 8);
                  reported as prompt_tokens (--prefill N is the same option)
  --decode N      (decode) tokens decoded one by one (native 16, ref 2)
  --profile       (decode) add a pass that times every backend operation

serve options:
  --preset NAME          checkpoint preset (default flash-slice)
  --backend NAME         ref or native
  --quick                1,024-token prompt, 4 streams, 16 tokens per stream, 5 s paused
  --prompt N             long prompt length in tokens (4096)
  --streams N            decode streams beside the long prompt (16)
  --concurrency A,B,..   throughput rows (1,4,16,64)
  --max-tokens N         max_tokens per throughput stream (32)
  --idle-tokens N        tokens per stream in the idle ITL window (8)
  --health-interval MS   /health probe interval (20)
  --paused-seconds S     paused-reader window, and its baseline (30)
  --paused-streams N     streams beside the paused reader (4)
  --throughput-only      only the throughput rows and their rooflines (the other figures NaN)

cache options:
  --context N            context of the TTFT measurement (default 16384; --quick 4096)
  --quick                8-step tool loops and a 4K context
`,
  async run(argv) {
    const [what, ...rest] = argv;
    if (what === "kernels") {
      const args = parseCommandArgs(benchCommand, rest, {
        json: { type: "boolean" }, quick: { type: "boolean" }, "no-ref": { type: "boolean" }, rows: { type: "boolean" }, baseline: { type: "string" }, "small-head": { type: "boolean" },
        formats: { type: "string" }, "row-counts": { type: "string" },
      });
      if (args.values.rows) {
        const { runRowsBench, printRowsTable } = await import("../../../bench/kernels.js");
        const formats = listOption(stringOption(benchCommand, args, "formats"), "--formats", (f) => ["bf16", "fp8", "fp4"].includes(f), "is not bf16, fp8 or fp4", "fp4,fp8");
        const counts = listOption(stringOption(benchCommand, args, "row-counts"), "--row-counts", (n) => /^[1-9]\d{0,3}$/.test(n), "is not a row count from 1 to 9999", "1,2,4");
        const result = await runRowsBench({
          quick: Boolean(args.values.quick), baseline: stringOption(benchCommand, args, "baseline"), smallHead: Boolean(args.values["small-head"]),
          formats, rows: counts?.map(Number),
        });
        if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
        else printRowsTable(result);
        return 0;
      }
      const { runKernelBench, printKernelTable } = await import("../../../bench/kernels.js");
      const result = await runKernelBench({ quick: Boolean(args.values.quick), ref: !args.values["no-ref"] });
      if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
      else printKernelTable(result);
      return 0;
    }
    if (what === "decode") {
      const args = parseCommandArgs(benchCommand, rest, {
        json: { type: "boolean" }, preset: { type: "string" }, backend: { type: "string" }, prefill: { type: "string" }, prompt: { type: "string" }, decode: { type: "string" }, profile: { type: "boolean" },
      });
      const { runDecodeBench, printDecodeTable, decodeOptionsFromArgs } = await import("../../../bench/decode.js");
      let opts;
      try {
        opts = decodeOptionsFromArgs((f) => stringOption(benchCommand, args, f), (f) => Boolean(args.values[f]));
      } catch (err) {
        throw new CliError((err as Error).message, 2);
      }
      const result = await runDecodeBench(opts);
      if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
      else printDecodeTable(result);
      return 0;
    }
    if (what === "cache") {
      const args = parseCommandArgs(benchCommand, rest, { json: { type: "boolean" }, quick: { type: "boolean" }, backend: { type: "string" }, context: { type: "string" } });
      const { runCacheBench, printCacheTable } = await import("../../../bench/cache.js");
      const context = stringOption(benchCommand, args, "context");
      const n = context === undefined ? undefined : Number(context);
      if (n !== undefined && (!Number.isInteger(n) || n < 2)) throw new CliError(`--context must be an integer >= 2, got "${context}"`, 2);
      const result = await runCacheBench({ quick: Boolean(args.values.quick), backend: stringOption(benchCommand, args, "backend"), context: n });
      if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
      else printCacheTable(result);
      return 0;
    }
    if (what === "serve") {
      const args = parseCommandArgs(benchCommand, rest, {
        json: { type: "boolean" }, quick: { type: "boolean" }, preset: { type: "string" }, backend: { type: "string" }, prompt: { type: "string" },
        streams: { type: "string" }, concurrency: { type: "string" }, "max-tokens": { type: "string" }, "idle-tokens": { type: "string" },
        "health-interval": { type: "string" }, "paused-seconds": { type: "string" }, "paused-streams": { type: "string" },
        "throughput-only": { type: "boolean" },
      });
      const { runServeBench, printServeTable, serveOptionsFromArgs } = await import("../../../bench/serve.js");
      let opts;
      try {
        opts = serveOptionsFromArgs((f) => stringOption(benchCommand, args, f), (f) => Boolean(args.values[f]));
      } catch (err) {
        throw new CliError((err as Error).message, 2);
      }
      const result = await runServeBench({ ...opts, log: (line) => process.stderr.write(line + "\n") });
      if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
      else printServeTable(result);
      return result.errors > 0 ? 1 : 0;
    }
    if (what === "spec") {
      const args = parseCommandArgs(benchCommand, rest, { json: { type: "boolean" }, preset: { type: "string" }, prompt: { type: "string" }, tokens: { type: "string" }, "engine-tokens": { type: "string" }, "draft-vocab": { type: "string" } });
      const count = (flag: string, min: number) => {
        const v = stringOption(benchCommand, args, flag);
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) throw new CliError(`--${flag} must be an integer >= ${min}, got "${v}"`, 2);
        return n;
      };
      const { runSpecBench, printSpecTable } = await import("../../../bench/spec.js");
      const result = await runSpecBench({ preset: stringOption(benchCommand, args, "preset"), promptTokens: count("prompt", 1), tokens: count("tokens", 2), engineTokens: count("engine-tokens", 0), draftVocab: count("draft-vocab", 0) });
      if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
      else printSpecTable(result);
      return 0;
    }
    if (what === "gateway") {
      const args = parseCommandArgs(benchCommand, rest, { json: { type: "boolean" }, requests: { type: "string" }, database: { type: "string" } });
      const { runGatewayBench, printGatewayTable } = await import("../../../bench/gateway.js");
      const v = stringOption(benchCommand, args, "requests");
      const requests = v === undefined ? undefined : Number(v);
      if (requests !== undefined && (!Number.isInteger(requests) || requests < 1)) throw new CliError(`--requests must be a positive integer, got "${v}"`, 2);
      const database = stringOption(benchCommand, args, "database");
      if (database !== undefined && !/^postgres(ql)?:\/\//.test(database)) throw new CliError(`--database must be a postgres:// URL (the embedded PGlite always runs), got "${database}"`, 2);
      const result = await runGatewayBench({ requests, database });
      if (args.values.json) process.stdout.write(JSON.stringify(result) + "\n");
      else printGatewayTable(result);
      return 0;
    }
    throw new CliError(`bench needs a benchmark: kernels, decode, serve, cache, spec or gateway (see \`dsv4 bench --help\`)`, 2);
  },
};

/** A comma-separated option's items, each checked: a bad one is a usage error naming it. */
function listOption(value: string | undefined, flag: string, valid: (item: string) => boolean, problem: string, example: string): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(",").map((v) => v.trim());
  const bad = items.find((v) => !valid(v));
  if (bad !== undefined) throw new CliError(`${flag}: "${bad}" ${problem} (e.g. ${flag} ${example})`);
  return items;
}
