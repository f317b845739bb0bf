import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";

export const benchCommand: Command = {
  name: "bench",
  summary: "benchmarks: kernel GEMV throughput vs memory bandwidth, end-to-end decode/prefill speed",
  usage: `Usage: dsv4 bench kernels [--json] [--quick] [--no-ref]
       dsv4 bench kernels --rows [--baseline ADDON] [--small-head] [--json] [--quick]
       dsv4 bench decode [--preset NAME] [--backend ref|native] [--prompt N] [--decode N] [--profile] [--json]

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

Options:
  --json          one JSON object instead of a table
  --quick         (kernels) smaller working sets, shorter timings
  --no-ref        (kernels) skip the slow reference backend
  --rows          (kernels) the row-count sweep instead
  --baseline PATH (kernels --rows) another build of the addon (dsv4.node), timed
                  alternately in the same process, with the speedup over it
  --small-head    (kernels --rows) a 32768-row slice of the head (a quarter of the time)
  --preset NAME   (decode) checkpoint preset (see \`dsv4 tiny --help\`)
  --backend NAME  (decode) ref or native
  --prompt N      (decode) prompt tokens in the prefill forward (native 64, ref 8);
                  reported as prompt_tokens (--prefill N is the same option)
  --decode N      (decode) tokens decoded one by one (native 16, ref 2)
  --profile       (decode) add a pass that times every backend operation
`,
  async run(argv) {
    const [what, ...rest] = argv;
    if (what === "kernels") {
      const args = parseCommandArgs(benchCommand, rest, {
        json: { type: "boolean" }, quick: { type: "boolean" }, "no-ref": { type: "boolean" }, rows: { type: "boolean" }, baseline: { type: "string" }, "small-head": { type: "boolean" },
      });
      if (args.values.rows) {
        const { runRowsBench, printRowsTable } = await import("../../../bench/kernels.js");
        const result = await runRowsBench({ quick: Boolean(args.values.quick), baseline: stringOption(benchCommand, args, "baseline"), smallHead: Boolean(args.values["small-head"]) });
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
    throw new CliError(`bench needs a benchmark: kernels or decode (see \`dsv4 bench --help\`)`, 2);
  },
};
