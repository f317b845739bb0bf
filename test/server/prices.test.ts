/** Price tables and schedules (api.md §F.1): the defaults per release, the 0731 peak hours, the --prices file. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DEFAULT_PRICES, PRICES_0731, defaultPrices, describePrices, parsePriceSchedule, pricesAt, windowAt, type PriceSchedule,
} from "../../src/server/prices.js";
import { costOf } from "../../src/server/usage.js";

const at = (hhmm: string) => Date.parse(`2026-08-20T${hhmm}:00Z`);
const MILLION = { prompt_cache_hit_tokens: 1e6, prompt_cache_miss_tokens: 1e6, completion_tokens: 1e6 };

/** The 0731 schedule as a --prices file writes it. */
const FILE_0731 = {
  cache_hit_input: 0.007,
  cache_miss_input: 0.22,
  output: 0.66,
  windows: [{ name: "peak", utc: ["01:00-04:00", "06:00-10:00"], cache_hit_input: 0.014, cache_miss_input: 0.44, output: 1.32 }],
};

describe("default prices per release", () => {
  test("April weights: the flat April table, whatever the hour", () => {
    const april = defaultPrices("april");
    assert.deepEqual(april, { base: DEFAULT_PRICES, windows: [] });
    assert.equal(pricesAt(april, at("02:00")), DEFAULT_PRICES);
  });

  test("0731 weights: §F.1's off-peak table, and twice it at peak", () => {
    assert.deepEqual(defaultPrices("0731"), PRICES_0731);
    assert.deepEqual(PRICES_0731.base, { cacheHitInput: 0.007, cacheMissInput: 0.22, output: 0.66 });
    assert.deepEqual(PRICES_0731.windows[0]!.prices, { cacheHitInput: 0.014, cacheMissInput: 0.44, output: 1.32 });
  });

  test("0731 peak is 01:00–04:00 and 06:00–10:00 UTC, start included, end excluded", () => {
    const peak = new Set<string>();
    for (let h = 0; h < 24; h++) {
      for (const m of ["00", "59"]) {
        const t = `${String(h).padStart(2, "0")}:${m}`;
        if (windowAt(PRICES_0731, at(t)) !== null) peak.add(t);
      }
    }
    const expected = ["01", "02", "03", "06", "07", "08", "09"].flatMap((h) => [`${h}:00`, `${h}:59`]);
    assert.deepEqual([...peak].sort(), expected.sort());
  });

  test("a million tokens of each kind cost 0.887 USD off-peak and 1.774 at peak", () => {
    assert.equal(costOf(MILLION, pricesAt(PRICES_0731, at("12:00"))), 0.887);
    assert.equal(costOf(MILLION, pricesAt(PRICES_0731, at("07:30"))), 1.774);
  });
});

describe("the --prices file", () => {
  test("the 0731 table written as a file reads back as the built-in schedule", () => {
    assert.deepEqual(parsePriceSchedule(FILE_0731), PRICES_0731);
  });

  test("a flat file has no windows; missing prices keep the base's", () => {
    assert.deepEqual(parsePriceSchedule({ output: 1 }, PRICES_0731.base), { base: { ...PRICES_0731.base, output: 1 }, windows: [] });
  });

  test("a window's missing prices are the file's top-level ones", () => {
    const s = parsePriceSchedule({ output: 2, windows: [{ utc: "12:00-13:00", output: 4 }] });
    assert.deepEqual(s.windows[0]!.prices, { ...DEFAULT_PRICES, output: 4 });
    assert.equal(s.windows[0]!.name, "window 0");
  });

  test("a window may wrap past midnight", () => {
    const s = parsePriceSchedule({ windows: [{ name: "night", utc: "22:00-02:00", output: 0.1 }] });
    assert.equal(windowAt(s, at("23:30"))?.name, "night");
    assert.equal(windowAt(s, at("01:59"))?.name, "night");
    assert.equal(windowAt(s, at("02:00")), null);
    assert.equal(windowAt(s, at("21:59")), null);
  });

  test("00:00-24:00 is the whole day", () => {
    const s = parsePriceSchedule({ windows: [{ name: "always", utc: "00:00-24:00", output: 9 }] });
    for (const t of ["00:00", "12:00", "23:59"]) assert.equal(pricesAt(s, at(t)).output, 9, t);
  });

  const refused: Array<[string, unknown, RegExp]> = [
    ["overlapping windows", { windows: [{ name: "a", utc: "01:00-04:00" }, { name: "b", utc: "03:30-05:00" }] }, /^windows "a" and "b" overlap at 03:30 UTC/],
    ["an hour past 24", { windows: [{ utc: "01:00-25:00" }] }, /^windows\[0\]\.utc\[0\]: "25:00" is not a UTC time HH:MM/],
    ["a time without two digits", { windows: [{ utc: "1:00-4:00" }] }, /^windows\[0\]\.utc\[0\]: "1:00" is not a UTC time HH:MM/],
    ["a range without a dash", { windows: [{ utc: ["01:00"] }] }, /^windows\[0\]\.utc\[0\]: "01:00" is not a range like "01:00-04:00"/],
    ["an empty range", { windows: [{ utc: "05:00-05:00" }] }, /is empty \(start equals end\)/],
    ["a window without utc", { windows: [{ name: "peak", output: 1 }] }, /^windows\[0\]\.utc must list the window's UTC hours/],
    ["windows not an array", { windows: { peak: "01:00-04:00" } }, /^"windows" must be an array/],
    ["an unknown key in a window", { windows: [{ utc: "01:00-02:00", hours: 3 }] }, /^windows\[0\]: unknown key "hours"; the keys are cache_hit_input, cache_miss_input, output, name, utc$/],
    ["a negative window price", { windows: [{ utc: "01:00-02:00", output: -1 }] }, /^windows\[0\]: price "output" must be a non-negative number/],
    ["an unknown top-level key", { peak: {} }, /^unknown key "peak"; the keys are cache_hit_input, cache_miss_input, output, windows$/],
  ];
  for (const [what, json, message] of refused) {
    test(`refused with a clear error: ${what}`, () => {
      assert.throws(() => parsePriceSchedule(json), (e: Error) => message.test(e.message));
    });
  }
});

test("the start-up description names the base prices and each window's hours", () => {
  assert.equal(
    describePrices(PRICES_0731),
    "$0.007 hit / $0.22 miss / $0.66 out per 1M; peak 01:00-04:00, 06:00-10:00 UTC: $0.014 hit / $0.44 miss / $1.32 out per 1M",
  );
  const flat: PriceSchedule = defaultPrices("april");
  assert.equal(describePrices(flat), "$0.0028 hit / $0.14 miss / $0.28 out per 1M");
});
