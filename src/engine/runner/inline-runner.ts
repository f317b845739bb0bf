/**
 * The runner on the calling thread (`EngineOptions.runner: "inline"`): the same
 * protocol with no thread in between, for debugging and profiling. A step then
 * blocks the event loop for its whole duration.
 */
import type { StateBlock } from "../../model/state-blocks.js";
import type { ModelHost } from "./model-host.js";
import type { DraftOutput, DraftRequest, Runner, RunnerInfo, StepOutput, StepRequest } from "./protocol.js";

export class InlineRunner implements Runner {
  readonly info: RunnerInfo;
  /** A step that throws on the caller's own thread leaves nothing broken behind. */
  readonly failure = null;
  readonly offThread = false;

  constructor(private readonly host: ModelHost) {
    this.info = host.info;
  }

  create(id: number): void {
    this.host.create(id);
  }
  free(id: number): void {
    this.host.free(id);
  }
  restore(id: number, chain: StateBlock[]): void {
    this.host.restore(id, chain);
  }
  dropTail(id: number, count: number): void {
    this.host.dropTail(id, count);
  }
  recycle(): void {
    // The logits never left this thread: nothing to hand back.
  }
  async step(requests: StepRequest[]): Promise<StepOutput[]> {
    return this.host.step(requests);
  }
  async draft(requests: DraftRequest[]): Promise<DraftOutput[]> {
    return this.host.draft(requests);
  }
  async close(): Promise<void> {
    this.host.close();
  }
}
