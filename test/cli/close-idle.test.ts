/**
 * Closing a server while a keep-alive client's request is in flight: once its answer is done
 * the connection is idle, and closeSweepingIdle closes it instead of letting it hold the close
 * open for the keep-alive timeout (Node's server.close() only closes the connections idle when
 * it is called). Serve does this when its engine has died and at the end of a shutdown drain.
 */
import assert from "node:assert/strict";
import { Agent, createServer, request } from "node:http";
import { test } from "node:test";
import { closeSweepingIdle } from "../../src/cli/shutdown.js";

test("closeSweepingIdle closes a keep-alive connection that goes idle after the close began", { timeout: 10_000 }, async () => {
  const server = createServer((_req, res) => setTimeout(() => res.end("ok"), 300));
  server.keepAliveTimeout = 72_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const agent = new Agent({ keepAlive: true });
  const answered = new Promise<void>((resolve, reject) => {
    request({ port, host: "127.0.0.1", agent }, (res) => {
      res.resume();
      res.on("end", resolve);
    }).on("error", reject).end();
  });
  await new Promise((resolve) => setTimeout(resolve, 100)); // the request is in flight
  const t0 = Date.now();
  const closed = closeSweepingIdle({
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
    closeIdle: () => server.closeIdleConnections(),
  });
  await answered;
  await closed;
  agent.destroy();
  assert.ok(Date.now() - t0 < 3_000, `closed ${Date.now() - t0} ms after the call`);
});
