import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  bf16ToNumber, decodeE2M1Packed, decodeToFloat64, DTYPE_BYTES, e2m1ToNumber, e4m3ToNumber, e8m0ToNumber,
  encodeFromNumbers, f16ToNumber, floorLog2, numberToBf16, numberToE2M1, numberToE4M3, numberToE8M0, numberToF16,
  packE2M1, pow2, roundE2M1, roundE4M3, roundHalfEven, type DType,
} from "../../src/formats/dtypes.js";

const isNegZero = (x: number) => Object.is(x, -0);

describe("helpers", () => {
  it("pow2 is exact into the double subnormal range", () => {
    assert.equal(pow2(0), 1);
    assert.equal(pow2(-1074), Number.MIN_VALUE);
    assert.equal(pow2(-1030) * 2 ** 8, 2 ** -1022);
    assert.equal(pow2(1023), 2 ** 1023);
  });

  it("floorLog2 is exact at and around powers of two", () => {
    for (let e = -140; e <= 140; e++) {
      assert.equal(floorLog2(pow2(e)), e);
      assert.equal(floorLog2(-pow2(e)), e);
      assert.equal(floorLog2(pow2(e) * (1 + 2 ** -52)), e);
      assert.equal(floorLog2(pow2(e) * (1 - 2 ** -53)), e - 1);
    }
  });

  it("roundHalfEven breaks ties to even", () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven), [0, 2, 2, 0, -2, -2, 2, 3]);
  });
});

describe("BF16", () => {
  it("every non-NaN bit pattern round-trips", () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bf16ToNumber(b);
      if (Number.isNaN(v)) {
        assert.ok(Number.isNaN(bf16ToNumber(numberToBf16(v))));
        continue;
      }
      assert.equal(numberToBf16(v), b, `bits 0x${b.toString(16)}`);
    }
  });

  it("rounds to nearest, ties to even", () => {
    const ulp = 2 ** -7; // spacing of bf16 in [1, 2)
    assert.equal(bf16ToNumber(numberToBf16(1 + ulp / 2)), 1); // tie, 1 is even
    assert.equal(bf16ToNumber(numberToBf16(1 + ulp * 1.5)), 1 + 2 * ulp); // tie, 1+ulp is odd
    assert.equal(bf16ToNumber(numberToBf16(1 + ulp / 2 + 2 ** -20)), 1 + ulp); // just above the tie
    assert.equal(bf16ToNumber(numberToBf16(1 + ulp / 2 - 2 ** -20)), 1);
    assert.equal(bf16ToNumber(numberToBf16(-(1 + ulp * 1.5))), -(1 + 2 * ulp));
  });

  it("keeps signed zero, infinities and NaN; overflows to infinity", () => {
    assert.equal(numberToBf16(0), 0x0000);
    assert.equal(numberToBf16(-0), 0x8000);
    assert.ok(isNegZero(bf16ToNumber(0x8000)));
    assert.equal(numberToBf16(Infinity), 0x7f80);
    assert.equal(numberToBf16(-Infinity), 0xff80);
    assert.ok(Number.isNaN(bf16ToNumber(numberToBf16(NaN))));
    assert.equal(numberToBf16(3.4e38), 0x7f80); // above the largest bf16 (0x7f7f) after rounding
    assert.equal(bf16ToNumber(0x7f7f), (2 - 2 ** -7) * 2 ** 127);
  });

  it("handles bf16 subnormals", () => {
    assert.equal(bf16ToNumber(0x0001), 2 ** -133);
    assert.equal(numberToBf16(2 ** -133), 0x0001);
    assert.equal(numberToBf16(2 ** -134), 0x0000); // tie to even (zero)
    assert.equal(numberToBf16(3 * 2 ** -134), 0x0002);
  });
});

