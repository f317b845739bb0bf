import type { Command } from "../command.js";
import { benchCommand } from "./bench.js";
import { chatCommand } from "./chat.js";
import { conformCommand } from "./conform.js";
import { encodeCommand } from "./encode.js";
import { gatewayCommand } from "./gateway.js";
import { infoCommand } from "./info.js";
import { keysCommand } from "./keys.js";
import { logitsCommand } from "./logits.js";
import { runCommand } from "./run.js";
import { serveCommand } from "./serve.js";
import { tinyCommand } from "./tiny.js";
import { tokenizeCommand } from "./tokenize.js";
import { usageCommand } from "./usage.js";

/** Every CLI command, in the order `dsv4 --help` lists them. */
export const commands: Command[] = [
  benchCommand,
  chatCommand,
  conformCommand,
  encodeCommand,
  gatewayCommand,
  infoCommand,
  keysCommand,
  logitsCommand,
  runCommand,
  serveCommand,
  tinyCommand,
  tokenizeCommand,
  usageCommand,
];
