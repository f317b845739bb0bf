/**
 * The gateway's upstream client: an answer drained after release() that is cut (its grace
 * over, a replica killed, the pools closed at shutdown) must not take the process down, while
 * a reader still sees a broken answer's error.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { Cancel } from "../../src/gateway/cancel.js";
import { UpstreamClient } from "../../src/gateway/upstream-http.js";

describe("upstream client", () => {
  let server: Server;
  let url: string;
  const sockets = new Set<Socket>();
  before(async () => {
    // An upstream that streams on until its client goes away.
    server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: 1\n\n");
      const tick = setInterval(() => res.write("data: 2\n\n"), 5);
      req.on("close", () => clearInterval(tick));
    });
    server.on("connection", (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/generate`;
  });
  after(() => server.close());

  /** Counts uncaught exceptions while `f` runs and a little after. */
  async function uncaughtDuring(f: () => Promise<void>): Promise<Error[]> {
    const seen: Error[] = [];
    const catcher = (e: Error) => seen.push(e);
    process.on("uncaughtException", catcher);
    try {
      await f();
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      process.off("uncaughtException", catcher);
    }
    return seen;
  }

  async function released(client: UpstreamClient): Promise<void> {
    const res = await client.postJson(url, "{}", {}, new Cancel());
    for await (const _ of res.body) break;
    res.release(60_000);
    await new Promise((r) => setTimeout(r, 20));
  }

  test("a released answer whose upstream connection is cut raises nothing", async () => {
    const client = new UpstreamClient();
    const seen = await uncaughtDuring(async () => {
      await released(client);
      for (const s of sockets) s.destroy();
    });
    await client.close();
    assert.deepEqual(seen.map((e) => e.message), []);
  });

  test("a released answer still running when its grace ends is cut, raising nothing", async () => {
    // What the CI flake was: release()'s timer destroys the body, undici makes that a
    // "Request aborted" error, and with no reader left nobody listened for it.
    const client = new UpstreamClient();
    const seen = await uncaughtDuring(async () => {
      const res = await client.postJson(url, "{}", {}, new Cancel());
      for await (const _ of res.body) break;
      res.release(20);
      await new Promise((r) => setTimeout(r, 60));
    });
    await client.close();
    assert.deepEqual(seen.map((e) => e.message), []);
  });

  test("closing the pools under a released answer raises nothing", async () => {
    const client = new UpstreamClient();
    const seen = await uncaughtDuring(async () => {
      await released(client);
      await client.close();
    });
    assert.deepEqual(seen.map((e) => e.message), []);
  });

  test("a reader still sees the error of an answer cut under it", async () => {
    const client = new UpstreamClient();
    const res = await client.postJson(url, "{}", {}, new Cancel());
    await assert.rejects(async () => {
      for await (const _ of res.body) for (const s of sockets) s.destroy();
    });
    await client.close();
  });
});
