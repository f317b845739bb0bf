/**
 * API keys: `Authorization: Bearer <key>` (or Anthropic's `x-api-key`),
 * compared in constant time. A key may carry a USD balance: once its spend
 * reaches it, requests get DeepSeek's 402 "Insufficient Balance".
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export interface ApiKey {
  /** sha256 of the key: equal-length buffers for timingSafeEqual, and the key itself is not kept. */
  digest: Buffer;
  /** Label for logs and metrics: the key's last 4 characters. */
  label: string;
  /**
   * The account's prefix-cache tenant (GenerateRequest.tenant): a hash of the key under its own
   * domain tag, stable across restarts (the disk cache stays the account's) and not the key.
   */
  tenant: string;
  /** USD available to this key; undefined = unlimited. */
  balance?: number;
  spent: number;
  active: number;
}

const digestOf = (key: string) => createHash("sha256").update(key, "utf8").digest();
const tenantOf = (key: string) => createHash("sha256").update("dsv4-cache-tenant-v1\0").update(key, "utf8").digest("hex").slice(0, 32);

export function makeKey(key: string, balance?: number): ApiKey {
  if (key.length === 0) throw new Error("an API key cannot be empty");
  if (/\s/.test(key)) throw new Error("an API key cannot contain whitespace");
  return { digest: digestOf(key), label: `…${key.slice(-4)}`, tenant: tenantOf(key), balance, spent: 0, active: 0 };
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
  constructor(private readonly keys: readonly ApiKey[]) {}

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /**
   * The key matching `presented`, or undefined. Every stored key is compared
   * (no early exit), so timing does not reveal which one matched or how much of it.
   */
  find(presented: string | undefined): ApiKey | undefined {
    if (presented === undefined) return undefined;
    const d = digestOf(presented);
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
