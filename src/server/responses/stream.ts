/**
 * Engine deltas → the Responses API's semantic SSE events, in the order the `openai` SDK's
 * stream accumulator expects: response.created, response.in_progress, then per output item
 * output_item.added → (content_part.added → *.delta … → *.done → content_part.done) →
 * output_item.done, and last response.completed (or .incomplete / .failed). Every event carries
 * its `sequence_number`; there is no `[DONE]`.
 */
import type { FinishReason, OutputDelta } from "../../engine/types.js";
import type { ResponsesEcho } from "./request.js";
import {
  finalStatus,
  IN_PROGRESS,
  itemId,
  itemStatus,
  outputText,
  responseObject,
  type FunctionCallItem,
  type MessageItem,
  type OutputItem,
  type ReasoningItem,
  type ResponseIdentity,
  type ResponsesUsage,
} from "./response.js";

export type Emit = (type: string, payload: Record<string, unknown>) => Promise<void>;

type TextOpen = { kind: "reasoning" | "message"; id: string; index: number; text: string };
type CallOpen = { kind: "function_call"; id: string; index: number; text: string; callId: string; name: string };
type Open = TextOpen | CallOpen;

export class ResponsesStreamer {
  private sequence = 0;
  private open: Open | undefined;
  private readonly output: OutputItem[] = [];
  private sawMessage = false;
  private sawCall = false;

  constructor(
    private readonly emitRaw: Emit,
    private readonly ident: ResponseIdentity,
    private readonly echo: ResponsesEcho,
  ) {}

  private emit(type: string, payload: Record<string, unknown>): Promise<void> {
    return this.emitRaw(type, { type, sequence_number: this.sequence++, ...payload });
  }

  async start(): Promise<void> {
    const response = responseObject(this.ident, this.echo, { output: [], usage: null, status: IN_PROGRESS });
    await this.emit("response.created", { response });
    await this.emit("response.in_progress", { response });
  }

  async delta(d: OutputDelta): Promise<void> {
    switch (d.type) {
      case "reasoning": {
        const item = await this.ensure("reasoning");
        item.text += d.text;
        await this.emit("response.reasoning_text.delta", { item_id: item.id, output_index: item.index, content_index: 0, delta: d.text });
        return;
      }
      case "content": {
        const item = await this.ensure("message");
        item.text += d.text;
        await this.emit("response.output_text.delta", { item_id: item.id, output_index: item.index, content_index: 0, delta: d.text, logprobs: [] });
        return;
      }
      case "tool_call": {
        await this.close("completed");
        const open: Open = { kind: "function_call", id: itemId("fc"), index: this.output.length, text: "", callId: d.id, name: d.name };
        this.open = open;
        this.sawCall = true;
        await this.emit("response.output_item.added", { output_index: open.index, item: this.callItem(open, "in_progress") });
        return;
      }
      case "tool_arguments": {
        const item = this.open;
        if (item?.kind !== "function_call") return;
        item.text += d.text;
        await this.emit("response.function_call_arguments.delta", { item_id: item.id, output_index: item.index, delta: d.text });
        return;
      }
    }
  }

  /** Closes the last item and sends the final response with its usage. */
  async finish(reason: FinishReason, usage: ResponsesUsage): Promise<void> {
    const status = finalStatus(reason);
    // A turn with neither text nor calls still answers with an (empty) message, as the JSON form does.
    if (!this.sawMessage && !this.sawCall) await this.ensure("message");
    await this.close(itemStatus(status.status) === "completed" ? "completed" : "incomplete");
    const response = responseObject(this.ident, this.echo, { output: this.output, usage, status });
    const event = status.status === "completed" ? "response.completed" : status.status === "failed" ? "response.failed" : "response.incomplete";
    await this.emit(event, { response });
  }

  /** An `error` event: the stream stops without a final response. */
  async error(body: { message: string; type: string; param: string | null; code: string | null }): Promise<void> {
    await this.emit("error", { code: body.code ?? body.type, message: body.message, param: body.param });
  }

  private async ensure(kind: TextOpen["kind"]): Promise<TextOpen> {
    if (this.open?.kind === kind) return this.open as TextOpen;
    await this.close("completed");
    const open: TextOpen = { kind, id: itemId(kind === "reasoning" ? "rs" : "msg"), index: this.output.length, text: "" };
    this.open = open;
    const base = { item_id: open.id, output_index: open.index, content_index: 0 };
    if (kind === "reasoning") {
      await this.emit("response.output_item.added", { output_index: open.index, item: this.reasoningItem(open, "in_progress") });
      await this.emit("response.content_part.added", { ...base, part: { type: "reasoning_text", text: "" } });
    } else {
      this.sawMessage = true;
      await this.emit("response.output_item.added", { output_index: open.index, item: { id: open.id, type: "message", role: "assistant", status: "in_progress", content: [] } });
      await this.emit("response.content_part.added", { ...base, part: outputText("") });
    }
    return open;
  }

  private async close(status: "completed" | "incomplete"): Promise<void> {
    const item = this.open;
    if (!item) return;
    this.open = undefined;
    const base = { item_id: item.id, output_index: item.index };
    let done: OutputItem;
    if (item.kind === "function_call") {
      await this.emit("response.function_call_arguments.done", { ...base, arguments: item.text, name: item.name });
      done = this.callItem(item, status);
    } else if (item.kind === "reasoning") {
      await this.emit("response.reasoning_text.done", { ...base, content_index: 0, text: item.text });
      await this.emit("response.content_part.done", { ...base, content_index: 0, part: { type: "reasoning_text", text: item.text } });
      done = this.reasoningItem(item, status);
    } else {
      await this.emit("response.output_text.done", { ...base, content_index: 0, text: item.text, logprobs: [] });
      await this.emit("response.content_part.done", { ...base, content_index: 0, part: outputText(item.text) });
      done = { id: item.id, type: "message", role: "assistant", status, content: [outputText(item.text)] } satisfies MessageItem;
    }
    this.output.push(done);
    await this.emit("response.output_item.done", { output_index: item.index, item: done });
  }

  private reasoningItem(item: Open, status: ReasoningItem["status"]): ReasoningItem {
    return { id: item.id, type: "reasoning", summary: [], content: status === "in_progress" ? [] : [{ type: "reasoning_text", text: item.text }], status };
  }

  private callItem(item: CallOpen, status: FunctionCallItem["status"]): FunctionCallItem {
    return { id: item.id, type: "function_call", call_id: item.callId, name: item.name, arguments: status === "in_progress" ? "" : item.text, status };
  }
}
