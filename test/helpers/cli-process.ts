import { spawn, type ChildProcess } from "node:child_process";

export interface CliProcess {
  child: ChildProcess;
  /** The first http URL the process printed (serve's and gateway's banners start with theirs). */
  url: string;
  /** What it has written so far. */
  stdout(): string;
  stderr(): string;
}

/** Starts `node cli ...args` and resolves once its banner names its URL; rejects if it exits first. */
export function startCli(cli: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliProcess> {
  const child = spawn(process.execPath, [cli, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, stdout: () => out, stderr: () => err });
    });
    child.on("exit", (code) => reject(new Error(`dsv4 ${args[0]} exited with ${code}: ${err || out}`)));
  });
}

/** Its exit code, once it has exited. */
export function exitOf(p: CliProcess): Promise<number | null> {
  return new Promise((resolve) => (p.child.exitCode !== null ? resolve(p.child.exitCode) : p.child.on("exit", (code) => resolve(code))));
}
