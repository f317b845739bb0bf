/** The usage ledger: keys, budgets reserved before dispatch, one row per request (types.ts). */
export type { KeyAccount, KeySeed, Ledger, LedgerKey, ReserveOutcome, UsageQuery, UsageRecord } from "./types.js";
export { MemoryLedger } from "./memory-ledger.js";
export { SqlLedger } from "./sql-ledger.js";
export { openLedger, parseDatabase, defaultLedgerDir, redactedUrl, STALE_HOLD_SECONDS, type LedgerSpec } from "./open.js";
export { MIGRATIONS, migrate } from "./schema.js";
export { keyDigest, keyTenant, keyLabel, newPlainKey, seededKeyId, checkPlainKey } from "./key-material.js";
export { parseBudget } from "./money.js";
