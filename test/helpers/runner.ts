import type { Worker } from "node:worker_threads";
import type { Engine } from "../../src/engine/engine.js";
import { waitFor } from "./wait.js";

/** Ends an engine's model runner thread, as a crash in it would, and waits until the engine has noticed. */
export async function killRunner(engine: Engine): Promise<void> {
  await (engine as unknown as { runner: { worker: Worker } }).runner.worker.terminate();
  await waitFor(() => !engine.health().ok, 5000, "the engine to notice its runner is gone");
}
