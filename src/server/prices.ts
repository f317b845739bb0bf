/**
 * Price tables (USD per 1M tokens, spec §F.1) and what applies when: a
 * schedule is a base table plus windows of UTC time with their own prices
 * (the 0731 peak hours). Which table a server uses by default follows the
 * checkpoint's release; `--prices FILE` replaces it.
 */
import type { Release } from "../text/release.js";

/** USD per 1M tokens. */
export interface PriceTable {
  cacheHitInput: number;
  cacheMissInput: number;
  output: number;
}

/** A stretch of the UTC day in minutes, [start, end): start in [0, 1440), end in (0, 1440]; end < start wraps past midnight. */
export interface UtcRange {
  startMinute: number;
  endMinute: number;
}

export interface PriceWindow {
  /** Shown in the start-up line and errors ("peak"). */
  name: string;
  ranges: UtcRange[];
  prices: PriceTable;
}

/** Base prices, replaced inside each window (windows never overlap). */
export interface PriceSchedule {
  base: PriceTable;
  windows: PriceWindow[];
}

/**
 * April weights: the model card's $0.14 input / $0.28 output, with the
 * cache-hit price that has applied since 2026-04-26 (spec §F.1).
 */
export const DEFAULT_PRICES: PriceTable = { cacheHitInput: 0.0028, cacheMissInput: 0.14, output: 0.28 };

const hours = (start: number, end: number): UtcRange => ({ startMinute: start * 60, endMinute: end * 60 });

/**
 * 0731 weights: the hosted deepseek-v4-flash prices from 2026-08-16 16:00 UTC,
 * off-peak, and twice that at peak, 01:00–04:00 and 06:00–10:00 UTC (spec §F.1).
 */
export const PRICES_0731: PriceSchedule = {
  base: { cacheHitInput: 0.007, cacheMissInput: 0.22, output: 0.66 },
  windows: [{ name: "peak", ranges: [hours(1, 4), hours(6, 10)], prices: { cacheHitInput: 0.014, cacheMissInput: 0.44, output: 1.32 } }],
};

/** The default prices for a checkpoint's release. */
export function defaultPrices(release: Release): PriceSchedule {
  return release === "0731" ? PRICES_0731 : flat(DEFAULT_PRICES);
}

export function flat(table: PriceTable): PriceSchedule {
  return { base: table, windows: [] };
}

/** A plain table or a schedule, as ServerOptions.prices takes them. */
export function toSchedule(prices: PriceTable | PriceSchedule): PriceSchedule {
  return "base" in prices ? prices : flat(prices);
}

function inRange(minute: number, r: UtcRange): boolean {
  return r.startMinute < r.endMinute ? minute >= r.startMinute && minute < r.endMinute : minute >= r.startMinute || minute < r.endMinute;
}

/** The window in force at `timeMs` (ms since the epoch), or null for the base prices. */
export function windowAt(schedule: PriceSchedule, timeMs: number): PriceWindow | null {
  const d = new Date(timeMs);
  const minute = d.getUTCHours() * 60 + d.getUTCMinutes();
  return schedule.windows.find((w) => w.ranges.some((r) => inRange(minute, r))) ?? null;
}

/** The prices in force at `timeMs`. */
export function pricesAt(schedule: PriceSchedule, timeMs: number): PriceTable {
  return windowAt(schedule, timeMs)?.prices ?? schedule.base;
}

// ───────────────────────────── the prices file ─────────────────────────────

const PRICE_KEYS = { cache_hit_input: "cacheHitInput", cache_miss_input: "cacheMissInput", output: "output" } as const;
const PRICE_NAMES = Object.keys(PRICE_KEYS).join(", ");

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The three prices of `o` (at `where`), each missing one taken from `base`; `extra` keys are allowed besides. */
function priceFields(o: Record<string, unknown>, base: PriceTable, where: string, extra: readonly string[]): PriceTable {
  const unknown = Object.keys(o).find((k) => !(k in PRICE_KEYS) && !extra.includes(k));
  if (unknown !== undefined) {
    const known = extra.length > 0 ? `${PRICE_NAMES}, ${extra.join(", ")}` : PRICE_NAMES;
    throw new Error(`${where}unknown key "${unknown}"; the keys are ${known}`);
  }
  const out = { ...base };
  for (const [key, field] of Object.entries(PRICE_KEYS)) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new Error(`${where}price "${key}" must be a non-negative number (USD per 1M tokens), got ${JSON.stringify(v)}`);
    out[field] = v;
  }
  return out;
}

/**
 * A flat price table from JSON: `{"cache_hit_input":…, "cache_miss_input":…, "output":…}`
 * (USD per 1M tokens); missing keys keep their values in `base`.
 */
