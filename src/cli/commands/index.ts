import type { Command } from "../command.js";

/** Every CLI command, in the order `dsv4 --help` lists them. */
export const commands: Command[] = [];
