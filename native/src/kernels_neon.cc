// The arm64 table: NEON (Advanced SIMD, baseline on every aarch64 CPU, so no flags and no
// run-time check are needed). Built by binding.gyp on arm64 hosts only.
//
// Numerics: every kernel performs the avx2 table's operations per output in the avx2 table's
// order, so the two tables give the same bits (native/test/kernel_check.cc checks it under
// qemu-aarch64). An AVX2 8-lane vector is a pair of 4-lane NEON vectors (F8 below),
// vfmaq_f32 is fused like _mm256_fmadd_ps, hsum8 adds the lanes in AVX2's pairing, and the
// activations use the AVX2 layouts (Fp8Group32, Fp4Group64, Bf16Group16) so that each lane
// meets the same weights. The dotprod / bf16 extensions are left out on purpose: BFDOT and
// BFMMLA round differently from fp32 FMA chains (and SDOT needs integer activations), so
// they would break that equality and the reference's summation rules.
//
// kernels_impl.h compiled here with DSV4_NEON (and without DSV4_AVX2) gives the avx2 table's
// activation layouts, preparation and FP8/FP4 simulations (their 4-lane forms), and the
// portable kernels, used as they are for the cases the avx2 table also leaves to them
// (formats whose K does not fit a vector layout, FP4 with special scale bytes).
#define DSV4_NEON 1
#include "kernels_impl.h"

#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels_neon.cc is for aarch64 (NEON) only"
#endif
#if defined(DSV4_AVX2)
#error "kernels_neon.cc must not see the AVX2 paths of kernels_impl.h"
#endif

#include <arm_neon.h>

namespace dsv4 {
namespace {

// ---------------------------------------------------------------------------------------
// One AVX2 vector: lanes 0-3 in lo, 4-7 in hi.
struct F8 {
  float32x4_t lo, hi;
};

inline F8 zero8() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
inline F8 load8(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4)}; }
inline void store8(float* p, F8 v) {
  vst1q_f32(p, v.lo);
  vst1q_f32(p + 4, v.hi);
}
inline F8 add8(F8 a, F8 b) { return {vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)}; }
inline F8 mul8(F8 a, F8 b) { return {vmulq_f32(a.lo, b.lo), vmulq_f32(a.hi, b.hi)}; }
// a * b + c with one rounding, as _mm256_fmadd_ps(a, b, c).
inline F8 fma8(F8 a, F8 b, F8 c) { return {vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi)}; }

// AVX2's hsum8: (lo + hi), then lanes (0 + 2) and (1 + 3), then those two.
inline float hsum8(F8 v) {
  const float32x4_t s = vaddq_f32(v.lo, v.hi);
  const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
  return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}


// ---------------------------------------------------------------------------------------
// FP8 (Fp8Group32): the avx2 table's fp8_linear. Activations are prescaled by the weight
// scales of the 128-row group and a per-row power of two (exact), weights decode as
// value * 2^-120; per output each 128-input block is one 8-lane chain from zero in K order,
// the block sums are added to a total from zero in block order, and the total's hsum8 times
// `post` (in double) is the result.

// 32 E4M3 bytes -> 4 vectors, vector p lane i = byte 4i + p (fp8_decode32's bit trick: the
// seven magnitude bits into the exponent's low bits and the mantissa's top, sign to bit 31).
inline void fp8_decode32(const uint8_t* p, F8 w[4]) {
  const int32x4_t mask = vdupq_n_s32(static_cast<int32_t>(0x87F00000u));
  const int32x4_t r0 = vreinterpretq_s32_u8(vld1q_u8(p)), r1 = vreinterpretq_s32_u8(vld1q_u8(p + 16));
#define DSV4_FP8_LANES(raw, shl) vreinterpretq_f32_s32(vandq_s32(vshrq_n_s32(vshlq_n_s32(raw, shl), 4), mask))
  w[0] = {DSV4_FP8_LANES(r0, 24), DSV4_FP8_LANES(r1, 24)};
  w[1] = {DSV4_FP8_LANES(r0, 16), DSV4_FP8_LANES(r1, 16)};
  w[2] = {DSV4_FP8_LANES(r0, 8), DSV4_FP8_LANES(r1, 8)};
#undef DSV4_FP8_LANES
  w[3] = {vreinterpretq_f32_s32(vandq_s32(vshrq_n_s32(r0, 4), mask)), vreinterpretq_f32_s32(vandq_s32(vshrq_n_s32(r1, 4), mask))};
}

