/** Starting the model runner the engine steps through (see protocol.ts). */
import { createBackend } from "../../kernels/index.js";
import type { PrefetchMode } from "../../model/prefetch.js";
import type { LoadProgress } from "../../model/weights.js";
import { Dsv4Model } from "../../model/transformer.js";
import { InlineRunner } from "./inline-runner.js";
import { ModelHost } from "./model-host.js";
import type { Runner } from "./protocol.js";
import { WorkerRunner } from "./worker-runner.js";

export type { DraftOutput, DraftRequest, DraftSampling, DsparkDraftRequest, MtpDraftRequest, Runner, RunnerInfo, StepOutput, StepRequest } from "./protocol.js";

export type RunnerKind = "worker" | "inline";

export async function startRunner(
  dir: string, opts: { kind?: RunnerKind; backend?: string; prefetch?: PrefetchMode; mlock?: boolean; repack?: boolean; draftVocab?: Array<[number, number]>; onProgress?: (p: LoadProgress) => void },
): Promise<Runner> {
  const load = { backend: opts.backend, prefetch: opts.prefetch, mlock: opts.mlock ?? false, repack: opts.repack ?? true, ...(opts.draftVocab ? { draftVocab: opts.draftVocab } : {}) };
  if ((opts.kind ?? "worker") === "worker") return WorkerRunner.start(dir, load, opts.onProgress);
  const model = Dsv4Model.load(dir, { ...load, backend: createBackend(opts.backend), onProgress: opts.onProgress });
  try {
    if (opts.draftVocab) model.setDraftVocab(opts.draftVocab);
  } catch (err) {
    model.close();
    throw err;
  }
  return new InlineRunner(new ModelHost(model));
}
