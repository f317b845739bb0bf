import { readFile } from "node:fs/promises";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { encodeMessages, EncodingError, type ChatMessage, type EncodeOptions } from "../../text/encoding.js";
import { parsePyJson } from "../../text/pyjson.js";

export const encodeCommand: Command = {
  name: "encode",
  summary: "render a chat request as the exact DeepSeek-V4 prompt text",
  usage: `Usage: dsv4 encode --request REQ.json [--options OPTS.json]

Prints the prompt text for REQ exactly, with no newline added. REQ is a message array, or an
object with "messages" and optional "tools" (the official fixtures' format). Request-level
tools are attached to the first message as the reference encoder does.

OPTS is a JSON object of encoder options, named as in the reference encoder:
  thinking_mode           "thinking" (default) or "chat"
  reasoning_effort        null (default), "high" or "max"; with effort_prompts "0731" also "low"
  drop_thinking           drop reasoning before the last user turn (default true)
  add_default_bos_token   start with <｜begin▁of▁sentence｜> (default true)
  context                 earlier messages, treated as already rendered
  effort_prompts          "april" (default, open weights) or "0731"

Options:
  --request FILE   the request JSON
  --options FILE   the encoder options JSON
`,
  async run(argv) {
    const args = parseCommandArgs(encodeCommand, argv, { request: { type: "string" }, options: { type: "string" } });
    const request = await readJsonFile(stringOption(encodeCommand, args, "request", true));
    const optionsPath = stringOption(encodeCommand, args, "options");
    const fileOptions = optionsPath === undefined ? {} : await readJsonFile(optionsPath);
    if (typeof fileOptions !== "object" || fileOptions === null || Array.isArray(fileOptions)) {
      throw new CliError(`${optionsPath}: the options must be a JSON object`);
    }
    const { messages, tools } = requestParts(request);
    const options = { ...(fileOptions as EncodeOptions) };
    if (tools !== undefined && (options.tools === undefined || options.tools === null)) options.tools = tools as EncodeOptions["tools"];
    try {
      process.stdout.write(encodeMessages(messages as ChatMessage[], options));
    } catch (err) {
      if (err instanceof EncodingError) throw new CliError(`invalid ${err.field.startsWith("options") ? "options" : "request"}: ${err.message}`);
      throw err;
    }
  },
};

function requestParts(request: unknown): { messages: unknown; tools: unknown } {
  if (Array.isArray(request)) return { messages: request, tools: undefined };
  if (typeof request === "object" && request !== null && "messages" in request) {
    const r = request as { messages: unknown; tools?: unknown };
    return { messages: r.messages, tools: r.tools };
  }
  throw new CliError('invalid request: expected a message array or an object with "messages"');
}

/** Parsed as Python would, so key order and float spelling reach the prompt unchanged. */
async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parsePyJson(text);
  } catch (err) {
    throw new CliError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}
