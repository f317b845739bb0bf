import { readFileSync } from "node:fs";
import { encodeFromNumbers } from "../../formats/dtypes.js";
import { writeSafetensors, type TensorToWrite } from "../../formats/safetensors-writer.js";
import { createBackend } from "../../kernels/index.js";
import { modelLine } from "../../model/describe.js";
import { Dsv4Model } from "../../model/transformer.js";
import { drafterLayout } from "../../model/weights.js";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";

/** Prompt tokens per forward call: large enough to batch weight reads, small enough to bound memory. */
const CHUNK = 64;

export const logitsCommand: Command = {
  name: "logits",
  summary: "write the model's logits for every position of a token sequence (conformance)",
  usage: `Usage: dsv4 logits --model DIR --tokens-file IDS.json --out OUT.safetensors [--mtp | --draft] [--backend NAME]

Runs the model over the token ids in IDS.json (a JSON array of integers) and writes
OUT.safetensors with "logits" [T, vocab]: the logits at every position, with the
semantics of token-by-token decoding. With --mtp it also writes "mtp_logits" [T-1, vocab]:
the MTP block fed the final residual streams at position i and token i+1 (predicting i+2).
With --draft (0731 DSpark checkpoints) it also writes, for every start position t = 1 … T-2
(row t-1), a DSpark block drafted from t with the anchor token t+1 (teacher forced, greedy):
"draft_ids" I64 [T-2, block+1] ([anchor, d_1 … d_B]), "draft_logits" [T-2, block, vocab]
(Markov bias included; row i predicts token t+2+i) and "confidence" [T-2, block], the
convention of the tiny-dspark goldens. --draft runs the main model one token at a time.
Tensors are F64 when the backend computes in float64 (ref), F32 otherwise.

Options:
  --model DIR          DeepSeek-V4 checkpoint directory (config.json + safetensors)
  --tokens-file FILE   JSON array of token ids
  --out FILE           output .safetensors path
  --mtp                also compute the MTP block's logits (April checkpoints)
  --draft              also compute DSpark drafts (0731 checkpoints)
  --backend NAME       compute backend (default: DSV4_BACKEND or the fastest available)
`,
  async run(argv) {
    const args = parseCommandArgs(logitsCommand, argv, {
      model: { type: "string" },
      "tokens-file": { type: "string" },
      out: { type: "string" },
      mtp: { type: "boolean" },
      draft: { type: "boolean" },
      backend: { type: "string" },
    });
    const modelDir = stringOption(logitsCommand, args, "model", true);
    const tokensFile = stringOption(logitsCommand, args, "tokens-file", true);
    const out = stringOption(logitsCommand, args, "out", true);
    const ids = readTokenIds(tokensFile);
    const backend = createBackend(stringOption(logitsCommand, args, "backend"));
    if (args.values.mtp && args.values.draft) throw new CliError("give at most one of --mtp and --draft", 2);
    const model = Dsv4Model.load(modelDir, { backend });
    try {
      if (args.values.draft && model.cfg.drafter !== "dspark") {
        throw new CliError(`--draft needs a 0731 checkpoint with DSpark stages; ${modelDir} has drafter: ${drafterLayout(model.cfg)}${model.cfg.drafter === "mtp" ? " (use --mtp)" : ""}`);
      }
      if (args.values.mtp && model.cfg.drafter !== "mtp") {
        throw new CliError(`--mtp needs an April checkpoint with an MTP block; ${modelDir} has drafter: ${drafterLayout(model.cfg)}${model.cfg.drafter === "dspark" ? " (use --draft)" : ""}`);
      }
      const V = model.cfg.vocabSize;
      const bad = ids.findIndex((t) => t >= V);
      if (bad >= 0) throw new CliError(`${tokensFile}: token ${ids[bad]} at index ${bad} is outside the model's vocabulary [0, ${V})`);
      process.stderr.write(`loaded ${modelDir}: ${modelLine(model.cfg)}\n`);
      const dtype = backend.precision === "f64" ? "F64" : "F32";
      if (args.values.draft) {
        writeSafetensors(out, draftTensors(model, ids, dtype), { backend: backend.name, model: modelDir });
        process.stderr.write(`wrote ${out}\n`);
        return;
      }
      const seq = model.newSequence();
      const logits = new Float64Array(ids.length * V);
      const residuals: Array<Float64Array | Float32Array> = [];
      for (let i = 0; i < ids.length; i += CHUNK) {
        const [res] = model.forward([{ seq, tokens: ids.slice(i, i + CHUNK) }], { logits: "all", residual: args.values.mtp ? "all" : "none" });
        res!.logits.forEach((l, k) => logits.set(l, (i + k) * V));
        residuals.push(...res!.residual);
      }
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

/**
 * The tiny-dspark goldens' convention: the main model runs position t (writing the DSpark
 * rings), then drafts from t with the anchor ids[t+1]; t = 0 only fills the rings.
 */
function draftTensors(model: Dsv4Model, ids: number[], dtype: "F64" | "F32"): TensorToWrite[] {
  const V = model.cfg.vocabSize;
  const B = model.cfg.dspark!.blockSize;
  const T = ids.length;
  const rows = Math.max(T - 2, 0);
  const logits = new Float64Array(T * V);
  const draftIds = new BigInt64Array(rows * (B + 1));
  const draftLogits = new Float64Array(rows * B * V);
  const confidence = new Float64Array(rows * B);
  const seq = model.newSequence();
  for (let t = 0; t < T; t++) {
    const [res] = model.forward([{ seq, tokens: [ids[t]!], logits: "all", dspark: true, mainXLast: 1 }]);
    logits.set(res!.logits[0]!, t * V);
    if (t < 1 || t > T - 2) continue;
    const j = t - 1;
    const [d] = model.dsparkDraft([{ seq, mainX: res!.mainX[0]!, anchor: ids[t + 1]! }]);
    [ids[t + 1]!, ...d!.tokens].forEach((id, i) => (draftIds[j * (B + 1) + i] = BigInt(id)));
    d!.logits.forEach((l, i) => draftLogits.set(l, (j * B + i) * V));
    confidence.set(d!.confidence, j * B);
  }
  return [
    { name: "logits", dtype, shape: [T, V], data: encodeFromNumbers(dtype, logits) },
    { name: "draft_ids", dtype: "I64", shape: [rows, B + 1], data: new Uint8Array(draftIds.buffer) },
    { name: "draft_logits", dtype, shape: [rows, B, V], data: encodeFromNumbers(dtype, draftLogits) },
    { name: "confidence", dtype, shape: [rows, B], data: encodeFromNumbers(dtype, confidence) },
  ];
}

export function readTokenIds(path: string): number[] {
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
