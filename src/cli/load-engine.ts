/**
 * Loading a model for the CLI commands: the --model directory or the embedded
 * default, with a progress bar on stderr. Failures become one-line CliErrors.
 */
import { existsSync, statSync } from "node:fs";
import { Engine } from "../engine/engine.js";
import type { EngineOptions, LoadProgress as EngineLoadProgress, ModelInfo, SchedulingPolicy, SpeculativeMode, SpeculativeOptions } from "../engine/types.js";
import { SCHEDULING_POLICIES } from "../engine/scheduler.js";
import { PREFETCH_MODES, type PrefetchMode } from "../model/prefetch.js";
import { parseRelease, type Release } from "../text/release.js";
import { CliError } from "./command.js";
import { ensureDefaultModel } from "./default-model.js";
import { ProgressBar } from "./progress.js";

export interface LoadedModel {
  engine: Engine;
  dir: string;
  /** True when serving the tiny random-weight default (its output is noise). */
  isDefault: boolean;
}

const PHASE_LABELS: Partial<Record<EngineLoadProgress["phase"], string>> = {
  identity: "hashing the checkpoint (remembered for later loads)",
  prefetch: "reading the weights into memory (--prefetch off skips this)",
  repack: "repacking the routed experts for the CPU kernels (--no-repack skips this)",
};

export async function loadEngine(modelDir: string | undefined, options: EngineOptions = {}, quiet = false): Promise<LoadedModel> {
  const bar = quiet ? undefined : new ProgressBar();
  let dir = modelDir;
  const isDefault = dir === undefined;
  try {
    if (dir === undefined) {
      bar?.update({ phase: "default model", loaded: 0, total: 1 });
      dir = (await ensureDefaultModel()).dir;
    } else if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new CliError(`--model ${dir}: no such directory`, 2);
    }
    const engine = await Engine.load(dir, {
      ...options,
      // A checkpoint's first load hashes all of it (minutes for a real one): say why it waits.
      onProgress: (p) => bar?.update({ phase: PHASE_LABELS[p.phase] ?? p.phase, loaded: p.loaded, total: p.total }),
    });
    return { engine, dir, isDefault };
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot load the model from ${dir ?? "the default location"}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    bar?.done();
  }
}

/** A positive integer option, or a usage error naming the flag. */
export function intOption(flag: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new CliError(`--${flag} must be an integer ≥ ${min}, got "${value}"`, 2);
  return n;
}

export function numberOption(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new CliError(`--${flag} must be a number in [${min}, ${max}], got "${value}"`, 2);
  return n;
}

const SPECULATIVE_MODES: readonly SpeculativeMode[] = ["auto", "dspark", "mtp", "off"];

/** --speculative: auto, dspark, mtp or off (absent: the engine's default, auto). */
export function speculativeOption(value: string | undefined): SpeculativeMode | undefined {
  if (value === undefined) return undefined;
  if (!(SPECULATIVE_MODES as readonly string[]).includes(value)) throw new CliError(`--speculative must be one of ${SPECULATIVE_MODES.join(", ")}, got "${value}"`, 2);
  return value as SpeculativeMode;
}

/** --speculative and --draft-vocab as the engine's speculative option. */
export function speculativeOptions(mode: string | undefined, draftVocab: string | undefined): SpeculativeMode | SpeculativeOptions | undefined {
  const m = speculativeOption(mode);
  const n = intOption("draft-vocab", draftVocab, 1);
  if (n === undefined) return m;
  if (m === "off") throw new CliError("--draft-vocab restricts what drafts propose, but --speculative is off: drop one of them", 2);
  return { ...(m ? { mode: m } : {}), draftVocab: n };
}

/** --prefetch: auto, on or off (absent: the engine's default, auto). */
export function prefetchOption(value: string | undefined): PrefetchMode | undefined {
  if (value === undefined) return undefined;
  if (!(PREFETCH_MODES as readonly string[]).includes(value)) throw new CliError(`--prefetch must be one of ${PREFETCH_MODES.join(", ")}, got "${value}"`, 2);
  return value as PrefetchMode;
}

export function schedulingPolicyOption(value: string | undefined): SchedulingPolicy | undefined {
  if (value === undefined) return undefined;
  if (!(SCHEDULING_POLICIES as readonly string[]).includes(value)) throw new CliError(`--scheduling-policy must be one of ${SCHEDULING_POLICIES.join(", ")}, got "${value}"`, 2);
  return value as SchedulingPolicy;
}

export const PREFETCH_HELP = `read every page of the weights at load, so no request stalls on the
                          first use of an expert or the drafter: auto (default: when the
                          checkpoint fits in available memory with 2 GiB to spare), on, off`;

export const MLOCK_HELP = `keep the weights in memory after loading them, never paged out (mlock;
                          needs ulimit -l to cover the checkpoint: loading says so otherwise)`;

export const NO_REPACK_HELP = `read the routed experts in place from the mapped checkpoint instead of
                          copying them at load into the layout the AVX-512 kernels stream
                          faster (the same results; a faster load, memory shared with the page cache)`;

/** The --speculative help line, for every command that loads an engine to generate. */
export const SPECULATIVE_HELP = `speculative decoding: auto (default: the checkpoint's drafter, DSpark or
                          MTP, where a measured cost model says drafts pay), dspark, mtp (always
                          draft with that one), or off. Output is the same either way`;

/** The --draft-vocab help line. */
export const DRAFT_VOCAB_HELP = `drafts propose only the N lowest token ids (BPE merge order, the most
                          frequent first) and the tokenizer's added tokens: the draft head reads
                          N/vocabulary of its rows (32768: about a quarter of V4's), at some
                          acceptance. Output is the same either way (default: all ids)`;

/** `--encoding april|0731`: the prompt encoder, instead of the checkpoint's own. */
export function encodingOption(value: string | undefined): Release | undefined {
  if (value === undefined) return undefined;
  try {
    return parseRelease(value, "--encoding");
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/** Which prompt encoder is in use and why, for start-up lines: "0731 (the checkpoint's)". */
export function describeEncoder(model: Pick<ModelInfo, "release" | "encoding">): string {
  if (model.encoding === model.release) return `${model.encoding} (the checkpoint's; --encoding to change)`;
  return `${model.encoding} (--encoding; the checkpoint is ${model.release})`;
}
