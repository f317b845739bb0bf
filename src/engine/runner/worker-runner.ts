/**
 * The runner on its own thread (the default): the model loads and computes in a
 * worker, the weights mapped there once; the main thread only posts requests
 * and receives logits. Requests are answered in order, so fire-and-forget calls
 * (create, free, restore, dropTail) are in place before the next step.
 */
import { Worker } from "node:worker_threads";
import type { Vec } from "../../kernels/backend.js";
import type { StateBlock } from "../../model/state-blocks.js";
import type { LoadProgress } from "../../model/weights.js";
import type { FromWorker, ToWorker, WorkerConfig, WorkerLoad } from "./messages.js";
import type { DraftOutput, DraftRequest, Runner, RunnerInfo, StepOutput, StepRequest } from "./protocol.js";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class WorkerRunner implements Runner {
  private readonly calls = new Map<number, Pending>();
  private nextCall = 1;
  failure: Error | null = null;
  readonly offThread = true;

  private constructor(private readonly worker: Worker, readonly info: RunnerInfo) {
    // An idle runner does not keep the process alive (as the inline runner would not); one with
    // a call in flight does, so a script awaiting a step is not cut short.
    worker.unref();
    worker.on("message", (m: FromWorker) => {
      if (m.type !== "result" && m.type !== "error") return;
      const p = this.calls.get(m.call);
      if (!p) return;
      this.calls.delete(m.call);
      if (this.calls.size === 0) worker.unref();
      if (m.type === "result") p.resolve(m.value);
      else p.reject(Object.assign(new Error(m.message), { stack: m.stack ?? m.message }));
    });
    const die = (err: Error) => {
      this.failure ??= err;
      for (const p of this.calls.values()) p.reject(this.failure);
      this.calls.clear();
    };
    worker.on("error", (err) => die(new Error(`the model runner thread failed: ${err.message}`)));
    worker.on("exit", (code) => die(new Error(`the model runner thread exited (code ${code})`)));
  }

  /** Starts the thread and loads `dir` there; rejects with the loader's message. */
  static start(dir: string, load: WorkerLoad, onProgress?: (p: LoadProgress) => void): Promise<WorkerRunner> {
    const config: WorkerConfig = { dir, ...load };
    const worker = new Worker(new URL("./worker-main.js", import.meta.url), { workerData: config, stdout: false, stderr: false });
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type === "progress") onProgress?.(m.progress);
        else if (m.type === "ready") {
          cleanup();
          resolve(new WorkerRunner(worker, m.info));
        } else if (m.type === "load-error") {
          cleanup();
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`the model runner thread exited while loading (code ${code})`));
      };
      const cleanup = () => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
    });
  }

  private send(m: ToWorker): void {
    if (!this.failure) this.worker.postMessage(m);
  }

  private call<T>(m: (call: number) => ToWorker): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const call = this.nextCall++;
    return new Promise<T>((resolve, reject) => {
      if (this.calls.size === 0) this.worker.ref();
      this.calls.set(call, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage(m(call));
    });
  }

  create(id: number): void {
    this.send({ op: "create", id });
  }
  free(id: number): void {
    this.send({ op: "free", id });
  }
  restore(id: number, chain: StateBlock[]): void {
    this.send({ op: "restore", id, chain });
  }
  dropTail(id: number, count: number): void {
    this.send({ op: "dropTail", id, count });
  }
  recycle(logits: readonly Vec[]): void {
    const buffers = [...new Set(logits.flatMap((row) => (row.buffer instanceof ArrayBuffer && row.buffer.byteLength === row.byteLength ? [row.buffer] : [])))];
    if (buffers.length > 0 && !this.failure) this.worker.postMessage({ op: "recycle", buffers } satisfies ToWorker, buffers);
  }
  step(requests: StepRequest[]): Promise<StepOutput[]> {
    return this.call((call) => ({ op: "step", call, requests }));
  }
  draft(requests: DraftRequest[]): Promise<DraftOutput[]> {
    return this.call((call) => ({ op: "draft", call, requests }));
  }

  async close(): Promise<void> {
    if (!this.failure) {
      try {
        await this.call<null>((call) => ({ op: "close", call }));
      } catch {
        // Closing a runner that already failed has nothing left to release.
      }
    }
    this.failure ??= new Error("the model runner was closed");
    await this.worker.terminate();
  }
}
