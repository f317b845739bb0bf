/**
 * What `dsv4 serve` does on SIGTERM or SIGINT: stop accepting (new requests get a 503 in the
 * envelope, /health included, so a load balancer takes the replica out), give the generations
 * in flight up to `--shutdown-timeout` seconds to finish, then stop those still running with
 * an error their clients see (vLLM's --shutdown-timeout; Kubernetes sends SIGKILL after its
 * grace period, 30 s by default, so the drain should end before that). A second signal stops
 * them at once.
 */
import { EngineError } from "../engine/errors.js";
import type { Engine } from "../engine/engine.js";
import { untilSignal } from "./command.js";

/** Seconds the generations in flight get to finish after the first signal. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 20;

/**
 * `closeIdle` closes the connections not carrying a request now: a keep-alive client's
 * connection, idle once its answer is done, would otherwise hold the close open for the
 * server's keep-alive timeout (72 s).
 */
export async function drainAndClose(
  server: { close(): Promise<void>; closeIdle(): void },
  engine: Pick<Engine, "metrics" | "stopAll">,
  timeoutS: number,
  log: (line: string) => void,
): Promise<void> {
  const m = engine.metrics();
  const inFlight = m.active_sequences + m.queued_requests;
  log(
    inFlight === 0
      ? "dsv4: shutting down"
      : `dsv4: shutting down: ${inFlight} generation${inFlight === 1 ? "" : "s"} in flight get${inFlight === 1 ? "s" : ""} up to ${timeoutS} s to finish (signal again to stop them now)`,
  );
  const closed = closeSweepingIdle(server);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    closed.then(() => "closed" as const),
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutS * 1000))),
    untilSignal().then(() => "signal" as const),
  ]);
  clearTimeout(timer);
  if (outcome !== "closed") {
    const why = outcome === "timeout" ? `its ${timeoutS} s shutdown timeout ran out (--shutdown-timeout)` : "it was signalled twice";
    const stopped = engine.stopAll(new EngineError("shutdown", `the server is shutting down and ${why}: this generation was stopped; retry on another replica or after the restart`));
    if (stopped > 0) log(`dsv4: stopped ${stopped} generation${stopped === 1 ? "" : "s"} still running: ${why}`);
  }
  await closed;
}

/**
 * Closes the server, closing its idle connections every 100 ms until it is closed: a request
 * in flight keeps its connection, and one that finishes leaves it idle for the next sweep.
 * Also what serve does when its engine has died (nothing to drain, but a keep-alive client
 * would still hold the close open).
 */
export async function closeSweepingIdle(server: { close(): Promise<void>; closeIdle(): void }): Promise<void> {
  const closed = server.close();
  server.closeIdle();
  const idle = setInterval(() => server.closeIdle(), 100);
  try {
    await closed;
  } finally {
    clearInterval(idle);
  }
}