// fp8_prescale of the avx2 table (elementwise products, so any vector width gives its values).
void neon_fp8_prescale(const Matrix& w, int g, const float* xp, size_t ldx, int rows, float* dst, double* post) {
  const float* s = w.scales.data() + static_cast<size_t>(g) * w.scale_cols;
  for (int r = 0; r < rows; r++) {
    const float* x = xp + r * ldx;
    float* d = dst + r * ldx;
    const float* block_max = x + w.K;
    float m = 0;
    for (int b = 0; b < w.scale_cols; b++) {
      const float v = block_max[b] * s[b];
      m = v > m ? v : m;
    }
    int c = 0;
    if (m > 0 && m <= 3.0e38f) c = imin(127, imax(-126, 100 - ilogbf(m)));
    post[r] = ldexp(1.0, 120 - c);
    const float32x4_t t = vdupq_n_f32(ldexpf(1.0f, c));
    for (int k = 0; k < w.K; k += 4) vst1q_f32(d + k, vmulq_f32(vmulq_f32(vld1q_f32(x + k), vdupq_n_f32(s[k / kFp8Block])), t));
  }
}

// NR weight rows by RB activation rows, one 128-input block at a time; each 32-input group
// of a weight row is decoded once for all RB activation rows.
template <int NR, int RB>
void fp8_tile(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n, const double* post) {
  const int K = w.K;
  F8 acc[NR][RB];
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) acc[j][r] = zero8();
  for (int kb = 0; kb < K; kb += kFp8Block) {
    const int ke = imin(K, kb + kFp8Block);
    F8 c[NR][RB];
    for (int j = 0; j < NR; j++)
      for (int r = 0; r < RB; r++) c[j][r] = zero8();
    for (int k = kb; k < ke; k += 32) {
      for (int j = 0; j < NR; j++) {
        const uint8_t* wr = w.row(n + j) + k;
        __builtin_prefetch(wr + NR * static_cast<size_t>(K));
        F8 wv[4];
        fp8_decode32(wr, wv);
        for (int r = 0; r < RB; r++)
          for (int p = 0; p < 4; p++) c[j][r] = fma8(wv[p], load8(x + r * ldx + k + 8 * p), c[j][r]);
      }
    }
    for (int j = 0; j < NR; j++)
      for (int r = 0; r < RB; r++) acc[j][r] = add8(acc[j][r], c[j][r]);
  }
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) out[r * ldo + n + j] = static_cast<float>(static_cast<double>(hsum8(acc[j][r])) * post[r]);
}

// From this many activation rows, weight rows are decoded once into a tile of floats and
// every activation row multiplies them from there (as the avx2 table does from 5 rows): the
// decode is paid once per weight instead of once per 4-row pass.
constexpr int kNeonTiledRows = 5;
constexpr int kNeonTileRows = 4;

// Weight rows [n0, n0 + nt) as floats in the order fp8_decode32 gives them (E4M3 value *
// 2^-120, Fp8Group32 lanes), K floats per row.
void fp8_decode_tile(const Matrix& w, int n0, int nt, float* tile) {
  const int K = w.K;
  for (int j = 0; j < nt; j++) {
    const uint8_t* wr = w.row(n0 + j);
    float* d = tile + static_cast<size_t>(j) * K;
    for (int k = 0; k < K; k += 32) {
      F8 wv[4];
      fp8_decode32(wr + k, wv);
      for (int p = 0; p < 4; p++) store8(d + k + 8 * p, wv[p]);
    }
  }
}

// fp8_tile's arithmetic with the weights read from a decoded tile: 8 inputs at a time, the
// activation rows in registers and each weight vector loaded once for all of them.
template <int NR, int RB>
void fp8_tile_decoded(const Matrix& w, const float* tile, const float* x, size_t ldx, float* out, size_t ldo, int n, const double* post) {
  const int K = w.K;
  F8 acc[NR][RB];
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) acc[j][r] = zero8();
  for (int kb = 0; kb < K; kb += kFp8Block) {
    const int ke = imin(K, kb + kFp8Block);
    F8 c[NR][RB];
    for (int j = 0; j < NR; j++)
      for (int r = 0; r < RB; r++) c[j][r] = zero8();
    for (int k = kb; k < ke; k += 8) {
      F8 xv[RB];
      for (int r = 0; r < RB; r++) xv[r] = load8(x + r * ldx + k);
      for (int j = 0; j < NR; j++) {
        const F8 wv = load8(tile + static_cast<size_t>(j) * K + k);
        for (int r = 0; r < RB; r++) c[j][r] = fma8(wv, xv[r], c[j][r]);
      }
    }
    for (int j = 0; j < NR; j++)
      for (int r = 0; r < RB; r++) acc[j][r] = add8(acc[j][r], c[j][r]);
  }
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) out[r * ldo + n + j] = static_cast<float>(static_cast<double>(hsum8(acc[j][r])) * post[r]);
}

using Fp8TileFn = void (*)(const Matrix&, const float*, size_t, float*, size_t, int, const double*);
using Fp8DecodedFn = void (*)(const Matrix&, const float*, const float*, size_t, float*, size_t, int, const double*);

