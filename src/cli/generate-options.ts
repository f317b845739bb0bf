/** Generation flags shared by `dsv4 run` and `dsv4 chat`. */
import type { GenerateRequest } from "../engine/types.js";
import { CliError, stringOption, type Command, type ParsedArgs } from "./command.js";
import { DRAFT_VOCAB_HELP, encodingOption, intOption, MLOCK_HELP, NO_REPACK_HELP, numberOption, PREFETCH_HELP, prefetchOption, SPECULATIVE_HELP, speculativeOptions } from "./load-engine.js";
import type { EngineOptions } from "../engine/types.js";

export const GENERATE_FLAGS = {
  model: { type: "string" },
  backend: { type: "string" },
  encoding: { type: "string" },
  system: { type: "string" },
  "no-think": { type: "boolean" },
  effort: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
  speculative: { type: "string" },
  "draft-vocab": { type: "string" },
  prefetch: { type: "string" },
  mlock: { type: "boolean" },
  "no-repack": { type: "boolean" },
} as const;

export const GENERATE_HELP = `  --model DIR          checkpoint directory (default: the embedded tiny random-weight model)
  --system TEXT        system prompt
  --no-think           answer without reasoning (thinking is on by default, as in DeepSeek's API)
  --effort LEVEL       reasoning effort: low, high or max (default: the encoder's own, which
                       adds no text: high with the April encoder, low with 0731)
  --encoding NAME      prompt encoder: april or 0731 (default: the checkpoint's own; 0731
                       checkpoints have dspark_* keys in config.json)
  --max-tokens N       output limit, reasoning included (default 4096)
  --temperature T      0 = greedy (default 1.0, the model card's)
  --top-p P            nucleus sampling (default 1.0)
  --seed N             reproducible sampling
  --backend NAME       compute backend (default: the fastest available)
  --speculative MODE   ${SPECULATIVE_HELP.replace(/\n {26}/g, "\n                       ")}
  --draft-vocab N      ${DRAFT_VOCAB_HELP.replace(/\n {26}/g, "\n                       ")}
  --prefetch MODE      ${PREFETCH_HELP.replace(/\n {26}/g, "\n                       ")}
  --mlock              ${MLOCK_HELP.replace(/\n {26}/g, "\n                       ")}
  --no-repack          ${NO_REPACK_HELP.replace(/\n {26}/g, "\n                       ")}`;

export const EFFORTS = ["low", "high", "max"] as const;

export function effortOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!(EFFORTS as readonly string[]).includes(value)) throw new CliError(`--effort must be one of ${EFFORTS.join(", ")}, got "${value}"`, 2);
  return value;
}

/** Sampling and thinking settings from the shared flags. */
export function generateOptions(command: Command, args: ParsedArgs): Omit<GenerateRequest, "messages"> {
  const opt = (flag: string) => stringOption(command, args, flag);
  const thinking = args.values["no-think"] !== true;
  return {
    thinking: { type: thinking ? "enabled" : "disabled" },
    reasoning_effort: effortOption(opt("effort")),
    max_tokens: intOption("max-tokens", opt("max-tokens"), 1) ?? 4096,
    temperature: numberOption("temperature", opt("temperature"), 0, 2),
    top_p: numberOption("top-p", opt("top-p"), 0, 1),
    seed: intOption("seed", opt("seed")),
  };
}

/** Engine options from the shared flags (--backend, --encoding, --speculative, --draft-vocab, --prefetch, --mlock). */
export function engineOptions(command: Command, args: ParsedArgs): EngineOptions {
  const opt = (flag: string) => stringOption(command, args, flag);
  return {
    backend: opt("backend"), encoding: encodingOption(opt("encoding")), speculative: speculativeOptions(opt("speculative"), opt("draft-vocab")), prefetch: prefetchOption(opt("prefetch")),
    mlock: args.values.mlock === true,
    repack: args.values["no-repack"] !== true,
  };
}
