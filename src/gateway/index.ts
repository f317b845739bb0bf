/**
 * `dsv4 gateway`: the server of `dsv4 serve` (every route, the same text layer) on an
 * UpstreamEngine, plus GET /gateway/upstreams (each replica's health, load and dispatch count).
 * Closing drains: new requests get 503 while running ones finish, then polling stops.
 */
import type { FastifyInstance } from "fastify";
import { buildServer, type ServerOptions } from "../server/app.js";
import { UpstreamEngine, type UpstreamEngineOptions } from "./upstream-engine.js";

export { UpstreamEngine, type UpstreamEngineOptions } from "./upstream-engine.js";
export { UPSTREAM_KINDS, protocolFor, type UpstreamKind } from "./protocols.js";
export { Router, type RouterOptions, type Route } from "./router.js";
export { Replica } from "./replicas.js";
export { blockHashes } from "./block-hashes.js";

export interface GatewayOptions extends UpstreamEngineOptions, Omit<ServerOptions, "engine" | "modelName"> {
  host?: string;
  port?: number;
}

export interface RunningGateway {
  app: FastifyInstance;
  engine: UpstreamEngine;
  url: string;
  port: number;
  close(): Promise<void>;
}

export function upstreamsRoute(app: FastifyInstance, engine: UpstreamEngine): void {
  app.get("/gateway/upstreams", async () => ({
    kind: engine.kind,
    upstreams: engine.replicas.map((r) => ({ url: r.url, healthy: r.healthy, in_flight: r.inFlight, load: r.load, dispatched: r.dispatched, last_error: r.lastError })),
  }));
}

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const engine = await UpstreamEngine.load(options);
  let app: FastifyInstance;
  try {
    app = buildServer({ ...options, engine, modelName: options.modelName });
    upstreamsRoute(app, engine);
    const host = options.host ?? "127.0.0.1";
    await app.listen({ host, port: options.port ?? 8000 });
  } catch (err) {
    await engine.dispose();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : (options.port ?? 8000);
  const host = options.host ?? "127.0.0.1";
  const shown = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    app,
    engine,
    url: `http://${shown}:${port}`,
    port,
    close: async () => {
      await app.close();
      await engine.dispose();
    },
  };
}
