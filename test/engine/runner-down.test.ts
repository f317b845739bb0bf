/**
 * A model runner thread that dies: the engine says so (health), fails what was running with the
 * reason instead of hanging it, and refuses new work as unavailable (HTTP 503), not as a bug.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import { killRunner } from "../helpers/runner.js";
import { checkpoint, promptIds } from "./helpers.js";

describe("the model runner thread dies", async () => {
  const dir = await checkpoint("micro");

  test("health says why, a running generation fails with the reason, and new work is refused as unavailable", async () => {
    // At least 2 ms a token, so the generation is still running when its runner dies.
    const slow = () => {
      const until = performance.now() + 2;
      while (performance.now() < until);
    };
    const engine = await Engine.load(dir, { prefixCache: { enabled: false }, logitsProcessor: slow });
    try {
      assert.deepEqual(engine.health(), { ok: true, reason: null });
      const running = engine.generate({ prompt_tokens: promptIds(8), max_tokens: 200, temperature: 0 });
      const it = running[Symbol.asyncIterator]();
      while ((await it.next()).value?.type !== "token");
      await killRunner(engine);
      assert.match(engine.health().reason!, /model runner is down: the model runner thread exited/);
      await assert.rejects(running.result(), (e: unknown) => e instanceof EngineError && /thread exited/.test(e.message));
      assert.throws(
        () => engine.generate({ prompt_tokens: [5], max_tokens: 1 }),
        (e: unknown) => e instanceof EngineError && e.code === "unavailable" && e.status === 503 && /restarted/.test(e.message),
      );
    } finally {
      await engine.dispose();
    }
  });
});
