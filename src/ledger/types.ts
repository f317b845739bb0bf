/**
 * The usage ledger's interface: API keys with optional USD budgets, reservations taken before a
 * request is dispatched and settled with its real cost when it ends, and one row per request.
 * Implemented over SQL (Postgres through `pg`, or the embedded PGlite; sql-ledger.ts) and in
 * process memory (memory-ledger.ts, the library default when no database is named).
 */

/** A stored API key. The plain key is never stored: only its sha256 and its cache tenant. */
export interface LedgerKey {
  id: string;
  name: string | null;
  /** sha256 of the plain key, hex. */
  digest: string;
  /** The prefix-cache tenant derived from the plain key (auth.ts), so caches stay the account's. */
  tenant: string;
  /** USD this key may spend in all; null = unlimited. */
  budgetUsd: number | null;
  /** Unix seconds. */
  created: number;
  disabled: boolean;
}

/** What a keys file or --api-key contributes: derived material only (key-material.ts), never the plain key. */
export interface KeySeed {
  id: string;
  digest: string;
  tenant: string;
  /** The file's balance: set as the key's budget when given. */
  budgetUsd?: number;
}

/** A key with its running totals. */
export interface KeyAccount extends LedgerKey {
  spentUsd: number;
  /** Held by requests still running (their worst-case cost). */
  reservedUsd: number;
  requests: number;
}

/** One finished (or failed, or abandoned) request: the ledger row. */
export interface UsageRecord {
  requestId: string;
  keyId: string;
  /** Unix seconds of arrival. */
  created: number;
  model: string;
  promptTokens: number;
  promptCacheHitTokens: number;
  completionTokens: number;
  /** What the request was charged: the response's usage.cost, or what was generated before it stopped. */
  costUsd: number;
  latencyMs: number;
  /** The replica that served it (gateway), or null. */
  upstream: string | null;
  /** stop, length, tool_calls, …; "error" or "cancelled" when it ended without a finish. */
  finishReason: string | null;
}

export type ReserveOutcome = { ok: true; reservationId: string } | { ok: false; reason: "insufficient_balance" | "disabled" | "unknown_key" };

export interface UsageQuery {
  keyId?: string;
  /** Newest first; default 50. */
  limit?: number;
}

export interface Ledger {
  /** "postgres", "pglite" or "memory". */
  readonly backend: string;
  /** Where it lives, for messages (a URL without its password, a directory, or "memory"). */
  readonly location: string;

  /** A new key; `plain` is the key itself (generated when absent) and is returned only here. */
  createKey(options: { name?: string | null; budgetUsd?: number | null; plain?: string }): Promise<{ key: LedgerKey; plain: string }>;
  /**
   * Makes sure a key exists (keys files, --api-key): inserted when new; its budget set to
   * `seed.budgetUsd` when given (the file is the source of truth for its keys' budgets). Disabled keys stay disabled.
   */
  seedKey(seed: KeySeed): Promise<LedgerKey>;
  /** Every key, enabled or not, with totals; oldest first. */
  listKeys(): Promise<KeyAccount[]>;
  /** One key by id, or by name when no id matches. */
  findKey(idOrName: string): Promise<KeyAccount | undefined>;
  disableKey(id: string): Promise<boolean>;
  setBudget(id: string, budgetUsd: number | null): Promise<boolean>;

  /**
   * Holds `amountUsd` of the key's budget for one request, atomically: never more than the budget
   * is held plus spent, however many requests reserve at once. A disabled key cannot reserve.
   */
  reserve(keyId: string, amountUsd: number): Promise<ReserveOutcome>;
  /** Ends a reservation: the record's cost becomes spend, the rest of the hold is released, the row is written. */
  settle(reservationId: string, record: UsageRecord): Promise<void>;
  /** Rows, newest first. */
  recent(query?: UsageQuery): Promise<UsageRecord[]>;
  /** Sum of every row's cost (for checks: it must equal the responses' usage.cost). */
  totalCostUsd(keyId?: string): Promise<number>;
  /** Releases holds older than `maxAgeSeconds` (left by a process that died mid-request). Returns how many. */
  releaseStale(maxAgeSeconds: number): Promise<number>;
  close(): Promise<void>;
}
