/**
 * A chat session keeps the conversation and replays it each turn; the prefix
 * cache turns that replay into a restore of everything up to the last turn,
 * so each turn prefills only what is new. Disposing it cancels the turns still
 * running (the engine disposes its sessions the same way).
 */
import type { ChatMessage } from "../text/messages.js";
import type { ChatSession, ChatSessionOptions, EngineApi, GenerateRequest, Generation } from "./types.js";

export class ChatSessionImpl implements ChatSession {
  private readonly history: ChatMessage[] = [];
  private readonly running = new Set<Generation>();
  private disposed = false;

  constructor(private readonly engine: EngineApi, private readonly options: ChatSessionOptions, private readonly onDispose: () => void = () => undefined) {
    if (options.system !== undefined) this.history.push({ role: "system", content: options.system });
  }

  get messages(): readonly ChatMessage[] {
    return this.history;
  }

  prompt(input: string | ChatMessage[], options: Omit<GenerateRequest, "messages"> = {}): Generation {
    if (this.disposed) throw new Error("this chat session has been disposed");
    const added: ChatMessage[] = typeof input === "string" ? [{ role: "user", content: input }] : input;
    const messages = [...this.history, ...added];
    const gen = this.engine.generate({ tools: this.options.tools, ...this.options.defaults, ...options, messages });
    this.running.add(gen);
    void gen
      .result()
      .then((r) => {
        if (this.disposed) return;
        const m = r.message;
        this.history.push(...added, {
          role: "assistant",
          content: m.content,
          reasoning_content: m.reasoning_content,
          ...(m.tool_calls.length > 0 ? { tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: "function", function: c.function })) } : {}),
        });
      })
      .catch(() => undefined)
      .finally(() => this.running.delete(gen));
    return gen;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const gen of this.running) gen.cancel();
    this.history.length = 0;
    this.onDispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const running = [...this.running];
    this.dispose();
    await Promise.all(running.map((g) => g.result().catch(() => undefined)));
  }
}
