/**
 * Money in the ledger: USD with 12 decimals (usage.cost is rounded to 1e-12 USD, usage.ts), held
 * as exact decimals (SQL numeric) or integer pico-dollars (memory), so sums equal the responses'.
 */

export const PICO = 1_000_000_000_000n;

/** USD → integer pico-USD; `up` rounds a reservation up so it never holds less than its worst case. */
export function toPico(usd: number, up = false): bigint {
  if (!Number.isFinite(usd) || usd < 0) throw new Error(`an amount of USD must be a finite non-negative number, got ${usd}`);
  const scaled = usd * 1e12;
  return BigInt(up ? Math.ceil(scaled - 1e-6) : Math.round(scaled));
}

export function fromPico(pico: bigint): number {
  return Number(pico) / 1e12;
}

/** The exact decimal text for SQL numeric parameters. */
export function decimalText(pico: bigint): string {
  const sign = pico < 0n ? "-" : "";
  const abs = pico < 0n ? -pico : pico;
  return `${sign}${abs / PICO}.${(abs % PICO).toString().padStart(12, "0")}`;
}

/** A budget given on a command line or in a file: a non-negative number of USD, or none/unlimited. */
export function parseBudget(text: string, what: string): number | null {
  if (/^(none|unlimited)$/i.test(text)) return null;
  const usd = Number(text);
  if (text.trim() === "" || !Number.isFinite(usd) || usd < 0) throw new Error(`${what} must be a non-negative number of USD (or "none"), got "${text}"`);
  return usd;
}