// Output rows [n0, n1) of one 128-row scale group. Many activation rows: tiles of four
// decoded weight rows by three activation rows. Few: decoded on the fly, activation rows in
// passes of up to four, four weight rows at a time for one activation row, two for two, one
// for more.
void neon_fp8_group(const Matrix& w, const float* xs, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1, const double* post) {
  if (rows >= kNeonTiledRows) {
    static const Fp8DecodedFn micro[4][3] = {
        {fp8_tile_decoded<1, 1>, fp8_tile_decoded<1, 2>, fp8_tile_decoded<1, 3>},
        {fp8_tile_decoded<2, 1>, fp8_tile_decoded<2, 2>, fp8_tile_decoded<2, 3>},
        {fp8_tile_decoded<3, 1>, fp8_tile_decoded<3, 2>, fp8_tile_decoded<3, 3>},
        {fp8_tile_decoded<4, 1>, fp8_tile_decoded<4, 2>, fp8_tile_decoded<4, 3>},
    };
    float* tile = static_cast<float*>(scratch(Scratch::Tile, kNeonTileRows * static_cast<size_t>(w.K) * sizeof(float)));
    for (int t = n0; t < n1; t += kNeonTileRows) {
      const int nt = imin(kNeonTileRows, n1 - t);
      fp8_decode_tile(w, t, nt, tile);
      for (int r = 0; r < rows; r += 3) {
        const int rb = imin(3, rows - r);
        micro[nt - 1][rb - 1](w, tile, xs + r * ldx, ldx, out + r * ldo, ldo, t, post + r);
      }
    }
    return;
  }
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const int rb = imin(4, rows - r0);
    const float* x = xs + r0 * ldx;
    float* o = out + r0 * ldo;
    const double* pr = post + r0;
    static const Fp8TileFn single[4] = {fp8_tile<1, 1>, fp8_tile<1, 2>, fp8_tile<1, 3>, fp8_tile<1, 4>};
    int n = n0;
    if (rb == 1)
      for (; n + 4 <= n1; n += 4) fp8_tile<4, 1>(w, x, ldx, o, ldo, n, pr);
    if (rb == 2)
      for (; n + 2 <= n1; n += 2) fp8_tile<2, 2>(w, x, ldx, o, ldo, n, pr);
    for (; n < n1; n++) single[rb - 1](w, x, ldx, o, ldo, n, pr);
  }
}

void neon_fp8_linear(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  float* xs = static_cast<float*>(scratch(Scratch::Prescaled, static_cast<size_t>(rows) * ldx * sizeof(float)));
  double* post = static_cast<double*>(scratch(Scratch::Post, static_cast<size_t>(rows) * sizeof(double)));
  for (int n = n0; n < n1;) {
    const int g = n / kFp8Block;
    const int end = imin(n1, (g + 1) * kFp8Block);
    neon_fp8_prescale(w, g, xp, ldx, rows, xs, post);
    neon_fp8_group(w, xs, ldx, rows, out, ldo, n, end, post);
    n = end;
  }
}

// ---------------------------------------------------------------------------------------
// FP4 (Fp4Group64): per output and 64-input group, chains a (vectors 0, 2 of the low
// nibbles, then 0, 2 of the high ones) and b (1, 3, 1, 3), the first product of each a plain
// multiply; then total = fma(a + b, scales, total), lanes 0-3 scaled by the group's first
// E8M0 byte and lanes 4-7 by its second; the result is hsum8(total). That is fp4_gemv_row /
// fp4_row_k / fp4_tile_k of the avx2 table.

// E2M1 code -> bf16 bits, low and high bytes (fp4_lut_lo / fp4_lut_hi).
const uint8_t kFp4LutLo[16] = {0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0, 0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0};
const uint8_t kFp4LutHi[16] = {0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40, 0x80, 0xBF, 0xBF, 0xBF, 0xC0, 0xC0, 0xC0, 0xC0};

// 16 codes (one nibble of 16 bytes) -> the 4 half vectors fp4_decode makes of one 128-bit
// lane: two table lookups give each code's bf16 bytes, zipped into 16-bit values; the even
// ones shifted up and the odd ones masked in place become floats.
inline void fp4_decode16(uint8x16_t codes, uint8x16_t lut_lo, uint8x16_t lut_hi, float32x4_t f[4]) {
  const uint8x16_t lo = vqtbl1q_u8(lut_lo, codes), hi = vqtbl1q_u8(lut_hi, codes);
  const uint32x4_t u0 = vreinterpretq_u32_u8(vzip1q_u8(lo, hi)), u1 = vreinterpretq_u32_u8(vzip2q_u8(lo, hi));
  const uint32x4_t high = vdupq_n_u32(0xFFFF0000u);
  f[0] = vreinterpretq_f32_u32(vshlq_n_u32(u0, 16));
  f[1] = vreinterpretq_f32_u32(vandq_u32(u0, high));
  f[2] = vreinterpretq_f32_u32(vshlq_n_u32(u1, 16));
  f[3] = vreinterpretq_f32_u32(vandq_u32(u1, high));
}

