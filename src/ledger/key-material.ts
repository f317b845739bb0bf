/**
 * What is derived from a plain API key: its sha256 (all that is stored and compared), its
 * prefix-cache tenant (a hash under its own domain tag, stable across restarts, so the disk cache
 * stays the account's), a short label for logs, and fresh keys for `dsv4 keys create`.
 */
import { createHash, randomBytes } from "node:crypto";

export const keyDigest = (plain: string): Buffer => createHash("sha256").update(plain, "utf8").digest();
export const keyTenant = (plain: string): string => createHash("sha256").update("dsv4-cache-tenant-v1\0").update(plain, "utf8").digest("hex").slice(0, 32);
export const keyLabel = (plain: string): string => `…${plain.slice(-4)}`;

export function checkPlainKey(plain: string): void {
  if (plain.length === 0) throw new Error("an API key cannot be empty");
  if (/\s/.test(plain)) throw new Error("an API key cannot contain whitespace");
}

/** A new secret key: "sk-" and 48 hex characters (192 random bits). */
export const newPlainKey = (): string => `sk-${randomBytes(24).toString("hex")}`;

/** A key id that says nothing about the key: "key_" and 16 random hex characters. */
export const newKeyId = (): string => `key_${randomBytes(8).toString("hex")}`;

/**
 * The id of a key seeded from a keys file or --api-key: derived from its digest so that every
 * process seeding the same file agrees on it (a salted hash, not the digest itself).
 */
export const seededKeyId = (plain: string): string => `key_${createHash("sha256").update("dsv4-key-id-v1\0").update(plain, "utf8").digest("hex").slice(0, 16)}`;
