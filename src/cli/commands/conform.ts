import { formatConformReport } from "../../conform/format.js";
import { runConform } from "../../conform/lockstep.js";
import { conformTokens } from "../../conform/tokens.js";
import { createBackend } from "../../kernels/index.js";
import { loadConfig } from "../../model/config.js";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { readTokenIds } from "./logits.js";

export const conformCommand: Command = {
  name: "conform",
  summary: "run the float64 reference and a backend in lockstep; tell rounding flips from kernel errors",
  usage: `Usage: dsv4 conform --model DIR [--tokens-file IDS.json | --tokens N] [--backend NAME] [--json]

Runs the float64 reference backend and the chosen backend over the same tokens in lockstep
(one prefill chunk with --prefill, then position by position). At every quantisation point
(activation FP8 quantisation before each quantised linear, the KV FP8 simulation, the
indexer's FP4 simulation) it compares the two backends' rounding decisions. A value the
backend rounds differently is a flip when its input lies within --max-distance (relative)
of the rounding boundary: float32 and float64 landed on either side of it. Each is logged
with its site (position, layer, op, row, element), then the backend is given the
reference's decision, so the runs stay in lockstep; router and indexer selections are
aligned the same way. After each step the logits are compared.

Exits 1 when a disagreement lies farther than --max-distance from any rounding boundary
(a kernel computing something else), when the aligned logits differ by more than
--tolerance, or when more selections differed than --max-selection-flips.

Options:
  --model DIR               DeepSeek-V4 checkpoint directory (config.json + safetensors)
  --tokens-file FILE        JSON array of token ids
  --tokens N                N token ids drawn from the vocabulary (default 32; --seed picks them)
  --seed S                  seed for --tokens (default 1)
  --prefill N               run the first N tokens as one prefill chunk (default 0: all decode)
  --backend NAME            backend under test (default native)
  --max-distance D          largest relative distance of a flip from its boundary (default 1e-5)
  --tolerance T             largest |logit difference| after alignment (default 1e-4)
  --max-selection-flips K   router/indexer selections allowed to differ (default 0)
  --json                    print the report as one JSON object
`,
  async run(argv) {
    const args = parseCommandArgs(conformCommand, argv, {
      model: { type: "string" },
      "tokens-file": { type: "string" },
      tokens: { type: "string" },
      seed: { type: "string" },
      prefill: { type: "string" },
      backend: { type: "string" },
      "max-distance": { type: "string" },
      tolerance: { type: "string" },
      "max-selection-flips": { type: "string" },
      json: { type: "boolean" },
    });
    const modelDir = stringOption(conformCommand, args, "model", true);
    const tokensFile = stringOption(conformCommand, args, "tokens-file");
    if (tokensFile && args.values.tokens !== undefined) throw new CliError("give at most one of --tokens-file and --tokens", 2);
    const num = (flag: string, fallback: number, integer: boolean): number => {
      const raw = stringOption(conformCommand, args, flag);
      if (raw === undefined) return fallback;
      const v = Number(raw);
      if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) throw new CliError(`--${flag} must be a non-negative ${integer ? "integer" : "number"}, got "${raw}"`, 2);
      return v;
    };
    const cfg = loadConfig(modelDir);
    const ids = tokensFile ? readTokenIds(tokensFile) : conformTokens(num("tokens", 32, true), cfg.vocabSize, num("seed", 1, true));
    if (ids.length === 0) throw new CliError("--tokens must be at least 1", 2);
    const backend = createBackend(stringOption(conformCommand, args, "backend") ?? "native");
    const json = args.values.json === true;
    const report = runConform({
      modelDir, tokens: ids, backend,
      prefill: num("prefill", 0, true),
      maxDistance: num("max-distance", 1e-5, false),
      tolerance: num("tolerance", 1e-4, false),
      maxSelectionFlips: num("max-selection-flips", 0, true),
      onStep: json ? undefined : (s) => process.stderr.write(`position ${s.position}${s.tokens > 1 ? `-${s.position + s.tokens - 1}` : ""}: ${s.flips} flips, max |logit diff| ${s.maxLogitDiff.toExponential(2)} (ref ${s.seconds.reference.toFixed(2)} s, ${s.seconds.referenceCpu.toFixed(2)} s CPU; ${backend.name} ${s.seconds.backend.toFixed(2)} s)\n`),
    });
    process.stdout.write(json ? `${JSON.stringify(report)}\n` : `${formatConformReport(report)}\n`);
    return report.ok ? 0 : 1;
  },
};