// The 64 weights of a group (32 bytes) as 8 vectors: f[0..3] from the low nibbles, f[4..7]
// from the high ones, lanes 0-3 from the first 16 bytes and 4-7 from the last 16.
inline void fp4_decode_group(const uint8_t* p, uint8x16_t lut_lo, uint8x16_t lut_hi, F8 f[8]) {
  const uint8x16_t b0 = vld1q_u8(p), b1 = vld1q_u8(p + 16);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  float32x4_t h0[4], h1[4];
  fp4_decode16(vandq_u8(b0, low4), lut_lo, lut_hi, h0);
  fp4_decode16(vandq_u8(b1, low4), lut_lo, lut_hi, h1);
  for (int q = 0; q < 4; q++) f[q] = {h0[q], h1[q]};
  fp4_decode16(vshrq_n_u8(b0, 4), lut_lo, lut_hi, h0);
  fp4_decode16(vshrq_n_u8(b1, 4), lut_lo, lut_hi, h1);
  for (int q = 0; q < 4; q++) f[4 + q] = {h0[q], h1[q]};
}

// The group's two E8M0 bytes as power-of-two floats (bytes 0 and 255, which this does not
// map, keep a matrix off this path: scale_special).
inline F8 fp4_scale_pair(const uint8_t* s) {
  return {vreinterpretq_f32_u32(vdupq_n_u32(static_cast<uint32_t>(s[0]) << 23)), vreinterpretq_f32_u32(vdupq_n_u32(static_cast<uint32_t>(s[1]) << 23))};
}

// One weight row against RB activation rows: each group decoded once (or, from a tile,
// read as fp4_decode_tile stored it), used for every row.
template <int RB, bool FromTile>
void fp4_row(const Matrix& w, const float* tile, const float* x, size_t ldx, float* out, size_t ldo, int n) {
  const uint8x16_t lut_lo = vld1q_u8(kFp4LutLo), lut_hi = vld1q_u8(kFp4LutHi);
  const uint8_t* wr = w.row(n);
  const uint8_t* sr = w.scale_bytes(n);
  F8 acc[RB];
  for (int r = 0; r < RB; r++) acc[r] = zero8();
  for (int g = 0; g < w.K; g += 64) {
    F8 f[8];
    if (FromTile) {
      for (int q = 0; q < 8; q++) f[q] = load8(tile + g + 8 * q);
    } else {
      __builtin_prefetch(wr + g / 2 + 1024);
      fp4_decode_group(wr + g / 2, lut_lo, lut_hi, f);
    }
    const F8 s = fp4_scale_pair(sr + g / kFp4Block);
    for (int r = 0; r < RB; r++) {
      const float* xr = x + r * ldx + g;
      F8 a = mul8(f[0], load8(xr));
      F8 b = mul8(f[1], load8(xr + 8));
      a = fma8(f[2], load8(xr + 16), a);
      b = fma8(f[3], load8(xr + 24), b);
      a = fma8(f[4], load8(xr + 32), a);
      b = fma8(f[5], load8(xr + 40), b);
      a = fma8(f[6], load8(xr + 48), a);
      b = fma8(f[7], load8(xr + 56), b);
      acc[r] = fma8(add8(a, b), s, acc[r]);
    }
  }
  for (int r = 0; r < RB; r++) out[r * ldo + n] = hsum8(acc[r]);
}

// Weight row n decoded into K floats, each 64-input group as fp4_decode_group's 8 vectors.
void fp4_decode_tile(const Matrix& w, int n, float* tile) {
  const uint8x16_t lut_lo = vld1q_u8(kFp4LutLo), lut_hi = vld1q_u8(kFp4LutHi);
  const uint8_t* wr = w.row(n);
  for (int g = 0; g < w.K; g += 64) {
    F8 f[8];
    fp4_decode_group(wr + g / 2, lut_lo, lut_hi, f);
    for (int q = 0; q < 8; q++) store8(tile + g + 8 * q, f[q]);
  }
}

using Fp4RowFn = void (*)(const Matrix&, const float*, const float*, size_t, float*, size_t, int);

// Floats of decoded FP4 weight rows kept for all activation passes (256 KiB: in L2 beside
// the activations of a pass).
constexpr size_t kNeonSpanFloats = 64 * 1024;

