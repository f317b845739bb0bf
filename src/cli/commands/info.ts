import { Checkpoint } from "../../formats/safetensors.js";
import { loadConfig } from "../../model/config.js";
import { summarizeModel } from "../../model/describe.js";
import { validateCheckpoint } from "../../model/weights.js";
import { checkpointRelease } from "../../text/release.js";
import { parseCommandArgs, stringOption, type Command } from "../command.js";

export const infoCommand: Command = {
  name: "info",
  summary: "describe a checkpoint: its configuration, the drafter layout found (April MTP, 0731 DSpark, none), weight bytes",
  usage: `Usage: dsv4 info --model DIR [--json]

Reads DIR's config.json and safetensors headers, checks every tensor the config requires
(presence, dtype, shape) and prints a summary: layers by attention kind, dimensions,
experts, the drafter layout found ("April MTP (1 block)", "0731 DSpark (3 stages, block 5)"
or "none"), the prompt encoder serve/run/chat pick for it (april or 0731) and the tensor
bytes. No weights are read.

Options:
  --model DIR   DeepSeek-V4 checkpoint directory
  --json        print the summary as one JSON object
`,
  async run(argv) {
    const args = parseCommandArgs(infoCommand, argv, { model: { type: "string" }, json: { type: "boolean" } });
    const dir = stringOption(infoCommand, args, "model", true);
    const cfg = loadConfig(dir);
    const ckpt = Checkpoint.open(dir);
    try {
      validateCheckpoint(ckpt, cfg);
      const s = { ...summarizeModel(cfg), encoder: checkpointRelease(cfg.raw), tensors: ckpt.names().length, weightBytes: ckpt.totalBytes(), files: ckpt.describe() };
      if (args.values.json) {
        process.stdout.write(JSON.stringify(s) + "\n");
        return;
      }
      const lines = [
        `model    ${dir}`,
        `layers   ${s.layers} (SWA ${s.attention.swa}, CSA ${s.attention.csa}, HCA ${s.attention.hca}; ${s.hashLayers} hash-routed)`,
        `dims     hidden ${s.dim}, ${s.heads} heads of ${s.headDim}, vocab ${s.vocab}, window ${s.window}, max positions ${s.maxPositions}`,
        `experts  ${s.experts} routed (top ${s.expertsPerToken}, ${s.expertDtype}) + 1 shared`,
        `drafter  ${s.drafter}${s.dspark ? `: taps of layers ${s.dspark.targetLayerIds.join(", ")}, Markov rank ${s.dspark.markovRank}, noise token ${s.dspark.noiseTokenId}` : ""}`,
        `encoder  ${s.encoder} (the prompt encoder serve, run and chat use; --encoding overrides)`,
        `weights  ${s.tensors} tensors, ${s.weightBytes.toLocaleString("en-US")} bytes (${s.files})`,
      ];
      process.stdout.write(lines.join("\n") + "\n");
    } finally {
      ckpt.close();
    }
  },
};
