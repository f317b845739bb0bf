import { existsSync, readdirSync } from "node:fs";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { DEFAULT_PRESET, TINY_PRESETS, writeTinyCheckpoint } from "../../tiny/tiny.js";

const presetLines = Object.entries(TINY_PRESETS)
  .map(([name, p]) => `  ${name.padEnd(17)} ${p.summary}`)
  .join("\n");

export const tinyCommand: Command = {
  name: "tiny",
  summary: "write a random DeepSeek-V4-architecture checkpoint (tests, default model, benchmarks)",
  usage: `Usage: dsv4 tiny --out DIR [--preset NAME] [--seed N] [--force]

Writes a random checkpoint in the official DeepSeek-V4 layout into DIR: config.json,
model-0000K-of-0000N.safetensors shards with FP8 E4M3 weights and E8M0 128x128 block scales,
FP4 (or FP8) routed experts, BF16/F32/I64 tensors, and model.safetensors.index.json.
The bytes depend only on the preset and the seed. Presets with the real V4 vocabulary also
get the default tokenizer files.

Options:
  --out DIR       directory to write (created if missing)
  --preset NAME   one of the presets below (default ${DEFAULT_PRESET})
  --seed N        non-negative integer seed (default 0)
  --force         overwrite a DIR that already holds a checkpoint

Presets:
${presetLines}
`,
  async run(argv) {
    const args = parseCommandArgs(tinyCommand, argv, {
      out: { type: "string" },
      preset: { type: "string" },
      seed: { type: "string" },
      force: { type: "boolean" },
    });
    const out = stringOption(tinyCommand, args, "out", true);
    const preset = stringOption(tinyCommand, args, "preset") ?? DEFAULT_PRESET;
    if (!TINY_PRESETS[preset]) throw new CliError(`unknown preset "${preset}"; presets: ${Object.keys(TINY_PRESETS).join(", ")}`, 2);
    const seedText = stringOption(tinyCommand, args, "seed") ?? "0";
    const seed = Number(seedText);
    if (!/^\d+$/.test(seedText) || !Number.isSafeInteger(seed)) throw new CliError(`--seed must be a non-negative integer, got "${seedText}"`, 2);
    if (!args.values.force && holdsCheckpoint(out)) {
      throw new CliError(`${out} already holds a checkpoint; pass --force to overwrite it`, 2);
    }
    const t0 = performance.now();
    const r = await writeTinyCheckpoint(out, { preset, seed });
    const seconds = (performance.now() - t0) / 1000;
    const tokenizer = r.tokenizerWritten ? ", tokenizer files" : "";
    process.stdout.write(`wrote ${out}: preset ${preset}, seed ${seed}, ${r.tensorCount} tensors, ${r.fileBytes} bytes in ${r.shards.length} shards${tokenizer} (${seconds.toFixed(1)} s)\n`);
  },
};

function holdsCheckpoint(dir: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((f) => f === "config.json" || f.endsWith(".safetensors") || f === "model.safetensors.index.json");
}