// Activation rows in passes of up to four. From kNeonTiledRows rows a span of weight rows is
// decoded once into floats and every pass multiplies it from there; below, each pass
// decodes on the fly.
void neon_fp4_linear(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  static const Fp4RowFn on_the_fly[4] = {fp4_row<1, false>, fp4_row<2, false>, fp4_row<3, false>, fp4_row<4, false>};
  static const Fp4RowFn from_tile[4] = {fp4_row<1, true>, fp4_row<2, true>, fp4_row<3, true>, fp4_row<4, true>};
  if (rows >= kNeonTiledRows) {
    const size_t K = static_cast<size_t>(w.K);
    const int span = imax(1, imin(n1 - n0, static_cast<int>(kNeonSpanFloats / K)));
    float* tile = static_cast<float*>(scratch(Scratch::Tile, static_cast<size_t>(span) * K * sizeof(float)));
    for (int n = n0; n < n1; n += span) {
      const int e = imin(n1, n + span);
      for (int j = n; j < e; j++) fp4_decode_tile(w, j, tile + static_cast<size_t>(j - n) * K);
      for (int r0 = 0; r0 < rows; r0 += 4) {
        const Fp4RowFn row = from_tile[imin(4, rows - r0) - 1];
        for (int j = n; j < e; j++) row(w, tile + static_cast<size_t>(j - n) * K, xp + static_cast<size_t>(r0) * ldx, ldx, out + static_cast<size_t>(r0) * ldo, ldo, j);
      }
    }
    return;
  }
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const Fp4RowFn row = on_the_fly[imin(4, rows - r0) - 1];
    for (int n = n0; n < n1; n++) row(w, nullptr, xp + static_cast<size_t>(r0) * ldx, ldx, out + static_cast<size_t>(r0) * ldo, ldo, n);
  }
}

// ---------------------------------------------------------------------------------------
// BF16 (Bf16Group16) and F32: per output two chains from zero, c0 over the first 8 of each
// 16 prepared inputs and c1 over the other 8; the result is hsum8(c0 + c1), plus for F32 the
// inputs past the last multiple of 16 summed one by one from zero (dense_tile).

// 16 bf16 values: even elements (low halves of the 32-bit lanes) and odd ones (high halves).
inline void bf16_load16(const uint8_t* row, int k, F8& w0, F8& w1) {
  const uint32x4_t r0 = vld1q_u32(reinterpret_cast<const uint32_t*>(row + 2 * k));
  const uint32x4_t r1 = vld1q_u32(reinterpret_cast<const uint32_t*>(row + 2 * k + 16));
  const uint32x4_t high = vdupq_n_u32(0xFFFF0000u);
  w0 = {vreinterpretq_f32_u32(vshlq_n_u32(r0, 16)), vreinterpretq_f32_u32(vshlq_n_u32(r1, 16))};
  w1 = {vreinterpretq_f32_u32(vandq_u32(r0, high)), vreinterpretq_f32_u32(vandq_u32(r1, high))};
}
inline void f32_load16(const uint8_t* row, int k, F8& w0, F8& w1) {
  const float* r = reinterpret_cast<const float*>(row) + k;
  w0 = load8(r);
  w1 = load8(r + 8);
}

template <int NR, int RB, void (*Load16)(const uint8_t*, int, F8&, F8&)>
void dense_tile(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n) {
  const int K = w.K, full = K & ~15;
  const uint8_t* wr[NR];
  for (int j = 0; j < NR; j++) wr[j] = w.row(n + j);
  const size_t per = w.row_bytes() / static_cast<size_t>(K), ahead = NR * w.row_bytes();
  F8 c0[NR][RB], c1[NR][RB];
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) c0[j][r] = c1[j][r] = zero8();
  for (int k = 0; k < full; k += 16) {
    F8 xv0[RB], xv1[RB];
    for (int r = 0; r < RB; r++) {
      xv0[r] = load8(x + r * ldx + k);
      xv1[r] = load8(x + r * ldx + k + 8);
    }
    for (int j = 0; j < NR; j++) {
      __builtin_prefetch(wr[j] + per * k + ahead);
      F8 w0, w1;
      Load16(wr[j], k, w0, w1);
      for (int r = 0; r < RB; r++) {
        c0[j][r] = fma8(w0, xv0[r], c0[j][r]);
        c1[j][r] = fma8(w1, xv1[r], c1[j][r]);
      }
    }
  }
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) {
      float v = hsum8(add8(c0[j][r], c1[j][r]));
      if (full < K) v += f32_row_scalar(w, n + j, x + r * ldx, full);  // only F32 has a tail
      out[r * ldo + n + j] = v;
    }
}

// Weight row n of a BF16 matrix as floats in Bf16Group16 order (each 16 inputs: the 8 even
// ones, then the 8 odd ones), what bf16_load16 gives.
void bf16_decode_row(const Matrix& w, int n, float* dst) {
  for (int k = 0; k < w.K; k += 16) {
    F8 w0, w1;
    bf16_load16(w.row(n), k, w0, w1);
    store8(dst + k, w0);
    store8(dst + k + 8, w1);
  }
}

