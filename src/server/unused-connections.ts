/**
 * Connections a client opened but never sent a byte on. HTTP client pools open them ahead of
 * need and keep them for later: undici reconnects at once after an aborted request, browsers
 * preconnect. Node's headers timeout (60 s, checked every 30 s) counts such a connection as a
 * request whose headers are late, and its default answer is a 408 written on it; a client that
 * then sends a request on the connection reads that 408 as the answer to its own request (the
 * `bench serve` paused-reader phase did, four streams at once, after aborted streams left 16
 * such connections). nginx and Go's server close a connection that never spoke without a word;
 * here it stays open a while longer (a close always races a client's next request, so rarely
 * is better) and is then closed silently, and at shutdown, where nothing is waiting on it.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";

/** How long a connection that never sent anything is kept before it is closed without an answer. */
export const NEVER_USED_IDLE_MS = 10 * 60_000;

/** True for a connection that has not sent a byte: no request on it has begun. */
export function neverUsed(socket: Socket): boolean {
  return socket.bytesRead === 0;
}

/**
 * Keeps a never-used connection that Node's headers timeout reported, closing it silently
 * once it has been idle `idleMs` in all (unless it has started a request by then).
 */
export function keepNeverUsed(socket: Socket, idleMs = NEVER_USED_IDLE_MS): void {
  const timer = setTimeout(() => {
    if (neverUsed(socket)) socket.destroy();
  }, idleMs);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

/**
 * Tracks the server's connections so that shutdown can close the never-used ones: Node's
 * `closeIdleConnections` counts only connections that finished a request as idle, and after
 * `close()` nothing times the others out, so one a pool keeps would hold shutdown forever.
 */
export function trackUnusedConnections(server: Server): { closeNeverUsed: () => void } {
  const open = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  });
  return {
    closeNeverUsed: () => {
      for (const s of open) if (neverUsed(s)) s.destroy();
    },
  };
}
