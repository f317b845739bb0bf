import type { Command } from "../command.js";
import { tinyCommand } from "./tiny.js";

/** Every CLI command, in the order `dsv4 --help` lists them. */
export const commands: Command[] = [
  tinyCommand,
];