describe("F16", () => {
  it("every non-NaN bit pattern round-trips", () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = f16ToNumber(b);
      if (Number.isNaN(v)) continue;
      assert.equal(numberToF16(v), b, `bits 0x${b.toString(16)}`);
    }
  });

  it("decodes subnormals, max, infinities and NaN", () => {
    assert.equal(f16ToNumber(0x0001), 2 ** -24);
    assert.equal(f16ToNumber(0x03ff), 1023 * 2 ** -24);
    assert.equal(f16ToNumber(0x0400), 2 ** -14);
    assert.equal(f16ToNumber(0x7bff), 65504);
    assert.equal(f16ToNumber(0x7c00), Infinity);
    assert.equal(f16ToNumber(0xfc00), -Infinity);
    assert.ok(Number.isNaN(f16ToNumber(0x7e00)));
    assert.ok(isNegZero(f16ToNumber(0x8000)));
  });

  it("encodes with RNE, subnormal ties and the subnormal/normal boundary", () => {
    assert.equal(numberToF16(2 ** -25), 0x0000); // half the smallest subnormal: tie to zero
    assert.equal(numberToF16(3 * 2 ** -25), 0x0002); // tie between 1 and 2 -> even
    assert.equal(numberToF16(1023.5 * 2 ** -24), 0x0400); // tie between max subnormal and min normal -> even (normal)
    assert.equal(numberToF16(1 + 2 ** -11), 0x3c00); // tie in [1, 2) -> 1
    assert.equal(numberToF16(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(numberToF16(65519), 0x7bff);
    assert.equal(numberToF16(65520), 0x7c00); // rounds to infinity
    assert.equal(numberToF16(-0), 0x8000);
    assert.equal(numberToF16(NaN), 0x7e00);
  });
});

describe("F8 E4M3FN", () => {
  it("decodes the format: bias 7, subnormals m*2^-9, max 448, NaN only at 0x7f/0xff", () => {
    assert.equal(e4m3ToNumber(0x00), 0);
    assert.ok(isNegZero(e4m3ToNumber(0x80)));
    assert.equal(e4m3ToNumber(0x01), 2 ** -9);
    assert.equal(e4m3ToNumber(0x07), 7 * 2 ** -9);
    assert.equal(e4m3ToNumber(0x08), 2 ** -6);
    assert.equal(e4m3ToNumber(0x38), 1);
    assert.equal(e4m3ToNumber(0x7e), 448);
    assert.equal(e4m3ToNumber(0xfe), -448);
    assert.ok(Number.isNaN(e4m3ToNumber(0x7f)));
    assert.ok(Number.isNaN(e4m3ToNumber(0xff)));
    const nans = Array.from({ length: 256 }, (_, b) => b).filter((b) => Number.isNaN(e4m3ToNumber(b)));
    assert.deepEqual(nans, [0x7f, 0xff]);
  });

  it("every non-NaN byte round-trips, signed zero included", () => {
    for (let b = 0; b < 256; b++) {
      if (b === 0x7f || b === 0xff) continue;
      assert.equal(numberToE4M3(e4m3ToNumber(b)), b, `byte 0x${b.toString(16)}`);
    }
  });

  it("rounds to nearest, ties to even, in the normal and subnormal ranges", () => {
    assert.equal(numberToE4M3(1 + 1 / 16), 0x38); // tie between 1 and 1.125 -> 1 (even)
    assert.equal(numberToE4M3(1 + 3 / 16), 0x3a); // tie between 1.125 and 1.25 -> 1.25
    assert.equal(numberToE4M3(1 + 1 / 16 + 2 ** -20), 0x39);
    assert.equal(numberToE4M3(2 ** -10), 0x00); // half the smallest subnormal -> 0
    assert.equal(numberToE4M3(-(2 ** -10)), 0x80);
    assert.equal(numberToE4M3(3 * 2 ** -10), 0x02); // tie between 1 and 2 (x 2^-9) -> 2
    assert.equal(numberToE4M3(7.5 * 2 ** -9), 0x08); // tie between max subnormal and min normal -> min normal
    assert.equal(numberToE4M3(432), 0x7e); // tie between 416 and 448 -> 448 (mantissa 6 is even)
    assert.equal(roundE4M3(432), 448);
    assert.equal(roundE4M3(400), 384);
    assert.equal(roundE4M3(3 * 2 ** -10), 2 ** -8);
    assert.equal(roundE4M3(-(1 + 3 / 16)), -1.25);
  });

  it("saturates above 448 and maps NaN to 0x7f", () => {
    assert.equal(numberToE4M3(464), 0x7e);
    assert.equal(numberToE4M3(1e9), 0x7e);
    assert.equal(numberToE4M3(-1e9), 0xfe);
    assert.equal(numberToE4M3(NaN), 0x7f);
  });
});

describe("E8M0", () => {
  it("decodes 2^(b-127) with 255 = NaN", () => {
    assert.equal(e8m0ToNumber(127), 1);
    assert.equal(e8m0ToNumber(0), 2 ** -127);
    assert.equal(e8m0ToNumber(254), 2 ** 127);
    assert.equal(e8m0ToNumber(117), 2 ** -10);
    assert.ok(Number.isNaN(e8m0ToNumber(255)));
  });

  it("every non-NaN byte round-trips; non powers of two are rejected", () => {
    for (let b = 0; b < 255; b++) assert.equal(numberToE8M0(e8m0ToNumber(b)), b);
    for (const bad of [0, -1, 3, 0.75, NaN, Infinity, 2 ** 128, 2 ** -128]) assert.throws(() => numberToE8M0(bad), RangeError);
  });
});

