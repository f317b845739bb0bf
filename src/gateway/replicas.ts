/**
 * The upstream replicas as the gateway sees them: health, and load. Load is counted from the
 * moment of dispatch (requests this gateway has in flight on the replica) plus what the
 * replica's own metrics report beyond that (other gateways' or direct traffic), refreshed by
 * the health poll. A replica that fails a dispatch or a health check is taken out of rotation
 * (circuit open) until a later health check succeeds.
 */
import type { Protocol } from "./protocols.js";

export class Replica {
  /** Requests this gateway has dispatched and not yet seen end. */
  inFlight = 0;
  /** Running + waiting requests the replica reported beyond ours at the last poll. */
  external = 0;
  healthy = true;
  lastError: string | null = null;
  /** Requests dispatched here since start (for tests, benchmarks and /metrics). */
  dispatched = 0;

  constructor(readonly url: string) {}

  get load(): number {
    return this.inFlight + this.external;
  }

  markDown(reason: string): void {
    this.healthy = false;
    this.lastError = reason;
  }
}

export interface PollOptions {
  protocol: Protocol;
  /** Health and metrics cadence (ms). */
  intervalMs: number;
  /** A health check slower than this fails (ms). */
  timeoutMs: number;
}

/** One health + metrics check of a replica. */
export async function checkReplica(replica: Replica, opts: Omit<PollOptions, "intervalMs">): Promise<void> {
  const ours = replica.inFlight;
  try {
    const res = await fetch(`${replica.url}/health`, { signal: AbortSignal.timeout(opts.timeoutMs) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`/health answered ${res.status}`);
  } catch (err) {
    replica.markDown(`health check failed: ${(err as Error).message}`);
    return;
  }
  replica.healthy = true;
  replica.lastError = null;
  try {
    const res = await fetch(`${replica.url}/metrics`, { signal: AbortSignal.timeout(opts.timeoutMs) });
    const text = await res.text();
    const reported = res.ok ? opts.protocol.load(text) : null;
    if (reported !== null) replica.external = Math.max(0, reported - ours);
  } catch {
    // Metrics are optional: the dispatch count alone still balances.
  }
}

/** Polls every replica until stopped. */
export function pollReplicas(replicas: readonly Replica[], opts: PollOptions): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const round = async () => {
    await Promise.all(replicas.map((r) => checkReplica(r, opts)));
    if (!stopped) timer = setTimeout(round, opts.intervalMs).unref();
  };
  timer = setTimeout(round, opts.intervalMs).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
