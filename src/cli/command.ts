import { parseArgs, type ParseArgsConfig } from "node:util";

/** A user-facing failure: printed as one line, never with a stack trace. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = "CliError";
  }
}

export interface Command {
  name: string;
  summary: string;
  /** Full help text printed by `dsv4 <name> --help`. */
  usage: string;
  run(argv: string[]): Promise<number | void>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

/** parseArgs with errors turned into a usage CliError (exit code 2). */
export function parseCommandArgs(command: Command, argv: string[], options: Options, allowPositionals = false): ParsedArgs {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as ParsedArgs;
  } catch (err) {
    throw new CliError(`${(err as Error).message} (see \`dsv4 ${command.name} --help\`)`, 2);
  }
}

/** A string option's value; `required` turns absence into a usage error. */
export function stringOption(command: Command, args: ParsedArgs, flag: string, required: true): string;
export function stringOption(command: Command, args: ParsedArgs, flag: string, required?: false): string | undefined;
export function stringOption(command: Command, args: ParsedArgs, flag: string, required = false): string | undefined {
  const value = args.values[flag];
  if (value === undefined || value === "") {
    if (!required) return undefined;
    throw new CliError(`missing required option --${flag} (see \`dsv4 ${command.name} --help\`)`, 2);
  }
  if (typeof value !== "string") throw new CliError(`--${flag} takes a value`, 2);
  return value;
}

/**
 * Resolves with the reason once `engine` says it can serve nothing more (its model runner
 * thread died), checking every `everyMs`: serve then exits non-zero, as vLLM's server does when
 * its engine dies, so a supervisor (systemd, Docker, Kubernetes) restarts it.
 */
export function untilUnhealthy(engine: { health(): { ok: boolean; reason: string | null } }, everyMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const h = engine.health();
      if (h.ok) return;
      clearInterval(timer);
      resolve(h.reason ?? "unhealthy");
    }, everyMs);
    timer.unref();
  });
}

/** Resolves at the first SIGINT or SIGTERM: a long-running command (serve, gateway) then shuts down. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
