/**
 * The runner thread: loads the model and carries out the engine's requests
 * one at a time, so the main thread's event loop stays free for HTTP,
 * streaming and scheduling while a step computes.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createBackend } from "../../kernels/index.js";
import { Dsv4Model } from "../../model/transformer.js";
import type { FromWorker, ToWorker, WorkerConfig } from "./messages.js";
import { ModelHost } from "./model-host.js";
import type { DraftOutput, StepOutput } from "./protocol.js";
import { BufferPool, outputBuffers } from "./transfer.js";

const port = parentPort!;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let host: ModelHost;
const logitsPool = new BufferPool();
try {
  const cfg = workerData as WorkerConfig;
  const model = Dsv4Model.load(cfg.dir, {
    backend: createBackend(cfg.backend), prefetch: cfg.prefetch, mlock: cfg.mlock, repack: cfg.repack, onProgress: (progress) => post({ type: "progress", progress }),
  });
  if (cfg.draftVocab) model.setDraftVocab(cfg.draftVocab);
  host = new ModelHost(model);
  post({ type: "ready", info: host.info });
} catch (err) {
  post({ type: "load-error", message: (err as Error).message });
  process.exit(0);
}

port.on("message", (m: ToWorker) => {
  if (!("call" in m)) {
    if (m.op === "recycle") logitsPool.give(m.buffers);
    else if (m.op === "restore") host.restore(m.id, m.chain);
    else if (m.op === "dropTail") host.dropTail(m.id, m.count);
    else host[m.op](m.id);
    return;
  }
  try {
    if (m.op === "close") {
      host.close();
      post({ type: "result", call: m.call, value: null });
      port.close();
      return;
    }
    const value = m.op === "step" ? pooled(host.step(m.requests)) : pooled(host.draft(m.requests));
    post({ type: "result", call: m.call, value }, outputBuffers(value));
  } catch (err) {
    const e = err as Error;
    post({ type: "error", call: m.call, message: e.message, stack: e.stack });
  }
});

/** A step's or a draft's logits rows in pooled buffers (the engine recycles them; BufferPool). */
function pooled<T extends StepOutput | DraftOutput>(outputs: T[]): T[] {
  for (const o of outputs) o.logits = o.logits.map((row) => logitsPool.copy(row));
  return outputs;
}
