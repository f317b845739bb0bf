/** Gateway test rigs: real `dsv4 serve` replicas of the default model on loopback, and a gateway over them. */
import type { EngineOptions } from "../../src/engine/types.js";
import { startGateway, type GatewayOptions, type RunningGateway } from "../../src/gateway/index.js";
import { defaultModel, realServer, type TestServer } from "../server/helpers.js";

export { defaultModel, MODEL, postJson, sseData } from "../server/helpers.js";

export async function replicas(n: number, engineOptions: EngineOptions = {}): Promise<TestServer[]> {
  const out: TestServer[] = [];
  for (let i = 0; i < n; i++) out.push(await realServer(engineOptions));
  return out;
}

export async function gatewayOver(upstreams: readonly { url: string }[], options: Partial<GatewayOptions> = {}): Promise<RunningGateway> {
  return startGateway({ upstreams: upstreams.map((u) => u.url), modelDir: await defaultModel(), port: 0, healthIntervalMs: 200, ...options });
}

/** Kills a replica as a crash would: every connection dropped, then the server and engine gone. */
export async function kill(replica: TestServer): Promise<void> {
  replica.app.server.closeAllConnections();
  await replica.close();
}

/** Requests each replica has been sent by the gateway, by URL. */
export function dispatched(gateway: RunningGateway): Map<string, number> {
  return new Map(gateway.engine.replicas.map((r) => [r.url, r.dispatched]));
}
