/**
 * Benchmarks load their weights locked in memory (`--mlock`) where the locked-memory limit
 * allows: the VMs they run on page out memory left unread for about a minute (see
 * warm-experts.ts), splitting the page cache's 2 MiB folios as they go, so an expert unused
 * between two phases came back from disk in 4 KiB pages and a later figure measured the host,
 * not the engine. Where the lock is refused the benchmark runs unlocked and says so.
 */
import { Engine } from "../src/engine/engine.js";
import type { EngineOptions } from "../src/engine/types.js";
import { Dsv4Model, type LoadOptions } from "../src/model/transformer.js";

/** Whether the weights were locked, and why not. */
export interface WeightsLock {
  locked: boolean;
  /** The refusal, when not locked. */
  why: string | null;
}

const refused = (err: unknown) => err instanceof Error && err.message.startsWith("--mlock:");

export function loadModelForBench(dir: string, opts: LoadOptions): { model: Dsv4Model; lock: WeightsLock } {
  try {
    return { model: Dsv4Model.load(dir, { ...opts, mlock: true }), lock: { locked: true, why: null } };
  } catch (err) {
    if (!refused(err)) throw err;
    console.error(`bench: weights not locked in memory (${(err as Error).message}); figures may include page-outs`);
    return { model: Dsv4Model.load(dir, opts), lock: { locked: false, why: (err as Error).message } };
  }
}

export async function loadEngineForBench(dir: string, opts: EngineOptions): Promise<{ engine: Engine; lock: WeightsLock }> {
  try {
    return { engine: await Engine.load(dir, { ...opts, mlock: true }), lock: { locked: true, why: null } };
  } catch (err) {
    if (!refused(err)) throw err;
    console.error(`bench: weights not locked in memory (${(err as Error).message}); figures may include page-outs`);
    return { engine: await Engine.load(dir, opts), lock: { locked: false, why: (err as Error).message } };
  }
}
