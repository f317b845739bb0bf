#!/usr/bin/env node
import { packageVersion } from "../version.js";
import { CliError, type Command } from "./command.js";
import { commands } from "./commands/index.js";

function topLevelHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `dsv4: DeepSeek-V4 engine and API server\n\nUsage: dsv4 <command> [options]    (dsv4 --version: the version)\n\nCommands:\n${lines.join("\n")}\n\nRun \`dsv4 <command> --help\` for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v" || name === "version") {
    process.stdout.write(`dsv4 ${packageVersion()}\n`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(topLevelHelp() + "\n");
    return name === undefined ? 2 : 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) throw new CliError(`unknown command "${name}". Commands: ${commands.map((c) => c.name).join(", ")}.`, 2);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.usage.trimEnd() + "\n");
    return 0;
  }
  return (await command.run(rest)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`dsv4: error: ${message}\n`);
    if (process.env.DSV4_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + "\n");
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  },
);
