/**
 * The ledger in process memory: what a library server uses when no database is named (nothing
 * persists). Same contract as the SQL ledger, checked by the same test suite; amounts are integer
 * pico-dollars, and a reservation is one synchronous check-and-add, so it is atomic in one process.
 */
import { randomUUID } from "node:crypto";
import { checkPlainKey, keyDigest, keyTenant, newKeyId, newPlainKey } from "./key-material.js";
import { fromPico, toPico } from "./money.js";
import type { KeyAccount, KeySeed, Ledger, LedgerKey, ReserveOutcome, UsageQuery, UsageRecord } from "./types.js";

interface Account {
  key: LedgerKey;
  budget: bigint | null;
  spent: bigint;
  reserved: bigint;
  requests: number;
}

export class MemoryLedger implements Ledger {
  readonly backend = "memory";
  readonly location = "memory";
  private readonly accounts = new Map<string, Account>();
  private readonly holds = new Map<string, { keyId: string; amount: bigint; at: number }>();
  private readonly rows: UsageRecord[] = [];

  async createKey(options: { name?: string | null; budgetUsd?: number | null; plain?: string }): Promise<{ key: LedgerKey; plain: string }> {
    const plain = options.plain ?? newPlainKey();
    checkPlainKey(plain);
    const digest = keyDigest(plain).toString("hex");
    if (this.byDigest(digest)) throw new Error("that key already exists in the ledger");
    const key = this.add(newKeyId(), options.name ?? null, digest, keyTenant(plain), options.budgetUsd ?? null);
    return { key: { ...key }, plain };
  }

  async seedKey(seed: KeySeed): Promise<LedgerKey> {
    const existing = this.byDigest(seed.digest);
    if (!existing) return { ...this.add(seed.id, null, seed.digest, seed.tenant, seed.budgetUsd ?? null) };
    if (seed.budgetUsd !== undefined) this.setBudgetOf(existing, seed.budgetUsd);
    return { ...existing.key };
  }

  async listKeys(): Promise<KeyAccount[]> {
    return [...this.accounts.values()].map((a) => this.summary(a));
  }

  async findKey(idOrName: string): Promise<KeyAccount | undefined> {
    const a = this.accounts.get(idOrName) ?? [...this.accounts.values()].find((x) => x.key.name === idOrName);
    return a ? this.summary(a) : undefined;
  }

  async disableKey(id: string): Promise<boolean> {
    const a = this.accounts.get(id);
    if (a) a.key.disabled = true;
    return a !== undefined;
  }

  async setBudget(id: string, budgetUsd: number | null): Promise<boolean> {
    const a = this.accounts.get(id);
    if (a) this.setBudgetOf(a, budgetUsd);
    return a !== undefined;
  }

  async reserve(keyId: string, amountUsd: number): Promise<ReserveOutcome> {
    const a = this.accounts.get(keyId);
    if (!a) return { ok: false, reason: "unknown_key" };
    if (a.key.disabled) return { ok: false, reason: "disabled" };
    const amount = toPico(amountUsd, true);
    if (a.budget !== null && a.spent + a.reserved + amount > a.budget) return { ok: false, reason: "insufficient_balance" };
    a.reserved += amount;
    const id = randomUUID();
    this.holds.set(id, { keyId, amount, at: Date.now() });
    return { ok: true, reservationId: id };
  }

  async settle(reservationId: string, record: UsageRecord): Promise<void> {
    const hold = this.holds.get(reservationId);
    if (!hold) return;
    this.holds.delete(reservationId);
    const a = this.accounts.get(hold.keyId)!;
    const cost = toPico(record.costUsd);
    a.reserved -= hold.amount;
    a.spent += cost;
    a.requests++;
    this.rows.push({ ...record, keyId: hold.keyId, costUsd: fromPico(cost) });
  }

  async recent(query: UsageQuery = {}): Promise<UsageRecord[]> {
    const out: UsageRecord[] = [];
    const limit = query.limit ?? 50;
    for (let i = this.rows.length - 1; i >= 0 && out.length < limit; i--) {
      const r = this.rows[i]!;
      if (query.keyId === undefined || r.keyId === query.keyId) out.push({ ...r });
    }
    return out;
  }

  async totalCostUsd(keyId?: string): Promise<number> {
    let sum = 0n;
    for (const r of this.rows) if (keyId === undefined || r.keyId === keyId) sum += toPico(r.costUsd);
    return fromPico(sum);
  }

  async releaseStale(maxAgeSeconds: number): Promise<number> {
    let n = 0;
    for (const [id, hold] of this.holds) {
      if (Date.now() - hold.at < maxAgeSeconds * 1000) continue;
      this.accounts.get(hold.keyId)!.reserved -= hold.amount;
      this.holds.delete(id);
      n++;
    }
    return n;
  }

  async close(): Promise<void> {}

  private add(id: string, name: string | null, digest: string, tenant: string, budgetUsd: number | null): LedgerKey {
    const key: LedgerKey = { id, name, digest, tenant, budgetUsd: null, created: Date.now() / 1000, disabled: false };
    const account: Account = { key, budget: null, spent: 0n, reserved: 0n, requests: 0 };
    this.setBudgetOf(account, budgetUsd);
    this.accounts.set(id, account);
    return key;
  }

  private setBudgetOf(a: Account, usd: number | null): void {
    a.budget = usd === null ? null : toPico(usd);
    a.key.budgetUsd = a.budget === null ? null : fromPico(a.budget);
  }

  private byDigest(digest: string): Account | undefined {
    for (const a of this.accounts.values()) if (a.key.digest === digest) return a;
    return undefined;
  }

  private summary(a: Account): KeyAccount {
    return { ...a.key, spentUsd: fromPico(a.spent), reservedUsd: fromPico(a.reserved), requests: a.requests };
  }
}
