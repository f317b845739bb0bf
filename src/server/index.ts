/** The server's public surface: build the app, or start it listening. */
import type { FastifyInstance } from "fastify";
import { buildServer, type ServerOptions } from "./app.js";

export { buildServer, type ServerOptions } from "./app.js";
export { makeKey, readKeysFile, type ApiKey } from "./auth.js";
export {
  DEFAULT_PRICES,
  PRICES_0731,
  defaultPrices,
  describePrices,
  parsePriceTable,
  parsePriceSchedule,
  pricesAt,
  type PriceTable,
  type PriceSchedule,
  type PriceWindow,
} from "./prices.js";
export { DEFAULT_MODEL_NAME } from "./models.js";
export { jsonLines, jsonLinesFile, type RequestLogSink, type RequestRecord } from "./request-log.js";

export interface ListenOptions extends ServerOptions {
  /** Default 127.0.0.1: only this machine can connect unless asked otherwise. */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:8000 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startServer(options: ListenOptions): Promise<RunningServer> {
  const app = buildServer(options);
  const host = options.host ?? "127.0.0.1";
  await app.listen({ host, port: options.port ?? 8000 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : (options.port ?? 8000);
  const shown = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return { app, url: `http://${shown}:${port}`, port, close: () => app.close() };
}