// dense_tile's arithmetic over weight rows given as floats: wf holds NR row pointers (a
// decoded BF16 row in Bf16Group16 order, or an F32 row).
template <int NR, int RB>
void dense_tile_floats(const Matrix& w, const float* const* wf, const float* x, size_t ldx, float* out, size_t ldo, int n) {
  const int K = w.K, full = K & ~15;
  F8 c0[NR][RB], c1[NR][RB];
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) c0[j][r] = c1[j][r] = zero8();
  for (int k = 0; k < full; k += 16) {
    F8 xv0[RB], xv1[RB];
    for (int r = 0; r < RB; r++) {
      xv0[r] = load8(x + r * ldx + k);
      xv1[r] = load8(x + r * ldx + k + 8);
    }
    for (int j = 0; j < NR; j++) {
      const F8 w0 = load8(wf[j] + k), w1 = load8(wf[j] + k + 8);
      for (int r = 0; r < RB; r++) {
        c0[j][r] = fma8(w0, xv0[r], c0[j][r]);
        c1[j][r] = fma8(w1, xv1[r], c1[j][r]);
      }
    }
  }
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) {
      float v = hsum8(add8(c0[j][r], c1[j][r]));
      if (full < K) v += f32_row_scalar(w, n + j, x + r * ldx, full);
      out[r * ldo + n + j] = v;
    }
}

using DenseFloatsFn = void (*)(const Matrix&, const float* const*, const float*, size_t, float*, size_t, int);

// Many activation rows: a span of weight rows as floats (BF16 decoded once into the tile;
// F32 rows used in place, L2-resident after the first pass) multiplied by every 4-row pass
// of activations, instead of every pass streaming the whole matrix from memory.
void dense_spans(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  static const DenseFloatsFn pair[2] = {dense_tile_floats<2, 1>, dense_tile_floats<2, 2>};
  static const DenseFloatsFn single[4] = {dense_tile_floats<1, 1>, dense_tile_floats<1, 2>, dense_tile_floats<1, 3>, dense_tile_floats<1, 4>};
  const size_t K = static_cast<size_t>(w.K);
  const bool decode = w.format == Format::BF16;
  const int span = imax(1, imin(n1 - n0, static_cast<int>(kNeonSpanFloats / K)));
  float* tile = decode ? static_cast<float*>(scratch(Scratch::Tile, static_cast<size_t>(span) * K * sizeof(float))) : nullptr;
  for (int n = n0; n < n1; n += span) {
    const int e = imin(n1, n + span);
    if (decode)
      for (int j = n; j < e; j++) bf16_decode_row(w, j, tile + static_cast<size_t>(j - n) * K);
    auto row_of = [&](int j) { return decode ? tile + static_cast<size_t>(j - n) * K : reinterpret_cast<const float*>(w.row(j)); };
    for (int r0 = 0; r0 < rows; r0 += 4) {
      const int rb = imin(4, rows - r0);
      const float* x = xp + static_cast<size_t>(r0) * ldx;
      float* o = out + static_cast<size_t>(r0) * ldo;
      int j = n;
      if (rb <= 2)
        for (; j + 2 <= e; j += 2) {
          const float* wf[2] = {row_of(j), row_of(j + 1)};
          pair[rb - 1](w, wf, x, ldx, o, ldo, j);
        }
      for (; j < e; j++) {
        const float* wf[1] = {row_of(j)};
        single[rb - 1](w, wf, x, ldx, o, ldo, j);
      }
    }
  }
}

template <void (*Load16)(const uint8_t*, int, F8&, F8&)>
void neon_dense_linear(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  if (rows >= kNeonTiledRows) return dense_spans(w, xp, ldx, rows, out, ldo, n0, n1);
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const float* x = xp + static_cast<size_t>(r0) * ldx;
    float* o = out + static_cast<size_t>(r0) * ldo;
    int n = n0;
    switch (imin(4, rows - r0)) {
      case 1:
        for (; n + 2 <= n1; n += 2) dense_tile<2, 1, Load16>(w, x, ldx, o, ldo, n);
        for (; n < n1; n++) dense_tile<1, 1, Load16>(w, x, ldx, o, ldo, n);
        break;
      case 2:
        for (; n + 2 <= n1; n += 2) dense_tile<2, 2, Load16>(w, x, ldx, o, ldo, n);
        for (; n < n1; n++) dense_tile<1, 2, Load16>(w, x, ldx, o, ldo, n);
        break;
      case 3:
        for (; n < n1; n++) dense_tile<1, 3, Load16>(w, x, ldx, o, ldo, n);
        break;
      default:
        for (; n < n1; n++) dense_tile<1, 4, Load16>(w, x, ldx, o, ldo, n);
        break;
    }
  }
}

