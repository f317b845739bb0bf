/** The messages between WorkerRunner (main thread) and worker-main.ts (the runner thread). */
import type { StateBlock } from "../../model/state-blocks.js";
import type { PrefetchMode } from "../../model/prefetch.js";
import type { LoadProgress } from "../../model/weights.js";
import type { DraftRequest, RunnerInfo, StepRequest } from "./protocol.js";

/** How the runner thread loads the model. */
export interface WorkerLoad {
  backend: string | undefined;
  prefetch: PrefetchMode | undefined;
  mlock: boolean;
  /** Routed experts repacked for the kernels (LoadOptions.repack). */
  repack: boolean;
  /** Draft vocabulary id ranges (Dsv4Model.setDraftVocab); absent: the whole vocabulary. */
  draftVocab?: Array<[number, number]>;
}

export interface WorkerConfig extends WorkerLoad {
  dir: string;
}

export type ToWorker =
  | { op: "create" | "free"; id: number }
  | { op: "dropTail"; id: number; count: number }
  | { op: "recycle"; buffers: ArrayBuffer[] }
  | { op: "restore"; id: number; chain: StateBlock[] }
  | { op: "step"; call: number; requests: StepRequest[] }
  | { op: "draft"; call: number; requests: DraftRequest[] }
  | { op: "close"; call: number };

export type FromWorker =
  | { type: "progress"; progress: LoadProgress }
  | { type: "ready"; info: RunnerInfo }
  | { type: "load-error"; message: string }
  | { type: "result"; call: number; value: unknown }
  | { type: "error"; call: number; message: string; stack?: string };
