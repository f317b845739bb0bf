import type { Command } from "../command.js";
import { benchCommand } from "./bench.js";
import { encodeCommand } from "./encode.js";
import { logitsCommand } from "./logits.js";
import { tinyCommand } from "./tiny.js";
import { tokenizeCommand } from "./tokenize.js";

/** Every CLI command, in the order `dsv4 --help` lists them. */
export const commands: Command[] = [
  benchCommand,
  encodeCommand,
  logitsCommand,
  tinyCommand,
  tokenizeCommand,
];
