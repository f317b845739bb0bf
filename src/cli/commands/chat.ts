import { createInterface, type Interface } from "node:readline";
import { parseCommandArgs, stringOption, type Command } from "../command.js";
import { EFFORTS, engineOptions, GENERATE_FLAGS, GENERATE_HELP, generateOptions } from "../generate-options.js";
import { describeEncoder, loadEngine } from "../load-engine.js";
import { DEFAULT_EFFORT } from "../../text/effort.js";
import type { ChatSession, GenerateRequest } from "../../engine/types.js";
import type { Engine } from "../../engine/engine.js";

const HELP = `Commands:
  /think on|off        reasoning on or off for the next turns
  /effort low|high|max reasoning effort
  /reset               forget the conversation
  /help                this list
  /exit                quit (or Ctrl-D)
Ctrl-C stops an answer in progress.`;

export const chatCommand: Command = {
  name: "chat",
  summary: "chat with a model in the terminal (streaming, reasoning shown dimmed)",
  usage: `Usage: dsv4 chat [options]

An interactive conversation with a model loaded in-process. Answers stream as they are
generated; the reasoning is shown dimmed before the answer. Without --model it uses the
embedded tiny random-weight model (its output is noise).

Options:
${GENERATE_HELP}

${HELP}
`,
  async run(argv) {
    const args = parseCommandArgs(chatCommand, argv, GENERATE_FLAGS);
    const options = generateOptions(chatCommand, args);
    const system = stringOption(chatCommand, args, "system");
    const { engine, isDefault } = await loadEngine(stringOption(chatCommand, args, "model"), engineOptions(chatCommand, args));
    const out = process.stdout;
    const color = out.isTTY === true;
    out.write(`dsv4 chat: ${engine.model.name}${isDefault ? " (tiny random weights: expect noise)" : ""}, encoder ${describeEncoder(engine.model)}. /help for commands.\n`);
    const state = new ChatState(engine, system, options);
    const rl = createInterface({ input: process.stdin, output: out, terminal: process.stdin.isTTY === true });
    try {
      await loop(rl, state, color);
    } finally {
      rl.close();
      state.session.dispose();
      await engine.dispose();
    }
  },
};

class ChatState {
  session: ChatSession;
  constructor(
    private readonly engine: Engine,
    private readonly system: string | undefined,
    readonly options: Omit<GenerateRequest, "messages">,
  ) {
    this.session = engine.createSession({ system });
  }

  get encoding() {
    return this.engine.model.encoding;
  }

  get thinking(): boolean {
    const t = this.options.thinking;
    return !(typeof t === "object" && t !== null && t.type === "disabled");
  }

  reset(): void {
    this.session.dispose();
    this.session = this.engine.createSession({ system: this.system });
  }
}

/**
 * One line at a time: null at end of input (Ctrl-D). Reads through the
 * interface's async iterator, which buffers lines piped in while an answer is
 * still being generated.
 */
function reader(rl: Interface): (prompt: string) => Promise<string | null> {
  const lines = rl[Symbol.asyncIterator]();
  return async (prompt) => {
    process.stdout.write(prompt);
    const r = await lines.next();
    return r.done ? null : r.value;
  };
}

async function loop(rl: Interface, state: ChatState, color: boolean): Promise<void> {
  const out = process.stdout;
  const dim = (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s);
  let current: AbortController | undefined;
  // Ctrl-C stops the answer being generated; at the prompt it quits.
  const onSigint = () => (current ? current.abort() : rl.close());
  rl.on("SIGINT", onSigint);
  process.on("SIGINT", onSigint);
  try {
    await turns();
  } finally {
    rl.off("SIGINT", onSigint);
    process.off("SIGINT", onSigint);
  }

  async function turns(): Promise<void> {
    const ask = reader(rl);
    for (;;) {
      const line = await ask(color ? "\x1b[1m> \x1b[0m" : "> ");
      if (line === null) {
        out.write("\n");
        return;
      }
      const text = line.trim();
      if (text === "") continue;
      if (text.startsWith("/")) {
        if (command(text, state, out)) return;
        continue;
      }
      const controller = new AbortController();
      current = controller;
      let phase: "reasoning" | "content" | undefined;
      try {
        const gen = state.session.prompt(text, { ...state.options, signal: controller.signal });
        for await (const e of gen) {
          if (e.type === "reasoning" && e.text !== "") {
            if (phase === undefined) out.write(dim("thinking: "));
            phase = "reasoning";
            out.write(dim(e.text));
          } else if (e.type === "content" && e.text !== "") {
            if (phase === "reasoning") out.write("\n\n");
            phase = "content";
            out.write(e.text);
          } else if (e.type === "finish" && e.finish_reason === "length") {
            out.write(dim(`\n[stopped at ${state.options.max_tokens} tokens]`));
          }
        }
        await gen.result();
        out.write("\n");
      } catch (err) {
        out.write(controller.signal.aborted ? dim("\n[stopped]\n") : `\ndsv4: error: ${err instanceof Error ? err.message : String(err)}\n`);
      } finally {
        current = undefined;
      }
    }
  }
}

/** Handles a slash command; true means quit. */
function command(text: string, state: ChatState, out: NodeJS.WriteStream): boolean {
  const [name, arg] = text.split(/\s+/, 2);
  switch (name) {
    case "/exit":
    case "/quit":
      return true;
    case "/help":
      out.write(HELP + "\n");
      return false;
    case "/reset":
      state.reset();
      out.write("conversation cleared\n");
      return false;
    case "/think":
      if (arg !== "on" && arg !== "off") {
        out.write(`reasoning is ${state.thinking ? "on" : "off"}; /think on or /think off\n`);
        return false;
      }
      state.options.thinking = { type: arg === "on" ? "enabled" : "disabled" };
      out.write(`reasoning ${arg}\n`);
      return false;
    case "/effort":
      if (arg === undefined || !(EFFORTS as readonly string[]).includes(arg)) {
        out.write(`effort is ${state.options.reasoning_effort ?? DEFAULT_EFFORT[state.encoding]}; /effort ${EFFORTS.join("|")}\n`);
        return false;
      }
      state.options.reasoning_effort = arg;
      out.write(`effort ${arg}${state.thinking ? "" : " (applies when reasoning is on)"}\n`);
      return false;
    default:
      out.write(`unknown command ${name}; /help lists them\n`);
      return false;
  }
}
