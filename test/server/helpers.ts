/**
 * Test servers: the real engine on the embedded default model (tiny random
 * weights, real V4 tokenizer) or a scripted engine, served on 127.0.0.1:0.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { ensureDefaultModel } from "../../src/cli/default-model.js";
import { Engine } from "../../src/engine/engine.js";
import type { EngineApi, EngineOptions } from "../../src/engine/types.js";
import { startServer, type ListenOptions, type RunningServer } from "../../src/server/index.js";

const root = mkdtempSync(join(tmpdir(), "dsv4-server-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
// What engines write under dsv4's home (shard digests) stays in this test's folder, not the user's.
process.env.DSV4_HOME = join(root, "home");

let model: Promise<string> | undefined;

/** The default model's files, written once per test process. */
export function defaultModel(): Promise<string> {
  model ??= ensureDefaultModel(join(root, "default-model")).then((r) => r.dir);
  return model;
}

export interface TestServer extends RunningServer {
  engine: EngineApi;
}

type ServerOverrides = Omit<Partial<ListenOptions>, "engine">;

/** The real engine on the default model, behind a real server on loopback. */
export async function realServer(engineOptions: EngineOptions = {}, overrides: ServerOverrides = {}): Promise<TestServer> {
  const engine = await Engine.load(await defaultModel(), { speculative: { enabled: false }, ...engineOptions });
  return serve(engine, overrides, () => engine.dispose());
}

export async function serve(engine: EngineApi, overrides: ServerOverrides = {}, dispose?: () => Promise<void>): Promise<TestServer> {
  const server = await startServer({ engine, host: "127.0.0.1", port: 0, ...overrides });
  return {
    ...server,
    engine,
    close: async () => {
      await server.close();
      await dispose?.();
    },
  };
}

export const MODEL = "deepseek-v4-flash";

/** A logits processor that forces token `script()[i]` at generated position i, and nothing past the script's end. */
export function forceScript(script: () => readonly number[]): NonNullable<EngineOptions["logitsProcessor"]> {
  return ({ generated, logits }) => {
    const next = script()[generated.length];
    if (next === undefined) return;
    logits.fill(-Infinity);
    logits[next] = 0;
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** The `data:` payloads of an SSE body, in order (comments skipped). */
export function sseData(text: string): string[] {
  return text
    .split("\n\n")
    .flatMap((event) => event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)))
    .filter((d) => d !== "");
}

export { waitFor } from "../helpers/wait.js";