export function parsePriceTable(json: unknown, base: PriceTable = DEFAULT_PRICES): PriceTable {
  if (!isObject(json)) throw new Error("a price table must be a JSON object");
  return priceFields(json, base, "", []);
}

const DAY = 24 * 60;
const TIME = /^([01]\d|2[0-4]):([0-5]\d)$/;

function minuteOf(text: string, where: string): number {
  const m = TIME.exec(text);
  const minute = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  if (!m || minute > DAY) throw new Error(`${where}: "${text}" is not a UTC time HH:MM between 00:00 and 24:00`);
  return minute;
}

function parseRange(text: unknown, where: string): UtcRange {
  if (typeof text !== "string") throw new Error(`${where} must be a string like "01:00-04:00" (UTC), got ${JSON.stringify(text)}`);
  const parts = text.split("-");
  if (parts.length !== 2) throw new Error(`${where}: "${text}" is not a range like "01:00-04:00" (UTC)`);
  // 24:00 as a start is midnight; 00:00 as an end is the end of the day.
  const startMinute = minuteOf(parts[0]!.trim(), where) % DAY;
  const endMinute = minuteOf(parts[1]!.trim(), where) || DAY;
  if (startMinute === endMinute) throw new Error(`${where}: "${text}" is empty (start equals end); write "00:00-24:00" for the whole day`);
  return { startMinute, endMinute };
}

function rangeMinutes(r: UtcRange): number[] {
  const length = r.endMinute > r.startMinute ? r.endMinute - r.startMinute : r.endMinute + DAY - r.startMinute;
  return Array.from({ length }, (_, i) => (r.startMinute + i) % DAY);
}

const clock = (minute: number) => `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;

function parseWindow(json: unknown, base: PriceTable, index: number): PriceWindow {
  const where = `windows[${index}]`;
  if (!isObject(json)) throw new Error(`${where} must be an object like {"name":"peak","utc":["01:00-04:00"],"output":1.32}`);
  const name = json.name ?? `window ${index}`;
  if (typeof name !== "string" || name === "") throw new Error(`${where}.name must be a non-empty string`);
  const utc = typeof json.utc === "string" ? [json.utc] : json.utc;
  if (!Array.isArray(utc) || utc.length === 0) throw new Error(`${where}.utc must list the window's UTC hours, e.g. ["01:00-04:00", "06:00-10:00"]`);
  const ranges = utc.map((r, j) => parseRange(r, `${where}.utc[${j}]`));
  return { name, ranges, prices: priceFields(json, base, `${where}: `, ["name", "utc"]) };
}

/**
 * The `--prices` file: a flat table, optionally with time-of-day windows
 *
 *   {"cache_hit_input":0.007, "cache_miss_input":0.22, "output":0.66,
 *    "windows":[{"name":"peak", "utc":["01:00-04:00","06:00-10:00"],
 *                "cache_hit_input":0.014, "cache_miss_input":0.44, "output":1.32}]}
 *
 * Top-level prices apply outside every window; missing ones keep `base`'s. A
 * window's missing prices are the top level's. Windows may not overlap.
 */
export function parsePriceSchedule(json: unknown, base: PriceTable = DEFAULT_PRICES): PriceSchedule {
  if (!isObject(json)) throw new Error("a price table must be a JSON object");
  const top = priceFields(json, base, "", ["windows"]);
  const list = json.windows ?? [];
  if (!Array.isArray(list)) throw new Error(`"windows" must be an array of {"name", "utc", prices…} objects`);
  const windows = list.map((w, i) => parseWindow(w, top, i));
  const owner = new Map<number, string>();
  for (const w of windows) {
    for (const r of w.ranges) {
      for (const m of rangeMinutes(r)) {
        const other = owner.get(m);
        if (other !== undefined) throw new Error(`windows "${other}" and "${w.name}" overlap at ${clock(m)} UTC; a time of day can have only one price`);
        owner.set(m, w.name);
      }
    }
  }
  return { base: top, windows };
}

/** One line for the start-up banner: the base prices and each window's. */
export function describePrices(schedule: PriceSchedule): string {
  const table = (p: PriceTable) => `$${p.cacheHitInput} hit / $${p.cacheMissInput} miss / $${p.output} out per 1M`;
  const parts = [table(schedule.base)];
  for (const w of schedule.windows) {
    const when = w.ranges.map((r) => `${clock(r.startMinute)}-${clock(r.endMinute)}`).join(", ");
    parts.push(`${w.name} ${when} UTC: ${table(w.prices)}`);
  }
  return parts.join("; ");
}
