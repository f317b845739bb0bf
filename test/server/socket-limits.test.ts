/**
 * The cap on what a streaming response's socket holds unsent (src/server/socket-limits.ts):
 * a client that stops reading meets backpressure once its own receive buffer is full, not
 * after the kernel has also taken megabytes into the server's send buffer.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, connect, type Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { limitUnsentBytes } from "../../src/server/socket-limits.js";
import { tempDir } from "../engine/helpers.js";
import { nativeSkip } from "../kernels/native-available.js";

/** A server-side socket whose client never reads, and the client. */
async function pausedPair(listenOn: { port: number; host: string } | { path: string }): Promise<{ server: Socket; client: Socket; close: () => void }> {
  const srv = createServer();
  srv.listen(listenOn);
  await once(srv, "listening");
  const address = srv.address();
  const client = "path" in listenOn ? connect(listenOn.path) : connect((address as { port: number }).port, "127.0.0.1");
  client.pause();
  const [server] = (await once(srv, "connection")) as [Socket];
  return { server, client, close: () => (server.destroy(), client.destroy(), srv.close()) };
}

// The cap is set through the native addon; without it the stream works uncapped (and this skips, saying so).
test("a capped TCP socket stops taking a paused client's bytes within a megabyte", { skip: nativeSkip() }, async () => {
  const { server, close } = await pausedPair({ port: 0, host: "127.0.0.1" });
  try {
    assert.equal(limitUnsentBytes(server), true, "the cap is set (native addon built, TCP socket)");
    // Writes as an SSE writer does: until write() says stop, then again at every drain.
    const chunk = "x".repeat(250); // about one streamed chat chunk
    let taken = 0;
    const pump = () => {
      while (server.write(chunk)) taken += chunk.length;
      taken += chunk.length;
    };
    server.on("drain", pump);
    pump();
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(taken < 2 ** 20, `${taken} bytes taken for a client that reads nothing`);
  } finally {
    close();
  }
});

test("a Unix socket is left as it is", async () => {
  const { server, close } = await pausedPair({ path: join(tempDir("sock"), "s.sock") });
  try {
    assert.equal(limitUnsentBytes(server), false);
  } finally {
    close();
  }
});
