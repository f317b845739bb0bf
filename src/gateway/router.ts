/**
 * Which replica serves a prompt. Prefix affinity first: the replica that last received the
 * longest run of this prompt's leading blocks holds them in its prefix cache. A bound on
 * imbalance keeps affinity from piling load onto one replica (the failure of cache-aware routers
 * that never look at load): the preferred replica is skipped when its load exceeds
 * `factor` × the mean load + `slack`. Otherwise, and for prompts with no known prefix, the less
 * loaded of two random healthy replicas (power of two choices).
 */
import { blockHashes } from "./block-hashes.js";
import type { Replica } from "./replicas.js";

export interface RouterOptions {
  /** The upstream's cache unit in tokens. */
  blockTokens: number;
  /** Imbalance bound: skip the preferred replica above factor × mean + slack (default 1.25, 1). */
  imbalanceFactor?: number;
  imbalanceSlack?: number;
  /** Block hashes remembered (least recently routed forgotten first; default 1M). */
  capacity?: number;
  /** Random numbers in [0, 1) (tests and benchmarks seed it). */
  random?: () => number;
}

export interface Route {
  replica: Replica;
  /** Leading whole blocks the replica was last sent (an estimate of its cache hit). */
  affinityBlocks: number;
  /** Why: "affinity", "balanced" (the preferred replica was overloaded) or "p2c". */
  reason: "affinity" | "balanced" | "p2c";
}

export class Router {
  private readonly owner = new Map<string, Replica>();
  private readonly factor: number;
  private readonly slack: number;
  private readonly capacity: number;
  private readonly random: () => number;

  constructor(readonly replicas: readonly Replica[], private readonly opts: RouterOptions) {
    this.factor = opts.imbalanceFactor ?? 1.25;
    this.slack = opts.imbalanceSlack ?? 1;
    this.capacity = opts.capacity ?? 1_000_000;
    this.random = opts.random ?? Math.random;
  }

  /** Picks a replica for `ids` among the healthy ones not in `exclude`; null when none is left. Records the choice. */
  route(ids: readonly number[], salt: string, exclude: ReadonlySet<Replica> = new Set()): Route | null {
    const candidates = this.replicas.filter((r) => r.healthy && !exclude.has(r));
    if (candidates.length === 0) return null;
    const hashes = blockHashes(ids, this.opts.blockTokens, salt);
    let preferred: Replica | undefined;
    let blocks = 0;
    for (let i = hashes.length - 1; i >= 0; i--) {
      const r = this.owner.get(hashes[i]!);
      if (r && candidates.includes(r)) {
        preferred = r;
        blocks = i + 1;
        break;
      }
    }
    let route: Route;
    if (preferred && !this.overloaded(preferred, candidates)) route = { replica: preferred, affinityBlocks: blocks, reason: "affinity" };
    else route = { replica: this.twoChoices(candidates, preferred), affinityBlocks: 0, reason: preferred ? "balanced" : "p2c" };
    this.remember(hashes, route.replica);
    return route;
  }

  private overloaded(r: Replica, candidates: readonly Replica[]): boolean {
    const mean = candidates.reduce((n, c) => n + c.load, 0) / candidates.length;
    return r.load > this.factor * mean + this.slack;
  }

  private twoChoices(candidates: readonly Replica[], avoid: Replica | undefined): Replica {
    const pool = candidates.length > 1 && avoid ? candidates.filter((c) => c !== avoid) : candidates;
    const i = Math.floor(this.random() * pool.length);
    if (pool.length === 1) return pool[i]!;
    let j = Math.floor(this.random() * (pool.length - 1));
    if (j >= i) j++;
    const a = pool[i]!;
    const b = pool[j]!;
    return b.load < a.load ? b : a;
  }

  private remember(hashes: readonly string[], replica: Replica): void {
    for (const h of hashes) {
      this.owner.delete(h);
      this.owner.set(h, replica);
    }
    while (this.owner.size > this.capacity) this.owner.delete(this.owner.keys().next().value!);
  }
}
