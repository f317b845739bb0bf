/**
 * How much of a stream the kernel may hold for a client that is not reading. Over TCP, Linux
 * grows a socket's send buffer up to tcp_wmem's maximum (4 MiB by default) before a write
 * would block, so without a cap the server saw backpressure from a paused client only after
 * some 4 MB of events (tens of thousands of tokens: the reader timeout never started while
 * the sequence kept its batch slot). TCP_NOTSENT_LOWAT caps the bytes waiting unsent; what
 * the client's own receive buffer takes remains: about 150-200 KB on loopback when events come
 * in bursts, but a client kernel that gets small segments slowly grows that buffer towards its
 * tcp_rmem maximum (a 250-byte event every 20 ms: 0.5 MB after 40 s and growing), which no
 * setting on this side can limit.
 *
 * Node has no API for socket options, so the project's addon sets it (the one native binary;
 * this is its only use outside the kernels). Best effort: without the addon, on a Unix socket
 * or on a platform without the option, the stream works as before.
 */
import type { Socket } from "node:net";
import { nativeAddon } from "../kernels/native/addon.js";

/** Unsent bytes a streaming response's socket may hold: a few hundred events. */
export const STREAM_UNSENT_LIMIT_BYTES = 16 * 1024;

/** The socket's file descriptor, where Node's TCP handle exposes one. */
export function descriptorOf(socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : null;
}

/** Caps the socket's unsent bytes; true when the cap is in place. */
export function limitUnsentBytes(socket: Socket | null, bytes = STREAM_UNSENT_LIMIT_BYTES): boolean {
  if (!socket || socket.remoteFamily === undefined) return false; // not TCP (a Unix socket)
  const fd = descriptorOf(socket);
  if (fd === null) return false;
  const loaded = nativeAddon();
  if ("error" in loaded || typeof loaded.addon.setNotsentLowat !== "function") return false;
  return loaded.addon.setNotsentLowat(fd, bytes) === 0;
}
