import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { engineOptions, GENERATE_FLAGS, GENERATE_HELP, generateOptions } from "../generate-options.js";
import { loadEngine } from "../load-engine.js";
import type { ChatMessage } from "../../engine/types.js";

export const runCommand: Command = {
  name: "run",
  summary: "answer one prompt and exit (only the answer goes to stdout)",
  usage: `Usage: dsv4 run [options] "PROMPT"
       echo "PROMPT" | dsv4 run [options]

Generates one answer in-process and streams it to stdout; nothing else is written there,
so the output pipes cleanly. Loading progress and, with --show-reasoning, the reasoning
go to stderr. Without --model it uses the embedded tiny random-weight model (noise).

Options:
${GENERATE_HELP}
  --show-reasoning     copy the reasoning to stderr
`,
  async run(argv) {
    const args = parseCommandArgs(runCommand, argv, { ...GENERATE_FLAGS, "show-reasoning": { type: "boolean" } }, true);
    const prompt = args.positionals.length > 0 && args.positionals.join(" ") !== "-" ? args.positionals.join(" ") : await readStdin();
    if (prompt.trim() === "") throw new CliError('no prompt: pass it as an argument (dsv4 run "…") or on stdin', 2);
    const options = generateOptions(runCommand, args);
    const system = stringOption(runCommand, args, "system");
    const messages: ChatMessage[] = [...(system ? [{ role: "system", content: system }] : []), { role: "user", content: prompt }];
    const showReasoning = args.values["show-reasoning"] === true;

    const { engine } = await loadEngine(stringOption(runCommand, args, "model"), engineOptions(runCommand, args), !process.stderr.isTTY);
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once("SIGINT", onSigint);
    let last = "";
    try {
      for await (const e of engine.generate({ ...options, messages, signal: controller.signal })) {
        if (e.type === "content" && e.text !== "") {
          process.stdout.write(e.text);
          last = e.text;
        } else if (e.type === "reasoning" && showReasoning) process.stderr.write(dim(e.text));
        else if (e.type === "finish" && e.finish_reason === "length") process.stderr.write(`${showReasoning ? "\n" : ""}dsv4: stopped at --max-tokens ${options.max_tokens}\n`);
      }
    } catch (err) {
      if (controller.signal.aborted) return 130;
      throw err;
    } finally {
      process.off("SIGINT", onSigint);
      if (last !== "" && !last.endsWith("\n")) process.stdout.write("\n");
      await engine.dispose();
    }
  },
};

function dim(text: string): string {
  return process.stderr.isTTY ? `\x1b[2m${text}\x1b[0m` : text;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return "";
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