describe("FP4 E2M1", () => {
  const expected = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

  it("decodes all 16 codes (bit 3 = sign, code 8 = -0)", () => {
    for (let c = 0; c < 16; c++) assert.ok(Object.is(e2m1ToNumber(c), expected[c]), `code ${c}`);
  });

  it("every code round-trips, -0 included", () => {
    for (let c = 0; c < 16; c++) assert.equal(numberToE2M1(expected[c]!), c);
  });

  it("rounds to nearest, ties to even, and clamps to ±6", () => {
    const cases: Array<[number, number]> = [
      [0.25, 0], [0.26, 0.5], [0.75, 1], [1.25, 1], [1.75, 2], [2.5, 2], [3.5, 4], [5, 4], [5.01, 6], [7, 6], [100, 6],
      [-0.75, -1], [-5, -4], [-100, -6],
    ];
    for (const [x, want] of cases) {
      assert.equal(e2m1ToNumber(numberToE2M1(x)), want, `${x}`);
      if (Math.abs(x) <= 6) assert.equal(roundE2M1(x), want, `round ${x}`);
    }
    assert.equal(numberToE2M1(-0.1), 8); // rounds to -0
  });

  it("packs two codes per byte, element 2j in the low nibble", () => {
    assert.deepEqual([...packE2M1([1, 2])], [0x21]);
    assert.deepEqual([...packE2M1([0xf, 0x0, 0x3])], [0x0f, 0x03]);
    const all = Array.from({ length: 16 }, (_, c) => c);
    const packed = packE2M1(all);
    assert.deepEqual([...packed], [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    const decoded = decodeE2M1Packed(packed);
    for (let c = 0; c < 16; c++) assert.ok(Object.is(decoded[c], expected[c]));
  });

  it("decodes every packed byte as (low, high)", () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const d = decodeE2M1Packed(bytes);
    for (let b = 0; b < 256; b++) {
      assert.ok(Object.is(d[2 * b], expected[b & 15]));
      assert.ok(Object.is(d[2 * b + 1], expected[b >> 4]));
    }
  });
});

describe("whole-tensor encode/decode", () => {
  const samples: Record<DType, number[]> = {
    F64: [0, -0, 1.5, -1e300, Math.PI, 5e-324],
    F32: [0, -0, 1.5, -3.4028234663852886e38, 2 ** -149],
    F16: [0, -0, 65504, 2 ** -24, -1.5],
    BF16: [0, -0, 1, -(2 ** -133), 3.3895313892515355e38],
    F8_E4M3: [0, -0, 448, 2 ** -9, -1.25],
    F8_E8M0: [1, 2 ** -127, 2 ** 127, 0.5],
    I8: [0, 127, -128, -1],
    U8: [0, 255, 7],
    I16: [-32768, 32767, 0],
    I32: [-(2 ** 31), 2 ** 31 - 1, 5],
    I64: [0, -1, 2 ** 53 - 1, -(2 ** 53)],
    BOOL: [0, 1],
  };

  for (const [dtype, values] of Object.entries(samples) as Array<[DType, number[]]>) {
    it(`${dtype} round-trips exactly representable values`, () => {
      const bytes = encodeFromNumbers(dtype, values);
      assert.equal(bytes.byteLength, values.length * DTYPE_BYTES[dtype]);
      const back = decodeToFloat64(dtype, bytes);
      for (let i = 0; i < values.length; i++) assert.ok(Object.is(back[i], values[i]), `${dtype}[${i}] ${back[i]} vs ${values[i]}`);
    });
  }

  it("stores little-endian", () => {
    assert.deepEqual([...encodeFromNumbers("BF16", [1])], [0x80, 0x3f]);
    assert.deepEqual([...encodeFromNumbers("I64", [258])], [2, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...encodeFromNumbers("F16", [1])], [0x00, 0x3c]);
  });

  it("decodes from a view with an odd byte offset", () => {
    const buf = new Uint8Array(9);
    buf.set(encodeFromNumbers("F32", [1.5, -2]), 1);
    assert.deepEqual([...decodeToFloat64("F32", buf.subarray(1))], [1.5, -2]);
  });
});
