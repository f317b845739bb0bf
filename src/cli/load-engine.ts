/**
 * Loading a model for the CLI commands: the --model directory or the embedded
 * default, with a progress bar on stderr. Failures become one-line CliErrors.
 */
import { existsSync, statSync } from "node:fs";
import { Engine } from "../engine/engine.js";
import type { EngineOptions, ModelInfo } from "../engine/types.js";
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
      onProgress: (p) => bar?.update({ phase: p.phase === "identity" ? "hashing the checkpoint (remembered for later loads)" : p.phase, loaded: p.loaded, total: p.total }),
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
