/**
 * API keys: `Authorization: Bearer <key>` (or Anthropic's `x-api-key`),
 * compared in constant time. Keys and their USD budgets live in the usage ledger
 * (src/ledger/); a keys file or --api-key seeds it. The ring here is the ledger's
 * enabled keys, refreshed from it, so authentication costs no query.
 */
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { checkPlainKey, keyDigest, keyLabel, keyTenant, seededKeyId } from "../ledger/key-material.js";
import type { KeySeed, LedgerKey } from "../ledger/types.js";

export interface ApiKey {
  /** The ledger's id of the key (seeded keys: derived from the key, so every process agrees). */
  id: string;
  /** sha256 of the key: equal-length buffers for timingSafeEqual, and the key itself is not kept. */
  digest: Buffer;
  /** Label for logs and metrics: the key's last 4 characters, or its ledger name or id. */
  label: string;
  /**
   * The account's prefix-cache tenant (GenerateRequest.tenant): a hash of the key under its own
   * domain tag, stable across restarts (the disk cache stays the account's) and not the key.
   */
  tenant: string;
  /** A keys file's USD balance: seeds the key's budget in the ledger. */
  balance?: number;
  /** The ledger's budget at the last refresh; null = unlimited (no worst case needs computing). */
  budgetUsd: number | null;
  active: number;
}

export function makeKey(key: string, balance?: number): ApiKey {
  checkPlainKey(key);
  return { id: seededKeyId(key), digest: keyDigest(key), label: keyLabel(key), tenant: keyTenant(key), balance, budgetUsd: balance ?? null, active: 0 };
}

/** What a configured key puts into the ledger. */
export function seedOf(key: ApiKey): KeySeed {
  return { id: key.id, digest: key.digest.toString("hex"), tenant: key.tenant, ...(key.balance !== undefined ? { budgetUsd: key.balance } : {}) };
}

/**
 * A keys file: one key per line, optionally followed by a USD balance;
 * blank lines and `#` comments are skipped.
 */
export function readKeysFile(path: string): ApiKey[] {
  const text = readFileSync(path, "utf8");
  const keys: ApiKey[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const [key, balance, extra] = line.split(/\s+/);
    if (extra !== undefined) throw new Error(`${path}:${i + 1}: expected "KEY [BALANCE_USD]"`);
    let usd: number | undefined;
    if (balance !== undefined) {
      usd = Number(balance);
      if (!Number.isFinite(usd) || usd < 0) throw new Error(`${path}:${i + 1}: balance must be a non-negative number of USD, got "${balance}"`);
    }
    keys.push(makeKey(key!, usd));
  });
  if (keys.length === 0) throw new Error(`${path}: no API keys in the file`);
  return keys;
}

export class KeyRing {
  private keys: readonly ApiKey[];

  /** `enabled`: whether requests need a key at all (even while the ring is still empty). */
  constructor(keys: readonly ApiKey[], readonly enabled = keys.length > 0) {
    this.keys = keys;
  }

  /**
   * The ledger's enabled keys become the ring. A key already in the ring keeps its object (its
   * concurrency count and label); disabled keys drop out.
   */
  replace(stored: readonly LedgerKey[]): void {
    const current = new Map(this.keys.map((k) => [k.id, k]));
    this.keys = stored
      .filter((s) => !s.disabled)
      .map((s) => {
        const known = current.get(s.id);
        if (known) {
          known.budgetUsd = s.budgetUsd;
          return known;
        }
        return { id: s.id, digest: Buffer.from(s.digest, "hex"), label: s.name ?? s.id, tenant: s.tenant, budgetUsd: s.budgetUsd, active: 0 };
      });
  }

  /**
   * The key matching `presented`, or undefined. Every stored key is compared
   * (no early exit), so timing does not reveal which one matched or how much of it.
   */
  find(presented: string | undefined): ApiKey | undefined {
    if (presented === undefined) return undefined;
    const d = keyDigest(presented);
    let found: ApiKey | undefined;
    for (const key of this.keys) {
      if (timingSafeEqual(key.digest, d) && !found) found = key;
    }
    return found;
  }
}

/** The key a request presents: Bearer token, else x-api-key. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const x = headers["x-api-key"];
  return typeof x === "string" && x !== "" ? x : undefined;
}
