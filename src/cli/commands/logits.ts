import { readFileSync } from "node:fs";
import { encodeFromNumbers } from "../../formats/dtypes.js";
import { writeSafetensors, type TensorToWrite } from "../../formats/safetensors-writer.js";
import { createBackend } from "../../kernels/index.js";
import { Dsv4Model } from "../../model/transformer.js";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";

/** Prompt tokens per forward call: large enough to batch weight reads, small enough to bound memory. */
const CHUNK = 64;

export const logitsCommand: Command = {
  name: "logits",
  summary: "write the model's logits for every position of a token sequence (conformance)",
  usage: `Usage: dsv4 logits --model DIR --tokens-file IDS.json --out OUT.safetensors [--mtp] [--backend NAME]

Runs the model over the token ids in IDS.json (a JSON array of integers) and writes
OUT.safetensors with "logits" [T, vocab]: the logits at every position, with the
semantics of token-by-token decoding. With --mtp it also writes "mtp_logits" [T-1, vocab]:
the MTP block fed the final residual streams at position i and token i+1 (predicting i+2).
Tensors are F64 when the backend computes in float64 (ref), F32 otherwise.

Options:
  --model DIR          DeepSeek-V4 checkpoint directory (config.json + safetensors)
  --tokens-file FILE   JSON array of token ids
  --out FILE           output .safetensors path
  --mtp                also compute the MTP block's logits
  --backend NAME       compute backend (default: DSV4_BACKEND or the fastest available)
`,
  async run(argv) {
    const args = parseCommandArgs(logitsCommand, argv, {
      model: { type: "string" },
      "tokens-file": { type: "string" },
      out: { type: "string" },
      mtp: { type: "boolean" },
      backend: { type: "string" },
    });
    const modelDir = stringOption(logitsCommand, args, "model", true);
    const tokensFile = stringOption(logitsCommand, args, "tokens-file", true);
    const out = stringOption(logitsCommand, args, "out", true);
    const ids = readTokenIds(tokensFile);
    const backend = createBackend(stringOption(logitsCommand, args, "backend"));
    const model = Dsv4Model.load(modelDir, { backend });
    try {
      const V = model.cfg.vocabSize;
      const bad = ids.findIndex((t) => t >= V);
      if (bad >= 0) throw new CliError(`${tokensFile}: token ${ids[bad]} at index ${bad} is outside the model's vocabulary [0, ${V})`);
      const seq = model.newSequence();
      const logits = new Float64Array(ids.length * V);
      const residuals: Array<Float64Array | Float32Array> = [];
      for (let i = 0; i < ids.length; i += CHUNK) {
        const [res] = model.forward([{ seq, tokens: ids.slice(i, i + CHUNK) }], { logits: "all", residual: args.values.mtp ? "all" : "none" });
        res!.logits.forEach((l, k) => logits.set(l, (i + k) * V));
        residuals.push(...res!.residual);
      }
      const dtype = backend.precision === "f64" ? "F64" : "F32";
      const tensors: TensorToWrite[] = [{ name: "logits", dtype, shape: [ids.length, V], data: encodeFromNumbers(dtype, logits) }];
      if (args.values.mtp) {
        const mtp = new Float64Array(Math.max(ids.length - 1, 0) * V);
        for (let i = 0; i + 1 < ids.length; i++) {
          const [o] = model.mtpForward([{ seq, hidden: residuals[i]!, token: ids[i + 1]! }]);
          mtp.set(o!.logits!, i * V);
        }
        tensors.push({ name: "mtp_logits", dtype, shape: [Math.max(ids.length - 1, 0), V], data: encodeFromNumbers(dtype, mtp) });
      }
      writeSafetensors(out, tensors, { backend: backend.name, model: modelDir });
      process.stderr.write(`wrote ${out}: ${tensors.map((t) => `${t.name} ${t.dtype} [${t.shape.join(", ")}]`).join(", ")}\n`);
    } finally {
      model.close();
    }
  },
};

function readTokenIds(path: string): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(`${path}: ${e.code ? `cannot read (${e.code})` : `not valid JSON (${e.message})`}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new CliError(`${path}: expected a non-empty JSON array of token ids`);
  const bad = parsed.findIndex((t) => !Number.isInteger(t) || t < 0);
  if (bad >= 0) throw new CliError(`${path}: element ${bad} (${JSON.stringify(parsed[bad])}) is not a non-negative integer token id`);
  return parsed as number[];
}