void neon_linear(const Matrix& w, const float* xp, int rows, float* out, size_t ldo, int n0, int n1) {
  const size_t ldx = prepared_width_impl(w);
  switch (layout_of(w)) {
    case Layout::Fp8Group32: return neon_fp8_linear(w, xp, ldx, rows, out, ldo, n0, n1);
    case Layout::Fp4Group64: return neon_fp4_linear(w, xp, ldx, rows, out, ldo, n0, n1);
    case Layout::Bf16Group16: return neon_dense_linear<bf16_load16>(w, xp, ldx, rows, out, ldo, n0, n1);
    case Layout::Natural: break;
  }
  if (w.format == Format::F32) return neon_dense_linear<f32_load16>(w, xp, ldx, rows, out, ldo, n0, n1);
  for (int r = 0; r < rows; r++)
    for (int n = n0; n < n1; n++) out[static_cast<size_t>(r) * ldo + n] = row_scalar(w, n, xp + static_cast<size_t>(r) * ldx);
}

// ---------------------------------------------------------------------------------------
// Vector primitives (the avx2 table's dot_impl / axpy_impl operations).

float neon_dot(const float* a, const float* b, int n) {
  F8 s0 = zero8(), s1 = zero8();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = fma8(load8(a + i), load8(b + i), s0);
    s1 = fma8(load8(a + i + 8), load8(b + i + 8), s1);
  }
  float s = hsum8(add8(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Fused below the last multiple of 8, one multiply and one add per element past it (as the
// AVX2 loop and its scalar tail).
void neon_axpy(float* y, float a, const float* x, int n) {
  const float32x4_t av = vdupq_n_f32(a);
  const int vec = n & ~7;
  int i = 0;
  for (; i < vec; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

void neon_attend_portable(const float* q, float* out, const float* const* rows, int count, int h0, int nh, int hd,
                          const float* sink, float scale, float* scores) {
  for (int h = h0; h < h0 + nh; h++) {
    const float* qh = q + static_cast<size_t>(h) * hd;
    float* oh = out + static_cast<size_t>(h) * hd;
    for (int i = 0; i < hd; i++) oh[i] = 0;
    if (count == 0) continue;
    for (int t = 0; t < count; t++) scores[t] = rows[t] ? neon_dot(qh, rows[t], hd) * scale : -INFINITY;
    float den;
    attend_softmax(scores, count, sink[h], den);
    for (int t = 0; t < count; t++)
      if (rows[t]) neon_axpy(oh, scores[t], rows[t], hd);
    const float inv = 1.0f / den;
    for (int i = 0; i < hd; i++) oh[i] *= inv;
  }
}

// NH heads at once, each gathered row loaded once for all of them: attend_heads of the avx2
// table (per head: neon_dot's two chains, then a fused multiply-add per element in row order).
template <int NH>
void attend_heads(const float* q, float* out, const float* const* rows, int count, int h0, int hd, const float* sink, float scale, float* scores) {
  for (int t = 0; t < count; t++) {
    const float* row = rows[t];
    if (!row) {
      for (int h = 0; h < NH; h++) scores[h * count + t] = -INFINITY;
      continue;
    }
    F8 s0[NH], s1[NH];
    for (int h = 0; h < NH; h++) s0[h] = s1[h] = zero8();
    for (int i = 0; i < hd; i += 16) {
      const F8 r0 = load8(row + i), r1 = load8(row + i + 8);
      for (int h = 0; h < NH; h++) {
        const float* qh = q + static_cast<size_t>(h0 + h) * hd + i;
        s0[h] = fma8(load8(qh), r0, s0[h]);
        s1[h] = fma8(load8(qh + 8), r1, s1[h]);
      }
    }
    for (int h = 0; h < NH; h++) scores[h * count + t] = hsum8(add8(s0[h], s1[h])) * scale;
  }
  float inv[NH];
  for (int h = 0; h < NH; h++) {
    float den;
    attend_softmax(scores + h * count, count, sink[h0 + h], den);
    inv[h] = 1.0f / den;
  }
  for (int i = 0; i < hd; i += 16) {
    F8 o0[NH], o1[NH];
    for (int h = 0; h < NH; h++) o0[h] = o1[h] = zero8();
    for (int t = 0; t < count; t++) {
      const float* row = rows[t];
      if (!row) continue;
      const F8 r0 = load8(row + i), r1 = load8(row + i + 8);
      for (int h = 0; h < NH; h++) {
        const float32x4_t p = vdupq_n_f32(scores[h * count + t]);
        const F8 pv = {p, p};
        o0[h] = fma8(pv, r0, o0[h]);
        o1[h] = fma8(pv, r1, o1[h]);
      }
    }
    for (int h = 0; h < NH; h++) {
      float* oh = out + static_cast<size_t>(h0 + h) * hd + i;
      const float32x4_t s = vdupq_n_f32(inv[h]);
      const F8 sv = {s, s};
      store8(oh, mul8(o0[h], sv));
      store8(oh + 8, mul8(o1[h], sv));
    }
  }
}

void neon_attend(const float* q, float* out, const float* const* rows, int count, int h0, int nh, int hd,
                 const float* sink, float scale, float* scores) {
  if (hd % 16 == 0 && count > 0) {
    int h = h0;
    for (; h + 4 <= h0 + nh; h += 4) attend_heads<4>(q, out, rows, count, h, hd, sink, scale, scores);
    for (; h < h0 + nh; h++) attend_heads<1>(q, out, rows, count, h, hd, sink, scale, scores);
    return;
  }
  neon_attend_portable(q, out, rows, count, h0, nh, hd, sink, scale, scores);
}

// ---------------------------------------------------------------------------------------
// Probes.

uint64_t neon_read_sum(const uint8_t* p, size_t bytes) {
  uint64x2_t a0 = vdupq_n_u64(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i < bytes; i += 128) {
    const uint64_t* w = reinterpret_cast<const uint64_t*>(p + i);
    a0 = vaddq_u64(a0, vld1q_u64(w));
    a1 = vaddq_u64(a1, vld1q_u64(w + 2));
    a2 = vaddq_u64(a2, vld1q_u64(w + 4));
    a3 = vaddq_u64(a3, vld1q_u64(w + 6));
    a4 = vaddq_u64(a4, vld1q_u64(w + 8));
    a5 = vaddq_u64(a5, vld1q_u64(w + 10));
    a6 = vaddq_u64(a6, vld1q_u64(w + 12));
    a7 = vaddq_u64(a7, vld1q_u64(w + 14));
  }
  const uint64x2_t s = vaddq_u64(vaddq_u64(vaddq_u64(a0, a1), vaddq_u64(a2, a3)), vaddq_u64(vaddq_u64(a4, a5), vaddq_u64(a6, a7)));
  return vgetq_lane_u64(s, 0) + vgetq_lane_u64(s, 1);
}

// Sixteen independent 4-lane FMA chains: enough to fill four FMA pipes with a latency of four
// cycles (Neoverse V1/V2, Apple cores). In assembly for the reason fma_peak_impl gives.
double neon_fma_peak(long rounds) {
  if (rounds <= 0) return 0;
  long n = rounds;
  __asm__ volatile(
      "movi v0.4s, #0\n\tmovi v1.4s, #0\n\tmovi v2.4s, #0\n\tmovi v3.4s, #0\n\t"
      "movi v4.4s, #0\n\tmovi v5.4s, #0\n\tmovi v6.4s, #0\n\tmovi v7.4s, #0\n\t"
      "movi v16.4s, #0\n\tmovi v17.4s, #0\n\tmovi v18.4s, #0\n\tmovi v19.4s, #0\n\t"
      "movi v20.4s, #0\n\tmovi v21.4s, #0\n\tmovi v22.4s, #0\n\tmovi v23.4s, #0\n\t"
      "movi v24.4s, #0\n\tmovi v25.4s, #0\n\t"
      "1:\n\t"
      "fmla v0.4s, v24.4s, v25.4s\n\tfmla v1.4s, v24.4s, v25.4s\n\t"
      "fmla v2.4s, v24.4s, v25.4s\n\tfmla v3.4s, v24.4s, v25.4s\n\t"
      "fmla v4.4s, v24.4s, v25.4s\n\tfmla v5.4s, v24.4s, v25.4s\n\t"
      "fmla v6.4s, v24.4s, v25.4s\n\tfmla v7.4s, v24.4s, v25.4s\n\t"
      "fmla v16.4s, v24.4s, v25.4s\n\tfmla v17.4s, v24.4s, v25.4s\n\t"
      "fmla v18.4s, v24.4s, v25.4s\n\tfmla v19.4s, v24.4s, v25.4s\n\t"
      "fmla v20.4s, v24.4s, v25.4s\n\tfmla v21.4s, v24.4s, v25.4s\n\t"
      "fmla v22.4s, v24.4s, v25.4s\n\tfmla v23.4s, v24.4s, v25.4s\n\t"
      "subs %0, %0, #1\n\tb.ne 1b"
      : "+r"(n)
      :
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",
        "cc");
  return 2.0 * 4 * 16 * static_cast<double>(rounds);
}

}  // namespace

const KernelTable* kernels_neon() {
  static const KernelTable table = {"neon",      prepared_width_impl, prepare_impl, neon_linear,   neon_dot,     neon_axpy,
                                    fp8_simulate_impl, fp4_simulate_impl,   neon_attend,  neon_read_sum, neon_fma_peak, dot_peak_impl,
                                    hc_collapse_row_impl, hc_expand_row_impl, false, bf16_dot_ready_impl};
  return &table;
}

}  // namespace dsv4
