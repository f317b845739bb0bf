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

/** A refused lock is reported and loading goes on unlocked; any other error is rethrown. */
function refused(err: unknown): void {
  if (!(err instanceof Error && err.message.startsWith("--mlock:"))) throw err;
  console.error(`bench: weights not locked in memory (${err.message}); figures may include page-outs`);
}

export function loadModelForBench(dir: string, opts: LoadOptions): { model: Dsv4Model; locked: boolean } {
  try {
    return { model: Dsv4Model.load(dir, { ...opts, mlock: true }), locked: true };
  } catch (err) {
    refused(err);
    return { model: Dsv4Model.load(dir, opts), locked: false };
  }
}

export async function loadEngineForBench(dir: string, opts: EngineOptions): Promise<{ engine: Engine; locked: boolean }> {
  try {
    return { engine: await Engine.load(dir, { ...opts, mlock: true }), locked: true };
  } catch (err) {
    refused(err);
    return { engine: await Engine.load(dir, opts), locked: false };
  }
}
