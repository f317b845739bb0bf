/**
 * A `dsv4 serve` replica of the default model in its own process, as replicas run beside a
 * gateway in a deployment: its engine's work and garbage collection stay out of the measuring
 * process's event loop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

export async function startReplicaProcess(): Promise<{ url: string; close: () => Promise<void>; crash: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [CLI, "serve", "--port", "0", "--quiet", "--speculative", "off"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /(http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`the replica (dsv4 serve) exited with ${code} before listening: ${err.trim().slice(-500)}`)));
  });
  const stop = (signal: NodeJS.Signals) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill(signal);
    });
  return { url, close: () => stop("SIGTERM"), crash: () => stop("SIGKILL") };
}
