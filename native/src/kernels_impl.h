#pragma once
// Kernel bodies, included once per instruction-set translation unit (kernels_scalar.cc,
// kernels_avx2.cc). The vector paths are selected by the compiler's target macros, so the
// same source yields a portable table and an AVX2+FMA+F16C one. Everything stays in an
// anonymous namespace (see quant_inline.h for why).
//
// Numerics (spec §3.7): activations are E4M3 quantise-dequantised in blocks of 128 before
// FP8/FP4 products; weights are decoded exactly; the products of a weight-scale block are
// summed in fp32, scaled by the block's power-of-two scale (for FP8 folded into the
// activations beforehand, which is exact) and the block sums accumulated in fp32. Every
// kernel shape does the same arithmetic per output, so a result never depends on how many
// rows were batched with it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "kernels.h"
#include "quant_inline.h"
#include "scratch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define DSV4_AVX2 1
#if defined(__AVX512F__)
#define DSV4_AVX512 1
#if defined(__AVX512BF16__)
#define DSV4_AVX512_BF16 1
#endif
#endif
#endif
// kernels_neon.cc defines DSV4_NEON before including this file (the scalar table built on
// aarch64 sees __ARM_NEON too, so the compiler's macro cannot tell the tables apart).
#if defined(DSV4_NEON)
#include <arm_neon.h>
#endif
// The vector tables (avx2, avx512, neon) lay activations out in their lane orders.
#if defined(DSV4_AVX2) || defined(DSV4_NEON)
#define DSV4_VECTOR_LAYOUTS 1
#endif

namespace dsv4 {
namespace {

// No std:: templates below: an inline template instantiated in this TU and in one built for
// another instruction set could be merged by the linker into the wrong version.
inline int imin(int a, int b) { return a < b ? a : b; }
inline int imax(int a, int b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------
// Activation layout: the vector kernels decode some formats in a lane order other than the
// natural one; activations are permuted once per call to match instead of shuffling weights.
enum class Layout { Natural, Fp8Group32, Fp4Group64, Bf16Group16 };

inline Layout layout_of(const Matrix& w) {
#ifdef DSV4_VECTOR_LAYOUTS
  if (w.format == Format::FP8 && w.K % 32 == 0) return Layout::Fp8Group32;
  if (w.format == Format::FP4 && w.K % 64 == 0 && !w.scale_special) return Layout::Fp4Group64;
  if (w.format == Format::BF16 && w.K % 16 == 0) return Layout::Bf16Group16;
#else
  (void)w;
#endif
  return Layout::Natural;
}

// Repacked FP4 matrices (Matrix::fp4_packed) are read by fp4_pairs (tiles_avx512.h), which
// takes every FP4 product of the AVX-512 tables whose layout is Fp4Group64 (the only ones
// repacked); the other tables' FP4 kernels read rows in place.
#ifdef DSV4_AVX512
constexpr bool kPacksFp4Impl = true;
#else
constexpr bool kPacksFp4Impl = false;
#endif

// Position of natural element e inside its permuted group.
// Fp8Group32 (see fp8_decode32): vector p of a 32-input group holds byte p of each 32-bit
// lane, i.e. lane i of vector p is input 4i + p.
inline int fp8_slot(int e) { return (e & 3) * 8 + (e >> 2); }

// Fp4Group64 (see fp4_decode): element 2*byte + nibble; vector (nibble*4 + q) holds, in
// lanes i < 4, the bytes 8u + 2i + p of the group's first 16 bytes and in lanes i >= 4 the
// same of its last 16, where q = 2u + p (u: which 8 bytes, p: byte parity).
inline int fp4_slot(int e) {
  int byte = e >> 1, nib = e & 1;
  int half = byte >= 16 ? 1 : 0;
  int within = byte & 15;
  int u = within >> 3, pos = within & 7;
  int q = 2 * u + (pos & 1);
  int lane = (pos >> 1) + 4 * half;
  return (nib * 4 + q) * 8 + lane;
}
// Bf16Group16: vector 0 = the even elements, vector 1 = the odd ones (see bf16_decode16).
inline int bf16_slot(int e) { return (e & 1) * 8 + (e >> 1); }

// Fp8Group32 rows: K floats, then each 128-input block's largest magnitude (padded to whole
// vectors); on the avx512bf16 table also each block's smallest nonzero magnitude, the row's
// bf16 pairs and a flag (fp8_prepare_row_bf16).
inline size_t fp8_blocks_padded(int K) { return static_cast<size_t>(((K + kFp8Block - 1) / kFp8Block + 7) / 8 * 8); }

#ifdef DSV4_AVX512_BF16
// Where in a prepared FP8 row the block minima, the bf16 pairs (K / 2 floats' room) and the
// flag (then the row's exponent c0, as a float) lie.
inline size_t fp8_block_min_at(int K) { return static_cast<size_t>(K) + fp8_blocks_padded(K); }
inline size_t fp8_pairs_at(int K) { return static_cast<size_t>(K) + 2 * fp8_blocks_padded(K); }
inline size_t fp8_flag_at(int K) { return fp8_pairs_at(K) + static_cast<size_t>(K) / 2; }

// The bf16 pairs fp8_gemv8_rows reads with bf16 dot products, made once per row instead of
// once per 128-row weight group: the permuted row times 2^(c0 - 120), c0 the row's own power
// of two (the one fp8_prescale would pick with every weight scale 1), per 32 inputs 8 words
// (4i, 4i + 1) then 8 words (4i + 2, 4i + 3). A group's weight scales and its own power of
// two are applied afterwards to each 128-input block's chain sum (fp8_group_factors): every
// such factor is a power of two, so where no value involved is a denormal or overflows, each
// chain is the prescaled chain divided by it, exactly. The flag allows that path only when
// every value is 0 or a bf16 value with x 2^c0 in [2^10, 2^110), as the prescaled rows' pairs
// once had to be; the block minima let each group check its own range.
inline void fp8_prepare_row_bf16(float* d, int K) {
  const size_t nb = fp8_blocks_padded(K);
  const float* block_max = d + K;
  float* block_min = d + fp8_block_min_at(K);
  float* flag = d + fp8_flag_at(K);
  flag[0] = 0;
  flag[1] = 0;
  float m = 0;
  for (size_t b = 0; b < nb; b++) {
    block_min[b] = 0;
    m = block_max[b] > m ? block_max[b] : m;
  }
  if (!(m > 0 && m <= 3.0e38f)) return;
  const int c0 = imin(127, imax(-126, 100 - ilogbf(m)));
  const __m512 up = _mm512_set1_ps(ldexpf(1.0f, c0)), down = _mm512_set1_ps(0x1p-120f);
  const __m512 low = _mm512_set1_ps(0x1p10f), high = _mm512_set1_ps(0x1p110f);
  const __m512i low16 = _mm512_set1_epi32(0xFFFF);
  const __m256i top = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  uint32_t* pairs = reinterpret_cast<uint32_t*>(d + fp8_pairs_at(K));
  // Rows that are not E4M3-quantised (the float products') fail on their first values.
  for (int k = 0; k < K; k += 16) {
    // Lanes 0-7: inputs 4i + p of a 32-input group, lanes 8-15: 4i + p + 1 (p = 0 or 2).
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(d + k), up);
    const __m512 mag = _mm512_abs_ps(v);
    const __mmask16 bad = (_mm512_cmp_ps_mask(mag, low, _CMP_LT_OQ) & _mm512_cmp_ps_mask(mag, _mm512_setzero_ps(), _CMP_NEQ_UQ)) |
                          _mm512_cmp_ps_mask(mag, high, _CMP_NLT_UQ) | _mm512_test_epi32_mask(_mm512_castps_si512(v), low16);
    if (bad) return;
    const __m512i bits = _mm512_castps_si512(_mm512_mul_ps(v, down));
    const __m256i pair = _mm256_or_si256(_mm256_and_si256(_mm512_maskz_extracti64x4_epi64(0xFF, bits, 0), top), _mm256_srli_epi32(_mm512_maskz_extracti64x4_epi64(0xFF, bits, 1), 16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs + k / 2), pair);
  }
  // (K is a multiple of 32; NaN and infinite values failed above.)
  const __m512 none = _mm512_set1_ps(INFINITY);
  for (int k = 0; k < K; k += kFp8Block) {
    __m512 lo = none;
    for (int i = k; i < imin(K, k + kFp8Block); i += 16) {
      const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(d + i));
      lo = _mm512_mask_min_ps(lo, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_OQ), v, lo);
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, lo);
    float mn = INFINITY;
    for (float v : lanes) mn = v < mn ? v : mn;
    block_min[k / kFp8Block] = mn == INFINITY ? 0 : mn;
  }
  flag[0] = 1;
  flag[1] = static_cast<float>(c0);
}
#endif

#ifdef DSV4_AVX512_BF16
// The bf16 copy of an FP4 activation row that fp4_rows_bf16 reads, made from the row in
// natural order (before the Fp4Group64 permutation): per 64-input group 32 pairs, four
// vectors n = 0..3 of 8 lanes, lane L = 4 * block + i holding inputs
// 32 * block + 4i + n (low half) and 32 * block + 16 + 4i + n (high half). Vectors 0 and 1
// are then the inputs of chain a of the AVX2 arithmetic's lane L (bytes 2i and 8 + 2i of the
// block, both nibbles), vectors 2 and 3 those of chain b (bytes 2i + 1 and 9 + 2i), in the
// order fp4_decode_pair_bf16 decodes the weights. E4M3 activations times a power of two are
// bf16 values, so dropping the low 16 bits is exact.
// The flag after it allows that path only for such rows in a range where every product of
// a chain is exact (see fp4_rows_bf16): quantised, finite and below 2^100.
// Where in a prepared FP4 row (K floats, then K / 2 floats' room of bf16 pairs) the flag is.
inline size_t fp4_bf16_flag(int K) { return static_cast<size_t>(K) + static_cast<size_t>(K) / 2; }

inline void fp4_prepare_bf16(float* d, int K, bool act_quant) {
  uint32_t* pairs = reinterpret_cast<uint32_t*>(d + K);
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m512 limit = _mm512_set1_ps(0x1p100f);
  // Vectors 0 and 1 of a group as indices into (block 0's inputs 0-15, block 1's 0-15); the
  // high halves take the same ones of inputs 16-31.
  const __m512i first = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(2));
  __mmask16 out_of_range = 0;  // not below the limit, NaN included
  for (int k = 0; k < K; k += 64, pairs += 32) {
    __m512i z[4];
    for (int j = 0; j < 4; j++) {
      const __m512 v = _mm512_loadu_ps(d + k + 16 * j);
      out_of_range |= _mm512_cmp_ps_mask(_mm512_abs_ps(v), limit, _CMP_NLT_UQ);
      z[j] = _mm512_castps_si512(v);
    }
    for (int h = 0; h < 2; h++) {
      const __m512i idx = h == 0 ? first : second;
      const __m512i lo = _mm512_permutex2var_epi32(z[0], idx, z[2]), hi = _mm512_permutex2var_epi32(z[1], idx, z[3]);
      _mm512_storeu_si512(pairs + 16 * h, _mm512_or_si512(_mm512_maskz_srli_epi32(0xFFFF, lo, 16), _mm512_and_si512(hi, high)));
    }
  }
  d[fp4_bf16_flag(K)] = act_quant && out_of_range == 0 ? 1.0f : 0.0f;
}

// The bf16 pairs of a prepared BF16 row (Bf16Group16 floats d[0, K)) that bf16_dot_micro
// reads, and the flag that allows it. Per 32 inputs (groups G0, G1 of 16) lane L of the
// pairs holds G0's prepared value L in its high half and G1's in its low half: vdpbf16ps
// adds the high product first, so one instruction advances lane L's chain of the Bf16Group16
// arithmetic (even inputs in lanes 0-7, odd in 8-15, one product per group) by G0 then G1.
// The flag: K a multiple of 32 and every value a bf16 value (the low 16 bits zero; the
// reference's head input, a bf16 norm output, is such a row), finite, and 0 or of magnitude in [2^-56, 2^50)
// (see bf16_dot_micro for why that range keeps the arithmetic exact).
inline size_t bf16_dot_flag(int K) { return static_cast<size_t>(K) + static_cast<size_t>(K) / 2; }
// The range as biased exponents: nonzero magnitudes in [2^(kBf16DotExpLo - 127), 2^(kBf16DotExpHi - 127)).
constexpr int kBf16DotExpLo = 127 - 56, kBf16DotExpHi = 127 + 50;

inline bool bf16_dot_values(__m512i bits) {
  const __m512i mag = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF));
  const __mmask16 nonzero = _mm512_test_epi32_mask(mag, mag);
  const __mmask16 low_bits = _mm512_test_epi32_mask(bits, _mm512_set1_epi32(0xFFFF));
  const __mmask16 small = _mm512_cmplt_epu32_mask(mag, _mm512_set1_epi32(kBf16DotExpLo << 23));
  const __mmask16 large = _mm512_cmpge_epu32_mask(mag, _mm512_set1_epi32(kBf16DotExpHi << 23));
  return (low_bits | (nonzero & (small | large))) == 0;
}

inline void bf16_prepare_pairs(float* d, int K) {
  bool ok = K % 32 == 0;
  uint32_t* pairs = reinterpret_cast<uint32_t*>(d + K);
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int k = 0; ok && k < K; k += 32, pairs += 16) {
    const __m512i g0 = _mm512_castps_si512(_mm512_loadu_ps(d + k)), g1 = _mm512_castps_si512(_mm512_loadu_ps(d + k + 16));
    ok = bf16_dot_values(g0) && bf16_dot_values(g1);
    _mm512_storeu_si512(pairs, _mm512_or_si512(_mm512_and_si512(g0, high), _mm512_maskz_srli_epi32(0xFFFF, g1, 16)));
  }
  d[bf16_dot_flag(K)] = ok ? 1.0f : 0.0f;
}

// Whether every weight of a BF16 matrix is 0 or of magnitude in [2^-56, 2^50) (scanned once).
inline bool bf16_weights_in_dot_range(const Matrix& w) {
  Bf16RangeScan& scan = *w.bf16_range;
  std::call_once(scan.once, [&] {
    const uint16_t* v = reinterpret_cast<const uint16_t*>(w.data);
    const size_t n = static_cast<size_t>(w.N) * w.K;
    const __m512i magmask = _mm512_set1_epi16(0x7FFF), lo = _mm512_set1_epi16(kBf16DotExpLo << 7), hi = _mm512_set1_epi16(kBf16DotExpHi << 7);
    __mmask32 bad = 0;
    for (size_t i = 0; i < n; i += 32) {
      const __mmask32 take = n - i >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (n - i)) - 1);
      const __m512i mag = _mm512_and_si512(_mm512_maskz_loadu_epi16(take, v + i), magmask);
      bad |= _mm512_test_epi16_mask(mag, mag) & (_mm512_cmplt_epu16_mask(mag, lo) | _mm512_cmpge_epu16_mask(mag, hi));
    }
    const bool ok = bad == 0;
    scan.in_dot_range = ok;
  });
  return scan.in_dot_range;
}
#endif

// ---------------------------------------------------------------------------------------
// Block quantise-dequantise (activation quantisation and the in-place simulations).

#ifdef DSV4_AVX2
inline __m256 abs8(__m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF))); }

inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Same rule as round_grid<Emin, Mbits> on 8 lanes.
template <int Emin, int Mbits>
inline __m256 round_grid8(__m256 v) {
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  __m256 a = _mm256_andnot_ps(sign, v);
  __m256i eb = _mm256_srli_epi32(_mm256_castps_si256(a), 23);
  eb = _mm256_max_epi32(eb, _mm256_set1_epi32(127 + Emin));
  __m256 c = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(eb, _mm256_set1_epi32(23 - Mbits)), 23));
  __m256 r = _mm256_sub_ps(_mm256_add_ps(a, c), c);
  return _mm256_or_ps(r, _mm256_and_ps(v, sign));
}

template <int Emin, int Mbits>
inline void qdq_block8(const float* x, float* y, int n, float lim, float (*scale)(float)) {
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + i)));
  float s = scale(hmax8(m));
  __m256 inv = _mm256_set1_ps(1.0f / s), sv = _mm256_set1_ps(s);
  __m256 hi = _mm256_set1_ps(lim), lo = _mm256_set1_ps(-lim);
  for (int i = 0; i < n; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(round_grid8<Emin, Mbits>(v), sv));
  }
}
#endif

#ifdef DSV4_NEON
// round_grid8 on 4 lanes (the same bit operations).
template <int Emin, int Mbits>
inline float32x4_t round_grid4(float32x4_t v) {
  const uint32x4_t sign = vdupq_n_u32(0x80000000u);
  const uint32x4_t bits = vreinterpretq_u32_f32(v);
  const float32x4_t a = vreinterpretq_f32_u32(vbicq_u32(bits, sign));
  uint32x4_t eb = vshrq_n_u32(vreinterpretq_u32_f32(a), 23);
  eb = vmaxq_u32(eb, vdupq_n_u32(127 + Emin));
  const float32x4_t c = vreinterpretq_f32_u32(vshlq_n_u32(vaddq_u32(eb, vdupq_n_u32(23 - Mbits)), 23));
  const float32x4_t r = vsubq_f32(vaddq_f32(a, c), c);
  return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(r), vandq_u32(bits, sign)));
}

// qdq_block8's operations, 4 lanes at a time (elementwise, and a maximum does not depend on
// the order it is taken in, so any width gives the same values for finite inputs).
template <int Emin, int Mbits>
inline void qdq_block4(const float* x, float* y, int n, float lim, float (*scale)(float)) {
  float32x4_t m = vdupq_n_f32(0.0f);
  for (int i = 0; i < n; i += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + i)));
  const float s = scale(vmaxvq_f32(m));
  const float32x4_t inv = vdupq_n_f32(1.0f / s), sv = vdupq_n_f32(s);
  const float32x4_t hi = vdupq_n_f32(lim), lo = vdupq_n_f32(-lim);
  for (int i = 0; i < n; i += 4) {
    float32x4_t v = vmulq_f32(vld1q_f32(x + i), inv);
    v = vminq_f32(vmaxq_f32(v, lo), hi);
    vst1q_f32(y + i, vmulq_f32(round_grid4<Emin, Mbits>(v), sv));
  }
}
#endif

inline void qdq_e4m3(const float* x, float* y, int n) {
#if defined(DSV4_AVX2)
  if (n % 8 == 0) return qdq_block8<-6, 3>(x, y, n, kE4M3Max, fp8_scale);
#elif defined(DSV4_NEON)
  if (n % 4 == 0) return qdq_block4<-6, 3>(x, y, n, kE4M3Max, fp8_scale);
#endif
  qdq_e4m3_block_scalar(x, y, n);
}

inline void qdq_e2m1(const float* x, float* y, int n) {
#if defined(DSV4_AVX2)
  if (n % 8 == 0) return qdq_block8<0, 1>(x, y, n, kE2M1Max, fp4_scale);
#elif defined(DSV4_NEON)
  if (n % 4 == 0) return qdq_block4<0, 1>(x, y, n, kE2M1Max, fp4_scale);
#endif
  qdq_e2m1_block_scalar(x, y, n);
}

void fp8_simulate_impl(float* x, int n, int block) {
  for (int i = 0; i < n; i += block) qdq_e4m3(x + i, x + i, imin(block, n - i));
}

void fp4_simulate_impl(float* x, int n, int block) {
  for (int i = 0; i < n; i += block) qdq_e2m1(x + i, x + i, imin(block, n - i));
}

// Whether products of the BF16 matrix w with rows of bf16 values take the dot-product path
// (greedy_head.cc's first pass pays only then).
bool bf16_dot_ready_impl(const Matrix& w) {
#ifdef DSV4_AVX512_BF16
  return w.format == Format::BF16 && w.K % 32 == 0 && bf16_weights_in_dot_range(w);
#else
  (void)w;
  return false;
#endif
}

// ---------------------------------------------------------------------------------------
// Activation preparation.

// d[k + Slot(e)] = d[k + e] for every G-float group of [0, K) (K a multiple of G; G = 16, 32
// or 64): each group permuted in registers. The per-element loop through a temporary it
// replaces cost ~2 ns per activation value (FP8 4096 inputs x 16 rows: 142 us a call on one
// Zen 5 core, as much as a 128-row group's products; now 6.5 us), paid by every product of a
// permuted layout at every row count.
template <int G, int (*Slot)(int)>
inline void permute_groups(float* d, int K) {
#ifdef DSV4_AVX512
  static_assert(G == 16 || G == 32 || G == 64, "groups of 1, 2 or 4 vectors");
  constexpr int V = G / 16;
  // Output lane j of vector v takes input inv[16v + j]: its low five bits index a pair of
  // input vectors, bit 5 says which pair (G = 64).
  alignas(64) static int32_t idx[V][16];
  static __mmask16 upper[V];
  static const bool ready = [] {
    int inv[G];
    for (int e = 0; e < G; e++) inv[Slot(e)] = e;
    for (int v = 0; v < V; v++) {
      upper[v] = 0;
      for (int j = 0; j < 16; j++) {
        idx[v][j] = inv[16 * v + j] & 31;
        if (inv[16 * v + j] >= 32) upper[v] = static_cast<__mmask16>(upper[v] | (1u << j));
      }
    }
    return true;
  }();
  (void)ready;
  __m512i ix[V];
  for (int v = 0; v < V; v++) ix[v] = _mm512_load_si512(idx[v]);
  for (int k = 0; k < K; k += G) {
    __m512 in[V], out[V];
    for (int v = 0; v < V; v++) in[v] = _mm512_loadu_ps(d + k + 16 * v);
    for (int v = 0; v < V; v++) {
      if constexpr (G == 16) {
        out[v] = _mm512_maskz_permutexvar_ps(0xFFFF, ix[v], in[0]);
      } else if constexpr (G == 32) {
        out[v] = _mm512_permutex2var_ps(in[0], ix[v], in[1]);
      } else {
        out[v] = _mm512_mask_blend_ps(upper[v], _mm512_permutex2var_ps(in[0], ix[v], in[1]), _mm512_permutex2var_ps(in[2], ix[v], in[3]));
      }
    }
    for (int v = 0; v < V; v++) _mm512_storeu_ps(d + k + 16 * v, out[v]);
  }
#else
  float g[G];
  for (int k = 0; k < K; k += G) {
    for (int e = 0; e < G; e++) g[e] = d[k + e];
    for (int e = 0; e < G; e++) d[k + Slot(e)] = g[e];
  }
#endif
}

// The largest magnitude among x[0, n), NaNs ignored, 0 when there is none.
inline float abs_max(const float* x, int n) {
  int i = 0;
  float m = 0;
#ifdef DSV4_AVX512
  // max_ps returns its second operand when either is NaN: the running maximum, never NaN.
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16) acc = _mm512_maskz_max_ps(0xFFFF, _mm512_abs_ps(_mm512_loadu_ps(x + i)), acc);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  for (float v : lanes) m = v > m ? v : m;
#endif
  for (; i < n; i++) {
    const float v = x[i] < 0 ? -x[i] : x[i];
    if (v > m) m = v;
  }
  return m;
}

// Fp8Group32 rows carry, after their K activations, the largest magnitude of each 128-input
// block (fp8_prescale picks its power of two from them), padded to whole vectors.
size_t prepared_width_impl(const Matrix& w) {
  size_t width = static_cast<size_t>(w.K);
  if (layout_of(w) == Layout::Fp8Group32) width += fp8_blocks_padded(w.K);
#ifdef DSV4_AVX512_BF16
  // FP8: then the block minima, bf16 pairs and flag (fp8_prepare_row_bf16). BF16: after the K
  // floats their bf16 pairs for bf16_dot_micro (K / 2 floats' room), then a vector whose first
  // float says whether the row may take that path.
  if (layout_of(w) == Layout::Fp8Group32) width = fp8_flag_at(w.K) + 16;
  if (layout_of(w) == Layout::Bf16Group16) width = bf16_dot_flag(w.K) + 16;
#endif
#ifdef DSV4_VECTOR_LAYOUTS
  // Whole 64-byte lines per row (the strip products load activations aligned), and rows
  // 1 KiB apart modulo 4 KiB (an L1 way): the strip products read a K chunk of every row of
  // a group from L1, and rows a multiple of 4 KiB apart (K = 1024, 4096, ...) would all map
  // to the same L1 sets. The padding is never read.
  if (w.format != Format::FP4) {
    width = (width + 15) / 16 * 16;
    if (width >= 1024) width += (1280 - width % 1024) % 1024;
  }
#endif
#ifdef DSV4_AVX512_BF16
  // After the K floats: their bf16 pairs for fp4_rows_bf16 (K / 2 floats' room), then a
  // vector whose first float says whether the row may take that path.
  if (layout_of(w) == Layout::Fp4Group64) width = fp4_bf16_flag(w.K) + 16;
#endif
  return width;
}

void prepare_impl(const Matrix& w, const float* x, int rows, bool act_quant, float* dst) {
  const int K = w.K;
  const Layout layout = layout_of(w);
  const size_t width = prepared_width_impl(w);
  for (int r = 0; r < rows; r++) {
    const float* xr = x + static_cast<size_t>(r) * K;
    float* d = dst + static_cast<size_t>(r) * width;
    if (act_quant) {
      for (int k = 0; k < K; k += kActBlock) qdq_e4m3(xr + k, d + k, imin(kActBlock, K - k));
    } else {
      for (int k = 0; k < K; k++) d[k] = xr[k];
    }
    if (layout == Layout::Fp8Group32) {
      permute_groups<32, fp8_slot>(d, K);
      float* block_max = d + K;
      for (size_t i = 0; i < fp8_blocks_padded(K); i++) block_max[i] = 0;
      // (The permutation keeps each 32-input group inside its 128-input block.)
      for (int k = 0; k < K; k += kFp8Block) block_max[k / kFp8Block] = abs_max(d + k, imin(kFp8Block, K - k));
#ifdef DSV4_AVX512_BF16
      fp8_prepare_row_bf16(d, K);
#endif
    } else if (layout == Layout::Fp4Group64) {
#ifdef DSV4_AVX512_BF16
      fp4_prepare_bf16(d, K, act_quant);  // from the natural order
#endif
      permute_groups<64, fp4_slot>(d, K);
    } else if (layout == Layout::Bf16Group16) {
      permute_groups<16, bf16_slot>(d, K);
#ifdef DSV4_AVX512_BF16
      bf16_prepare_pairs(d, K);
#endif
    }
  }
}

// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------
// Portable kernels: natural layout, one row pair at a time. Also used for vector tails.

struct Fp8Table {
  float v[256];
  Fp8Table() {
    for (int b = 0; b < 256; b++) v[b] = e4m3_value(static_cast<uint8_t>(b));
  }
};
const float* fp8_table() {
  static const Fp8Table t;
  return t.v;
}

// Part of one row's product over inputs [k0, K) in natural order, per scale block.
float fp8_row_scalar(const Matrix& w, int n, const float* x, int k0) {
  const float* t = fp8_table();
  const uint8_t* wr = w.row(n);
  const float* s = w.scale_row(n);
  float acc = 0;
  for (int k = k0; k < w.K; k += kFp8Block) {
    int k1 = imin(k + kFp8Block, w.K);
    float blk = 0;
    for (int i = k; i < k1; i++) blk += x[i] * t[wr[i]];
    acc += blk * s[k / kFp8Block];
  }
  return acc;
}

float fp4_row_scalar(const Matrix& w, int n, const float* x) {
  const uint8_t* wr = w.row(n);
  const uint8_t* s = w.scale_bytes(n);
  float acc = 0;
  for (int k = 0; k < w.K; k += kFp4Block) {
    int k1 = imin(k + kFp4Block, w.K);
    float blk = 0;
    for (int i = k; i < k1; i += 2) {
      uint8_t byte = wr[i >> 1];
      blk += x[i] * e2m1_value(byte & 15u) + x[i + 1] * e2m1_value(byte >> 4);
    }
    acc += blk * e8m0_value(s[k / kFp4Block]);
  }
  return acc;
}

float bf16_row_scalar(const Matrix& w, int n, const float* x, int k0) {
  const uint8_t* wr = w.row(n);
  float acc = 0;
  for (int k = k0; k < w.K; k++) acc += x[k] * bf16_value(static_cast<uint16_t>(wr[2 * k] | (wr[2 * k + 1] << 8)));
  return acc;
}

float f32_row_scalar(const Matrix& w, int n, const float* x, int k0) {
  const float* wr = reinterpret_cast<const float*>(w.row(n));
  float acc = 0;
  for (int k = k0; k < w.K; k++) acc += x[k] * wr[k];
  return acc;
}

float row_scalar(const Matrix& w, int n, const float* x) {
  switch (w.format) {
    case Format::FP8: return fp8_row_scalar(w, n, x, 0);
    case Format::FP4: return fp4_row_scalar(w, n, x);
    case Format::BF16: return bf16_row_scalar(w, n, x, 0);
    case Format::F32: return f32_row_scalar(w, n, x, 0);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// AVX2 kernels. NR weight rows x RB activation rows per pass, two accumulator chains per
// pair so that FMA latency never limits a single-row GEMV.
#ifdef DSV4_AVX2

// How far ahead of the rows being read the FP4 kernel prefetches: a pass over two rows
// reads four streams (data and scales), which the hardware prefetchers follow too late on
// their own (measured: cold FP4 GEMV +30% on a 2-core Zen 3; FP8 showed no clear gain).
constexpr size_t kPrefetchBytes = 4096;

// 32 E4M3 bytes -> 4 float vectors holding value * 2^-120, vector p from byte p of each 32-bit
// lane (Fp8Group32 order). The seven magnitude bits land on the exponent's low four bits
// and the top three mantissa bits, which is exact for normals and subnormals alike (the
// latter become fp32 denormals), and the arithmetic shift copies the sign into bit 31.
// Two shifts and a mask per vector replace the half-precision conversion, which was the
// bottleneck (measured: single-thread FP8 GEMV from L2 8.5-12 -> 19 G weights/s on Zen 3).
// The denormals cost nothing as FMA inputs; they must never reach a plain multiply, which
// on the same CPU slowed down by more than half, so every chain starts from zero.
inline void fp8_decode32(const uint8_t* p, __m256 w[4]) {
  const __m256i mask = _mm256_set1_epi32(static_cast<int>(0x87F00000u));
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  w[0] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srai_epi32(_mm256_slli_epi32(raw, 24), 4), mask));
  w[1] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srai_epi32(_mm256_slli_epi32(raw, 16), 4), mask));
  w[2] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srai_epi32(_mm256_slli_epi32(raw, 8), 4), mask));
  w[3] = _mm256_castsi256_ps(_mm256_and_si256(_mm256_srai_epi32(raw, 4), mask));
}

// FP8 products. The activations arrive multiplied by the weight scales of the 128-row group
// and by a per-row power of two (fp8_prescale; both exact), so a block sum needs no scale of
// its own and `post` restores the magnitude at the end. Per (weight row, activation row) the
// arithmetic is the reference's: each 128-input scale block is one chain in K order (in the
// permuted lane order), and the block sums are added to the total in block order. Every
// kernel shape below does exactly that, so a row's result never depends on its batch. The
// single-row GEMV runs two blocks at once (two independent chains per row, added in order at
// the end), which hides the FMA latency; the tiled prefill kernel runs one block at a time
// with one chain per output live, which keeps four weight rows by three activation rows in
// registers. (The single-row GEMV has its own form, fp8_gemv4, with the same sums.)
template <int NR, int RB, bool Tiled>
void fp8_dot(const Matrix& w, const float* tile, const float* x, size_t ldx, float* out, size_t ldo, int n, const double* post) {
  const int K = w.K;
  __m256 acc[NR][RB];
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) acc[j][r] = _mm256_setzero_ps();
  if (Tiled) {
    // Eight inputs at a time from the decoded tile: the activation rows stay in registers
    // and each weight vector is loaded once for all of them.
    for (int kb = 0; kb < K; kb += kFp8Block) {
      const int ke = imin(K, kb + kFp8Block);
      __m256 c[NR][RB];
      for (int j = 0; j < NR; j++)
        for (int r = 0; r < RB; r++) c[j][r] = _mm256_setzero_ps();
      for (int k = kb; k < ke; k += 8) {
        __m256 xv[RB];
        for (int r = 0; r < RB; r++) xv[r] = _mm256_loadu_ps(x + r * ldx + k);
        for (int j = 0; j < NR; j++) {
          const __m256 wv = _mm256_loadu_ps(tile + static_cast<size_t>(j) * K + k);
          for (int r = 0; r < RB; r++) c[j][r] = _mm256_fmadd_ps(wv, xv[r], c[j][r]);
        }
      }
      for (int j = 0; j < NR; j++)
        for (int r = 0; r < RB; r++) acc[j][r] = _mm256_add_ps(acc[j][r], c[j][r]);
    }
  } else {
    for (int kb = 0; kb < K; kb += 2 * kFp8Block) {
      const int kb2 = kb + kFp8Block;  // the second block of the pair, if any
      const int ke = imin(K, kb2), ke2 = imin(K, kb2 + kFp8Block);
      __m256 a[NR][RB], b[NR][RB];
      for (int j = 0; j < NR; j++)
        for (int r = 0; r < RB; r++) a[j][r] = b[j][r] = _mm256_setzero_ps();
      for (int k = 0; kb + k < ke; k += 32) {
        const bool second = kb2 + k < ke2;
        for (int j = 0; j < NR; j++) {
          const uint8_t* wr = w.row(n + j);
          // The same bytes of the next call's rows (fp8_gemv4 does the same): without it two
          // activation rows of a 32768x1024 matrix ran at 10 GB/s, slower than four rows.
          _mm_prefetch(reinterpret_cast<const char*>(wr + kb + k + NR * static_cast<size_t>(K)), _MM_HINT_T0);
          if (second) _mm_prefetch(reinterpret_cast<const char*>(wr + kb2 + k + NR * static_cast<size_t>(K)), _MM_HINT_T0);
          // One group decoded and used before the next: four decoded vectors live, not eight.
          __m256 wv[4];
          fp8_decode32(wr + kb + k, wv);
          for (int r = 0; r < RB; r++)
            for (int p = 0; p < 4; p++) a[j][r] = _mm256_fmadd_ps(wv[p], _mm256_loadu_ps(x + r * ldx + kb + k + 8 * p), a[j][r]);
          if (second) {
            fp8_decode32(wr + kb2 + k, wv);
            for (int r = 0; r < RB; r++)
              for (int p = 0; p < 4; p++) b[j][r] = _mm256_fmadd_ps(wv[p], _mm256_loadu_ps(x + r * ldx + kb2 + k + 8 * p), b[j][r]);
          }
        }
      }
      for (int j = 0; j < NR; j++)
        for (int r = 0; r < RB; r++) {
          acc[j][r] = _mm256_add_ps(acc[j][r], a[j][r]);
          if (kb2 < K) acc[j][r] = _mm256_add_ps(acc[j][r], b[j][r]);
        }
    }
  }
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) out[r * ldo + n + j] = static_cast<float>(static_cast<double>(hsum8(acc[j][r])) * post[r]);
}

// Four rows of a 32-input group into their chains.
inline void fp8_gemv_step(const uint8_t* w, size_t K, const float* x, __m256& c0, __m256& c1, __m256& c2, __m256& c3) {
  const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8), x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
  __m256 wv[4];
#define DSV4_FP8_ROW(c, j)                                                         \
  fp8_decode32(w + (j) * K, wv);                                                   \
  c = _mm256_fmadd_ps(wv[0], x0, c);                                               \
  c = _mm256_fmadd_ps(wv[1], x1, c);                                               \
  c = _mm256_fmadd_ps(wv[2], x2, c);                                               \
  c = _mm256_fmadd_ps(wv[3], x3, c);
  DSV4_FP8_ROW(c0, 0)
  DSV4_FP8_ROW(c1, 1)
  DSV4_FP8_ROW(c2, 2)
  DSV4_FP8_ROW(c3, 3)
#undef DSV4_FP8_ROW
}

// The single-row FP8 GEMV, four weight rows at a time: fp8_dot's arithmetic (two blocks at
// once, added to the total in order) with the chains named rather than in arrays and the
// activations of a group loaded once for the four rows, which the compiler keeps in
// registers (the array form spilled: 9 -> 14-17 G weights/s single-thread). It asks for the
// next four rows while it reads these (from DRAM, 2 threads: +15-20%).
void fp8_gemv4(const uint8_t* w, int K, const float* x, float* out, double post) {
  const size_t k = static_cast<size_t>(K);
  __m256 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
  for (int kb = 0; kb < K; kb += 2 * kFp8Block) {
    const int ke = imin(K, kb + kFp8Block), ke2 = imin(K, kb + 2 * kFp8Block);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int g = kb; g < ke; g += 32) {
      for (int j = 0; j < 4; j++) _mm_prefetch(reinterpret_cast<const char*>(w + j * k + g + 4 * k), _MM_HINT_T0);
      fp8_gemv_step(w + g, k, x + g, a0, a1, a2, a3);
      if (g + kFp8Block < ke2) {
        for (int j = 0; j < 4; j++) _mm_prefetch(reinterpret_cast<const char*>(w + j * k + g + kFp8Block + 4 * k), _MM_HINT_T0);
        fp8_gemv_step(w + g + kFp8Block, k, x + g + kFp8Block, b0, b1, b2, b3);
      }
    }
    t0 = _mm256_add_ps(t0, a0);
    t1 = _mm256_add_ps(t1, a1);
    t2 = _mm256_add_ps(t2, a2);
    t3 = _mm256_add_ps(t3, a3);
    if (ke < K) {
      t0 = _mm256_add_ps(t0, b0);
      t1 = _mm256_add_ps(t1, b1);
      t2 = _mm256_add_ps(t2, b2);
      t3 = _mm256_add_ps(t3, b3);
    }
  }
  out[0] = static_cast<float>(static_cast<double>(hsum8(t0)) * post);
  out[1] = static_cast<float>(static_cast<double>(hsum8(t1)) * post);
  out[2] = static_cast<float>(static_cast<double>(hsum8(t2)) * post);
  out[3] = static_cast<float>(static_cast<double>(hsum8(t3)) * post);
}

// E2M1 code -> bf16 bits, split in low and high bytes for two byte shuffles.
inline __m256i fp4_lut_lo() {
  return _mm256_setr_epi8(0x00, 0x00, (char)0x80, (char)0xC0, 0x00, 0x40, (char)0x80, (char)0xC0,
                          0x00, 0x00, (char)0x80, (char)0xC0, 0x00, 0x40, (char)0x80, (char)0xC0,
                          0x00, 0x00, (char)0x80, (char)0xC0, 0x00, 0x40, (char)0x80, (char)0xC0,
                          0x00, 0x00, (char)0x80, (char)0xC0, 0x00, 0x40, (char)0x80, (char)0xC0);
}
inline __m256i fp4_lut_hi() {
  return _mm256_setr_epi8(0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40,
                          (char)0x80, (char)0xBF, (char)0xBF, (char)0xBF, (char)0xC0, (char)0xC0, (char)0xC0, (char)0xC0,
                          0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40,
                          (char)0x80, (char)0xBF, (char)0xBF, (char)0xBF, (char)0xC0, (char)0xC0, (char)0xC0, (char)0xC0);
}

// 32 codes (one nibble of 32 bytes) -> 4 float vectors, in the Fp4Group64 lane order.
// Two byte shuffles give each code's bf16 bits; after interleaving them into 16-bit values,
// a float is the odd value masked in place or the even one shifted up, which keeps half
// of the widening off the shuffle units.
inline void fp4_decode(__m256i codes, __m256i lut_lo, __m256i lut_hi, __m256 f[4]) {
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256i lo = _mm256_shuffle_epi8(lut_lo, codes);
  __m256i hi = _mm256_shuffle_epi8(lut_hi, codes);
  __m256i u0 = _mm256_unpacklo_epi8(lo, hi);
  __m256i u1 = _mm256_unpackhi_epi8(lo, hi);
  f[0] = _mm256_castsi256_ps(_mm256_slli_epi32(u0, 16));
  f[1] = _mm256_castsi256_ps(_mm256_and_si256(u0, high));
  f[2] = _mm256_castsi256_ps(_mm256_slli_epi32(u1, 16));
  f[3] = _mm256_castsi256_ps(_mm256_and_si256(u1, high));
}

// The scales of a 64-input group (two E8M0 bytes) as floats, the first in lanes 0-3 and the
// second in lanes 4-7: each byte shifted into the exponent field of its own 32 bits in a
// general register, then one move and one permute (as many vector operations as reading
// float scales took, from a quarter of the bytes). The matrix's scale_special flag keeps
// bytes 0 and 255, which this does not map, off this path.
inline __m256 fp4_scale_pair(const uint8_t* s) {
  const uint64_t bits = (static_cast<uint64_t>(s[0]) << 23) | (static_cast<uint64_t>(s[1]) << 55);
  const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castsi128_ps(_mm_cvtsi64_si128(static_cast<long long>(bits)))), spread);
}

// Running totals of RB activation rows for a product split along K: the previous chunk's
// from `carry`, or zero at the first; after the last chunk the row sums go to `out`.
template <int RB>
inline void fp4_carry_in(__m256* acc, const float* carry, int k0) {
  for (int r = 0; r < RB; r++) acc[r] = k0 > 0 ? _mm256_loadu_ps(carry + r * 8) : _mm256_setzero_ps();
}
template <int RB>
inline void fp4_carry_out(const __m256* acc, float* carry, bool last, float* out, size_t ldo, int n) {
  for (int r = 0; r < RB; r++) {
    if (last) out[r * ldo + n] = hsum8(acc[r]);
    else _mm256_storeu_ps(carry + r * 8, acc[r]);
  }
}

// One weight row against RB activation rows over inputs [k0, k1) (multiples of 64), each half
// group decoded once and used for every row. Per activation row the arithmetic is fixed: two
// chains a (vectors 0, 2, 4, 6) and b (1, 3, 5, 7), a + b, times the group's scale pair,
// added to the total. `carry` (RB * 8 floats) holds the running totals between K chunks, so
// a chunked product performs the same operations in the same order as an unchunked one.
template <int RB>
void fp4_tile_k(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n, int k0, int k1, float* carry) {
  const __m256i lut_lo = fp4_lut_lo(), lut_hi = fp4_lut_hi();
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const uint8_t* wr = w.row(n);
  const uint8_t* sr = w.scale_bytes(n);
  __m256 acc[RB];
  fp4_carry_in<RB>(acc, carry, k0);
  for (int g = k0; g < k1; g += 64) {
    __m256 a[RB], b[RB];
    _mm_prefetch(reinterpret_cast<const char*>(wr + g / 2 + kPrefetchBytes), _MM_HINT_T0);
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + g / 2));
    for (int h = 0; h < 2; h++) {
      __m256 f[4];
      fp4_decode(h == 0 ? _mm256_and_si256(raw, low4) : _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), lut_lo, lut_hi, f);
      for (int r = 0; r < RB; r++) {
        const float* xr = x + r * ldx + g + 32 * h;
        const __m256 x0 = _mm256_loadu_ps(xr), x1 = _mm256_loadu_ps(xr + 8);
        const __m256 x2 = _mm256_loadu_ps(xr + 16), x3 = _mm256_loadu_ps(xr + 24);
        if (h == 0) {
          a[r] = _mm256_mul_ps(f[0], x0);
          b[r] = _mm256_mul_ps(f[1], x1);
        } else {
          a[r] = _mm256_fmadd_ps(f[0], x0, a[r]);
          b[r] = _mm256_fmadd_ps(f[1], x1, b[r]);
        }
        a[r] = _mm256_fmadd_ps(f[2], x2, a[r]);
        b[r] = _mm256_fmadd_ps(f[3], x3, b[r]);
      }
    }
    // Lanes 0-3 came from the group's first 32 inputs, lanes 4-7 from the second.
    const __m256 s = fp4_scale_pair(sr + g / kFp4Block);
    for (int r = 0; r < RB; r++) acc[r] = _mm256_fmadd_ps(_mm256_add_ps(a[r], b[r]), s, acc[r]);
  }
  fp4_carry_out<RB>(acc, carry, k1 == w.K, out, ldo, n);
}

// One weight row against RB activation rows (rows_pass uses it for 2, 5 and 6), each 64-input group decoded once
// into registers and used for every row. Per (weight row, activation row) the operations
// and their order are exactly fp4_tile_k's: chain a (vectors 0, 2, 4, 6), chain b (1, 3,
// 5, 7), a + b times the scale pair, added to the total. Only the loop nest differs: the
// chains of one row complete before the next row's start, so two registers hold them.
template <int RB>
void fp4_row_k(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n, int k0, int k1, float* carry) {
  const __m256i lut_lo = fp4_lut_lo(), lut_hi = fp4_lut_hi();
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const uint8_t* wr = w.row(n);
  const uint8_t* sr = w.scale_bytes(n);
  __m256 acc[RB];
  fp4_carry_in<RB>(acc, carry, k0);
  for (int g = k0; g < k1; g += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(wr + g / 2 + kPrefetchBytes), _MM_HINT_T0);
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + g / 2));
    __m256 f[8];
    fp4_decode(_mm256_and_si256(raw, low4), lut_lo, lut_hi, f);
    fp4_decode(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), lut_lo, lut_hi, f + 4);
    const __m256 s = fp4_scale_pair(sr + g / kFp4Block);
    for (int r = 0; r < RB; r++) {
      const float* xr = x + r * ldx + g;
      __m256 a = _mm256_mul_ps(f[0], _mm256_loadu_ps(xr));
      __m256 b = _mm256_mul_ps(f[1], _mm256_loadu_ps(xr + 8));
      a = _mm256_fmadd_ps(f[2], _mm256_loadu_ps(xr + 16), a);
      b = _mm256_fmadd_ps(f[3], _mm256_loadu_ps(xr + 24), b);
      a = _mm256_fmadd_ps(f[4], _mm256_loadu_ps(xr + 32), a);
      b = _mm256_fmadd_ps(f[5], _mm256_loadu_ps(xr + 40), b);
      a = _mm256_fmadd_ps(f[6], _mm256_loadu_ps(xr + 48), a);
      b = _mm256_fmadd_ps(f[7], _mm256_loadu_ps(xr + 56), b);
      acc[r] = _mm256_fmadd_ps(_mm256_add_ps(a, b), s, acc[r]);
    }
  }
  fp4_carry_out<RB>(acc, carry, k1 == w.K, out, ldo, n);
}

// One 64-input group of one row: fp4_tile_k's and fp4_row_k's operations, in their order.
inline __m256 fp4_gemv_group(const uint8_t* wr, const float* x, __m256 s, __m256 acc, __m256i lut_lo, __m256i lut_hi, __m256i low4) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr));
  __m256 f[4];
  fp4_decode(_mm256_and_si256(raw, low4), lut_lo, lut_hi, f);
  __m256 a = _mm256_mul_ps(f[0], _mm256_loadu_ps(x));
  __m256 b = _mm256_mul_ps(f[1], _mm256_loadu_ps(x + 8));
  a = _mm256_fmadd_ps(f[2], _mm256_loadu_ps(x + 16), a);
  b = _mm256_fmadd_ps(f[3], _mm256_loadu_ps(x + 24), b);
  fp4_decode(_mm256_and_si256(_mm256_srli_epi16(raw, 4), low4), lut_lo, lut_hi, f);
  a = _mm256_fmadd_ps(f[0], _mm256_loadu_ps(x + 32), a);
  b = _mm256_fmadd_ps(f[1], _mm256_loadu_ps(x + 40), b);
  a = _mm256_fmadd_ps(f[2], _mm256_loadu_ps(x + 48), a);
  b = _mm256_fmadd_ps(f[3], _mm256_loadu_ps(x + 56), b);
  return _mm256_fmadd_ps(_mm256_add_ps(a, b), s, acc);
}

// The single-row FP4 GEMV (decode): the multi-row kernels' arithmetic with less bookkeeping per
// group, because this loop is bound by instruction throughput, not by the FMAs: pointers
// advance instead of being recomputed, and four groups' eight scale bytes become floats with
// one widening load and one shift, each group then picking its pair with one permute.
float fp4_gemv_row(const uint8_t* wr, const uint8_t* sr, const float* x, int K) {
  const __m256i lut_lo = fp4_lut_lo(), lut_hi = fp4_lut_hi();
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i p0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), p1 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
  const __m256i p2 = _mm256_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5), p3 = _mm256_setr_epi32(6, 6, 6, 6, 7, 7, 7, 7);
  __m256 acc = _mm256_setzero_ps();
  int g = 0;
  for (; g + 256 <= K; g += 256, wr += 128, sr += 8, x += 256) {
    _mm_prefetch(reinterpret_cast<const char*>(wr + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(wr + 64 + kPrefetchBytes), _MM_HINT_T0);
    const __m256 sv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sr))), 23));
    acc = fp4_gemv_group(wr, x, _mm256_permutevar8x32_ps(sv, p0), acc, lut_lo, lut_hi, low4);
    acc = fp4_gemv_group(wr + 32, x + 64, _mm256_permutevar8x32_ps(sv, p1), acc, lut_lo, lut_hi, low4);
    acc = fp4_gemv_group(wr + 64, x + 128, _mm256_permutevar8x32_ps(sv, p2), acc, lut_lo, lut_hi, low4);
    acc = fp4_gemv_group(wr + 96, x + 192, _mm256_permutevar8x32_ps(sv, p3), acc, lut_lo, lut_hi, low4);
  }
  for (; g < K; g += 64, wr += 32, sr += 2, x += 64) acc = fp4_gemv_group(wr, x, fp4_scale_pair(sr), acc, lut_lo, lut_hi, low4);
  return hsum8(acc);
}


// Activation bytes of one row group kept in L1 across the weight rows of a pass: with
// several activation rows the whole K no longer fits, and re-reading the activations from
// L2 for every weight row was the bottleneck of few-row FP4 products (expert prefill). Half
// of L1, so that the weight rows streaming through do not evict them (measured against all
// of L1: 4-8 rows of a 2048x4096 expert matrix 4-14% faster).
constexpr int kActChunkBytes = 16 * 1024;

// K chunk for rb activation rows: the whole K when their activations fit the budget, else
// the fewest equal chunks (multiples of 64) that do.
inline int fp4_chunk(int K, int rb) {
  const int groups = K / 64;
  const int per = imin(groups, imax(1, kActChunkBytes / (4 * 64 * rb)));
  const int chunks = (groups + per - 1) / per;
  return ((groups + chunks - 1) / chunks) * 64;
}

// FP4 with several activation rows: K in chunks whose activations stay in L1, the running
// totals carried between chunks in memory (same operations, same order as one whole-K pass).
// Kernel is fp4_tile_k or fp4_row_k for RB rows.
using Fp4Kernel = void (*)(const Matrix&, const float*, size_t, float*, size_t, int, int, int, float*);
template <int RB, Fp4Kernel Kernel>
void fp4_chunked_pass(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n0, int n1, int kc, float* carry) {
  for (int k0 = 0; k0 < w.K; k0 += kc) {
    const int k1 = imin(w.K, k0 + kc);
    for (int n = n0; n < n1; n++) Kernel(w, x, ldx, out, ldo, n, k0, k1, carry + static_cast<size_t>(n - n0) * RB * 8);
  }
}

// 16 bf16 values: each 32-bit lane holds an even element in its low half and the next odd
// one in its high half, so a shift and a mask make floats of both without a shuffle.
inline void bf16_decode16(const uint8_t* p, __m256& even, __m256& odd) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(raw, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

inline void bf16_load16(const uint8_t* row, int k, __m256& w0, __m256& w1) { bf16_decode16(row + 2 * k, w0, w1); }
inline void f32_load16(const uint8_t* row, int k, __m256& w0, __m256& w1) {
  const float* r = reinterpret_cast<const float*>(row) + k;
  w0 = _mm256_loadu_ps(r);
  w1 = _mm256_loadu_ps(r + 8);
}

// BF16 and F32 weights: sixteen inputs at a time, two chains per (weight row, activation
// row). Load16 gives the row's sixteen weights at input k as two vectors (in the format's
// activation layout); Tail adds the inputs past the last multiple of 16 (only F32 has any:
// the BF16 layout needs K % 16 == 0).
template <int NR, int RB, void (*Load16)(const uint8_t*, int, __m256&, __m256&), float (*Tail)(const Matrix&, int, const float*, int)>
void dense_tile(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n) {
  const int K = w.K, full = K & ~15;
  const uint8_t* wr[NR];
  for (int j = 0; j < NR; j++) wr[j] = w.row(n + j);
  // The next call's rows, at the bytes these 16 inputs come from.
  const size_t per = w.row_bytes() / static_cast<size_t>(K), ahead = NR * w.row_bytes();
  __m256 c0[NR][RB], c1[NR][RB];
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) c0[j][r] = c1[j][r] = _mm256_setzero_ps();
  for (int k = 0; k < full; k += 16) {
    for (int j = 0; j < NR; j++) _mm_prefetch(reinterpret_cast<const char*>(wr[j] + per * k + ahead), _MM_HINT_T0);
    __m256 xv0[RB], xv1[RB];
    for (int r = 0; r < RB; r++) {
      xv0[r] = _mm256_loadu_ps(x + r * ldx + k);
      xv1[r] = _mm256_loadu_ps(x + r * ldx + k + 8);
    }
    for (int j = 0; j < NR; j++) {
      __m256 w0, w1;
      Load16(wr[j], k, w0, w1);
      for (int r = 0; r < RB; r++) {
        c0[j][r] = _mm256_fmadd_ps(w0, xv0[r], c0[j][r]);
        c1[j][r] = _mm256_fmadd_ps(w1, xv1[r], c1[j][r]);
      }
    }
  }
  for (int j = 0; j < NR; j++)
    for (int r = 0; r < RB; r++) {
      float v = hsum8(_mm256_add_ps(c0[j][r], c1[j][r]));
      if (full < K) v += Tail(w, n + j, x + r * ldx, full);
      out[r * ldo + n + j] = v;
    }
}

// ---------------------------------------------------------------------------------------
// Several activation rows (decode batches, prefill) for BF16 and F32: strip products (on
// AVX-512 for F32 only; BF16 and FP8 go through tiles_avx512.h there).
// A span of weight rows is decoded once into floats (strips: two rows interleaved, in L2)
// and multiplied by every activation row from there: each weight is decoded once per call
// instead of once per row block, and the inner loops are loads and FMAs only. Activation
// rows go in groups and K in chunks whose activations stay in L1 while every strip of the
// span passes (prepared rows are padded so that they do not map to the same L1 sets); each
// output's chains are stored and reloaded between chunks, which changes no bit. Per output
// the arithmetic is the single-row GEMV's:
//  - dense (BF16, F32): chains c0 (the first 8 of each 16 prepared inputs) and c1 (the
//    other 8), in K order from zero; the result is hsum8(c0 + c1), plus the F32 inputs past
//    the last multiple of 16 (dense_tile);
//
// Strip layout: weight rows n and n + 1 interleaved in 8-float halves, strip[(i / 8) * 16 +
// 8 * j + lane] = decoded input i + lane of row n + j. A 256-bit load gives 8 inputs of one
// row; a 512-bit load the same 8 inputs of both rows, which the AVX-512 kernels multiply by
// one activation row broadcast to both halves: two outputs per FMA, each half doing exactly
// the 8-lane arithmetic above, so the avx512 table gives the avx2 table's results bit for
// bit. A strip without a second row has zeros there (its outputs are not stored).

// Activation rows from which strip products are used. Fewer rows are nearer the bandwidth
// bound, where one pass decoding on the fly (with its prefetches) did as well: BF16 4096x4096
// from DRAM, one thread, GFLOP/s at 5 / 8 / 12 / 16 / 32 rows: on the fly 40 / 61 / 62 / 63
// / 64, AVX2 strips 38 / 51 / 61 / 66 / 76, AVX-512 strips 45 / 62 / 75 / 84 / 101. (An
// AVX-512 FP8 form of them, since replaced by fp8_tiled, did no better than the AVX2 FP8
// prefill kernel, which on AVX2 matched them in cache and beat them by ~15% from DRAM.)
#ifdef DSV4_AVX512
constexpr int kDenseStripRows = 5;
#else
constexpr int kDenseStripRows = 16;
#endif
// Chains carried per (strip, activation row): dense c0 (row n, then n + 1), then c1.
constexpr int kDenseCarry = 32;
// Activation floats of one row group's K chunk, read from L1 by every strip of a task.
constexpr int kChunkFloats = 4096;
// Most activation rows per group: the decode is shared by this many; more would shrink the
// K chunk and make the carried chains a larger share of the traffic.
constexpr int kStripGroupRows = 16;

inline void bf16_strip(const uint8_t* row, int j, int k0, int k1, float* strip) {
  for (int k = k0; k < k1; k += 16) {
    __m256 even, odd;
    bf16_decode16(row + 2 * k, even, odd);
    float* d = strip + 2 * (k - k0) + 8 * j;
    _mm256_store_ps(d, even);
    _mm256_store_ps(d + 16, odd);
  }
}
inline void f32_strip(const uint8_t* row, int j, int k0, int k1, float* strip) {
  const float* r = reinterpret_cast<const float*>(row);
  for (int k = k0; k < k1; k += 8) _mm256_store_ps(strip + 2 * (k - k0) + 8 * j, _mm256_loadu_ps(r + k));
}
inline void zero_strip_row(int j, int len, float* strip) {
  for (int i = 0; i < len; i += 8) _mm256_store_ps(strip + 2 * i + 8 * j, _mm256_setzero_ps());
}

// Keeps a loaded vector in a register. Left alone, the compiler turned loads used by several
// FMAs into one memory operand per FMA: 12 loads per 8 FMAs in dense_strip8, which ran at 70
// instead of 100 GFLOP/s on one Zen 5 core.
#define DSV4_IN_REGISTER(v) __asm__("" : "+x"(v))

// Dense chains of one strip by RB activation rows over `len` inputs (a multiple of 16) of a
// K chunk: x holds the rows ldc floats apart; carry the chains of these rows, kDenseCarry
// floats each.
template <int RB>
void dense_strip8(const float* strip, const float* x, size_t ldc, int len, float* carry) {
  __m256 c0[2][RB], c1[2][RB];
  for (int r = 0; r < RB; r++)
    for (int j = 0; j < 2; j++) {
      c0[j][r] = _mm256_load_ps(carry + r * kDenseCarry + 8 * j);
      c1[j][r] = _mm256_load_ps(carry + r * kDenseCarry + 16 + 8 * j);
    }
  for (int i = 0; i < len; i += 16) {
    __m256 x0[RB], x1[RB];
    for (int r = 0; r < RB; r++) {
      x0[r] = _mm256_load_ps(x + r * ldc + i);
      x1[r] = _mm256_load_ps(x + r * ldc + i + 8);
      DSV4_IN_REGISTER(x0[r]);
      DSV4_IN_REGISTER(x1[r]);
    }
    for (int j = 0; j < 2; j++) {
      __m256 w0 = _mm256_load_ps(strip + 2 * i + 8 * j), w1 = _mm256_load_ps(strip + 2 * i + 16 + 8 * j);
      DSV4_IN_REGISTER(w0);
      DSV4_IN_REGISTER(w1);
      for (int r = 0; r < RB; r++) {
        c0[j][r] = _mm256_fmadd_ps(w0, x0[r], c0[j][r]);
        c1[j][r] = _mm256_fmadd_ps(w1, x1[r], c1[j][r]);
      }
    }
  }
  for (int r = 0; r < RB; r++)
    for (int j = 0; j < 2; j++) {
      _mm256_store_ps(carry + r * kDenseCarry + 8 * j, c0[j][r]);
      _mm256_store_ps(carry + r * kDenseCarry + 16 + 8 * j, c1[j][r]);
    }
}

#ifdef DSV4_AVX512
// 8 floats in both halves of a 512-bit vector (vbroadcastf64x4: AVX512F, no DQ needed; the
// zero-masked form because the plain one warns about an undefined source in GCC 12).
inline __m512 broadcast8(const float* p) { return _mm512_castpd_ps(_mm512_maskz_broadcast_f64x4(0xFF, _mm256_castps_pd(_mm256_load_ps(p)))); }

// dense_strip8 for NS strips at once (lds floats apart, carries ldk floats apart), both
// rows of a strip in one 512-bit vector.
template <int NS, int RB>
void dense_strip16(const float* strips, size_t lds, const float* x, size_t ldc, int len, float* carry, size_t ldk) {
  __m512 c0[NS][RB], c1[NS][RB];
  for (int s = 0; s < NS; s++)
    for (int r = 0; r < RB; r++) {
      c0[s][r] = _mm512_load_ps(carry + s * ldk + r * kDenseCarry);
      c1[s][r] = _mm512_load_ps(carry + s * ldk + r * kDenseCarry + 16);
    }
  for (int i = 0; i < len; i += 16) {
    __m512 w0[NS], w1[NS];
    for (int s = 0; s < NS; s++) {
      w0[s] = _mm512_load_ps(strips + s * lds + 2 * i);
      w1[s] = _mm512_load_ps(strips + s * lds + 2 * i + 16);
      __asm__("" : "+v"(w0[s]));
      __asm__("" : "+v"(w1[s]));
    }
    for (int r = 0; r < RB; r++) {
      const __m512 x0 = broadcast8(x + r * ldc + i), x1 = broadcast8(x + r * ldc + i + 8);
      for (int s = 0; s < NS; s++) {
        c0[s][r] = _mm512_fmadd_ps(w0[s], x0, c0[s][r]);
        c1[s][r] = _mm512_fmadd_ps(w1[s], x1, c1[s][r]);
      }
    }
  }
  for (int s = 0; s < NS; s++)
    for (int r = 0; r < RB; r++) {
      _mm512_store_ps(carry + s * ldk + r * kDenseCarry, c0[s][r]);
      _mm512_store_ps(carry + s * ldk + r * kDenseCarry + 16, c1[s][r]);
    }
}

#endif

#ifdef DSV4_AVX512
// Runs a strip kernel over `rows` activation rows: groups of 4, then the 1-3 rows left.
// `kernel(R, r)` multiplies rows [r, r + R), R a std::integral_constant (the kernels' row
// count is a template parameter, so each group size is its own instantiation).
template <class Kernel>
inline void for_row_groups(int rows, Kernel kernel) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) kernel(std::integral_constant<int, 4>{}, r);
  switch (rows - r) {
    case 3: kernel(std::integral_constant<int, 3>{}, r); break;
    case 2: kernel(std::integral_constant<int, 2>{}, r); break;
    case 1: kernel(std::integral_constant<int, 1>{}, r); break;
  }
}
#endif

// The formats' parts of a strip product. run() multiplies strips [0, ns) (lds floats apart,
// each at its chunk's first input) by the group's `rows` activation rows over `len` inputs;
// strip s, row r carries at carry + (s * rows + r) * kCarry.
struct DenseStrips {
  static constexpr int kUnit = 16;  // K chunks are multiples of this
  static constexpr int kCarry = kDenseCarry;
#ifdef DSV4_AVX512
  static constexpr int kStrips = 2;  // strips per run: 2 x 4 rows x 2 chains in registers
#else
  static constexpr int kStrips = 1;
#endif
  // Inputs the strips cover: dense_tile's `full` (F32's tail is added when finishing).
  static int span(const Matrix& w) { return w.K & ~15; }
  static void decode(const Matrix& w, int n, int j, int k0, int k1, float* strip) {
    if (w.format == Format::BF16) bf16_strip(w.row(n), j, k0, k1, strip);
    else f32_strip(w.row(n), j, k0, k1, strip);
  }
#ifdef DSV4_AVX512
  template <int NS>
  static void run_strips(const float* strips, size_t lds, const float* x, size_t ldx, int rows, int len, float* carry) {
    const size_t ldk = static_cast<size_t>(rows) * kCarry;
    for_row_groups(rows, [&](auto R, int r) { dense_strip16<NS, decltype(R)::value>(strips, lds, x + r * ldx, ldx, len, carry + r * kCarry, ldk); });
  }
  static void run(const float* strips, size_t lds, int ns, const float* x, size_t ldx, int rows, int len, float* carry) {
    if (ns == 2) run_strips<2>(strips, lds, x, ldx, rows, len, carry);
    else run_strips<1>(strips, lds, x, ldx, rows, len, carry);
  }
#else
  static void run(const float* strips, size_t lds, int ns, const float* x, size_t ldx, int rows, int len, float* carry) {
    for (int s = 0; s < ns; s++) {
      const float* st = strips + s * lds;
      float* c = carry + static_cast<size_t>(s) * rows * kCarry;
      int r = 0;
      for (; r + 2 <= rows; r += 2) dense_strip8<2>(st, x + r * ldx, ldx, len, c + r * kCarry);
      if (r < rows) dense_strip8<1>(st, x + r * ldx, ldx, len, c + r * kCarry);
    }
  }
#endif
  static float finish(const Matrix& w, const float* c, int j, int n, const float* x, const double*) {
    const float v = hsum8(_mm256_add_ps(_mm256_load_ps(c + 8 * j), _mm256_load_ps(c + 16 + 8 * j)));
    const int full = span(w);
    return full < w.K ? v + f32_row_scalar(w, n, x, full) : v;
  }
};

// Raw weight rows asked for ahead of their decode, a few lines at a time: the rows of the
// next span stream in while this one's strips are multiplied (into L2: a span's rows would
// not fit L1).
struct RowPrefetch {
  const uint8_t* p = nullptr;
  const uint8_t* end = nullptr;
  void start(const Matrix& w, int n0, int n1) {
    p = n0 < n1 ? w.row(n0) : nullptr;
    end = n0 < n1 ? w.row(n0) + w.row_bytes() * static_cast<size_t>(n1 - n0) : nullptr;
  }
  void step(size_t bytes) {
    for (const uint8_t* e = p + bytes; p < end && p < e; p += 64) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
  }
};

// Floats of a span's decoded strips (whole rows): a quarter of a 1 MiB L2, so that the
// prepared activations read chunk by chunk still fit beside them.
constexpr size_t kSpanFloats = 64 * 1024;

// Weight rows per span for K inputs: even, 2 to 128.
inline int strip_span_rows(int K) { return imax(2, imin(128, static_cast<int>(kSpanFloats / static_cast<size_t>(imax(1, K))))) & ~1; }

// Output rows [n0, n1) (one span) for every activation row (x: `rows` prepared rows ldx
// apart; for FP8 prescaled, with their post factors). The span's weight rows are decoded
// once, row after row: a sequential read the hardware prefetchers follow (decoding them
// chunk by chunk read each row in 512-byte pieces and left the 16-row BF16 head bound by
// memory latency). Then activation rows go in balanced groups of at most kStripGroupRows, K
// in chunks whose activations stay in L1, and every strip multiplies a chunk while it is
// there. `next` brings in the following span's raw rows meanwhile.
template <class F>
void strip_span(const Matrix& w, const float* x, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1, const double* post, RowPrefetch& next) {
  const int span = F::span(w);
  const size_t lds = 2 * static_cast<size_t>(span);
  const int nstrips = (n1 - n0 + 1) / 2;
  float* strips = static_cast<float*>(scratch(Scratch::Tile, nstrips * lds * sizeof(float) + 64));
  for (int t = 0; t < nstrips; t++) {
    const int n = n0 + 2 * t;
    F::decode(w, n, 0, 0, span, strips + t * lds);
    if (n + 1 < n1) F::decode(w, n + 1, 1, 0, span, strips + t * lds);
    else zero_strip_row(1, span, strips + t * lds);
  }
  const int groups = (rows + kStripGroupRows - 1) / kStripGroupRows;
  const int group_rows = (rows + groups - 1) / groups;
  const int kc = imax(F::kUnit, imin((span + F::kUnit - 1) / F::kUnit * F::kUnit, kChunkFloats / group_rows / F::kUnit * F::kUnit));
  const int chunks = (span + kc - 1) / kc;
  const size_t prefetch_step = w.row_bytes() * static_cast<size_t>(n1 - n0) / static_cast<size_t>(imax(1, groups * chunks)) + 64;
  float* carry = static_cast<float*>(scratch(Scratch::Carry, static_cast<size_t>(nstrips) * group_rows * F::kCarry * sizeof(float)));
  for (int g0 = 0; g0 < rows; g0 += group_rows) {
    const int gr = imin(group_rows, rows - g0);
    const float* xg = x + static_cast<size_t>(g0) * ldx;
    for (size_t i = 0; i < static_cast<size_t>(nstrips) * gr * F::kCarry; i++) carry[i] = 0;
    for (int k0 = 0; k0 < span; k0 += kc) {
      const int len = imin(span, k0 + kc) - k0;
      next.step(prefetch_step);
      for (int t = 0; t < nstrips; t += F::kStrips)
        F::run(strips + t * lds + 2 * k0, lds, imin(F::kStrips, nstrips - t), xg + k0, ldx, gr, len, carry + static_cast<size_t>(t) * gr * F::kCarry);
    }
    for (int n = n0; n < n1; n++) {
      const int t = (n - n0) / 2, j = (n - n0) % 2;
      for (int r = 0; r < gr; r++)
        out[static_cast<size_t>(g0 + r) * ldo + n] = F::finish(w, carry + (static_cast<size_t>(t) * gr + r) * F::kCarry, j, n, xg + r * ldx, post ? post + g0 + r : nullptr);
    }
  }
}

// Output rows [n0, n1) in spans, each prefetching the next.
template <class F>
void strip_product(const Matrix& w, const float* x, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1, const double* post) {
  const int per = strip_span_rows(F::span(w));
  RowPrefetch next;
  for (int n = n0; n < n1; n += per) {
    const int e = imin(n1, n + per);
    next.start(w, e, imin(n1, e + per));
    strip_span<F>(w, x, ldx, rows, out, ldo, n, e, post, next);
  }
}

using TileFn = void (*)(const Matrix&, const float*, size_t, float*, size_t, int);

// One pass over output rows [n0, n1) for up to 4 activation rows: pairs of weight rows
// when one or two activation rows leave the FMA units idle, single rows otherwise.
template <int RB>
void vector_pass(const Matrix& w, const float* x, size_t ldx, float* out, size_t ldo, int n0, int n1) {
  TileFn pair = nullptr, single = nullptr;
  switch (w.format) {
    case Format::FP4:  // one activation row: the GEMV (several go through rows_pass)
      for (int n = n0; n < n1; n++) out[n] = fp4_gemv_row(w.row(n), w.scale_bytes(n), x, w.K);
      return;
    case Format::BF16: pair = dense_tile<2, RB, bf16_load16, bf16_row_scalar>, single = dense_tile<1, RB, bf16_load16, bf16_row_scalar>; break;
    case Format::F32: pair = dense_tile<2, RB, f32_load16, f32_row_scalar>, single = dense_tile<1, RB, f32_load16, f32_row_scalar>; break;
    case Format::FP8: return;  // fp8_linear
  }
  int n = n0;
  if (RB <= 2)
    for (; n + 2 <= n1; n += 2) pair(w, x, ldx, out, ldo, n);
  for (; n < n1; n++) single(w, x, ldx, out, ldo, n);
}

#ifdef DSV4_AVX512
#include "tiles_avx512.h"
#endif

// BF16/F32 from kDenseStripRows rows: strip products. Fewer rows (and FP4) in groups, each group
// one pass over the weights, decoding on the fly. On AVX-512, BF16 and FP4 at
// every row count go through the register-tiled kernels of tiles_avx512.h instead.
void rows_pass(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
#ifdef DSV4_AVX512
  if (w.format == Format::FP4) return fp4_pairs(w, xp, ldx, rows, out, ldo, n0, n1);
#endif
  if (w.format == Format::FP4 && rows >= 2) {
    // K in chunks so that a pass's activations stay in L1, the running totals carried in
    // memory between chunks. Passes of four rows (fp4_tile_k), except that two, five or six
    // remaining rows share one pass of fp4_row_k (measured: 2 rows 9-12% and 5-6 rows ~10%
    // faster that way, 3-4 rows 2-15% slower;
    // eight rows in one pass ran out of registers and were slower than two passes of four).
    float* carry = static_cast<float*>(scratch(Scratch::Carry, static_cast<size_t>(n1 - n0) * 6 * 8 * sizeof(float)));
    for (int r0 = 0; r0 < rows;) {
      const int left = rows - r0;
      const int rb = (left == 5 || left == 6) ? left : imin(4, left);
      const float* x = xp + static_cast<size_t>(r0) * ldx;
      float* o = out + static_cast<size_t>(r0) * ldo;
      const int kc = fp4_chunk(w.K, rb);
      switch (rb) {
        case 1: fp4_chunked_pass<1, fp4_row_k<1>>(w, x, ldx, o, ldo, n0, n1, kc, carry); break;
        case 2: fp4_chunked_pass<2, fp4_row_k<2>>(w, x, ldx, o, ldo, n0, n1, kc, carry); break;
        case 3: fp4_chunked_pass<3, fp4_tile_k<3>>(w, x, ldx, o, ldo, n0, n1, kc, carry); break;
        case 4: fp4_chunked_pass<4, fp4_tile_k<4>>(w, x, ldx, o, ldo, n0, n1, kc, carry); break;
        case 5: fp4_chunked_pass<5, fp4_row_k<5>>(w, x, ldx, o, ldo, n0, n1, kc, carry); break;
        default: fp4_chunked_pass<6, fp4_row_k<6>>(w, x, ldx, o, ldo, n0, n1, kc, carry); break;
      }
      r0 += rb;
    }
    return;
  }
#ifdef DSV4_AVX512
  if (w.format == Format::BF16 && rows >= kBf16TiledRows) return bf16_tiled(w, xp, ldx, rows, out, ldo, n0, n1);
#endif
  if (w.format != Format::FP4 && rows >= kDenseStripRows) return strip_product<DenseStrips>(w, xp, ldx, rows, out, ldo, n0, n1, nullptr);
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const float* x = xp + static_cast<size_t>(r0) * ldx;
    float* o = out + static_cast<size_t>(r0) * ldo;
    switch (imin(4, rows - r0)) {
      case 1: vector_pass<1>(w, x, ldx, o, ldo, n0, n1); break;
      case 2: vector_pass<2>(w, x, ldx, o, ldo, n0, n1); break;
      case 3: vector_pass<3>(w, x, ldx, o, ldo, n0, n1); break;
      default: vector_pass<4>(w, x, ldx, o, ldo, n0, n1); break;
    }
  }
}

// ---------------------------------------------------------------------------------------
// FP8 with many activation rows on AVX2 (AVX-512 uses strip products): a few weight rows are
// decoded once into floats and multiplied with three activation rows at a time from
// registers. The decoded values and the per-output arithmetic equal the on-the-fly kernel's,
// so prefill equals decode exactly.
constexpr int kTiledRows = 5;  // from here on decoding once beats decoding per 4 rows
constexpr int kTileRows = 4;


// Weight rows [n0, n0 + nt) of an FP8 matrix as floats (E4M3 values * 2^-120, unscaled, in
// Fp8Group32 order).
void decode_tile(const Matrix& w, int n0, int nt, float* tile) {
  const int K = w.K;
  for (int j = 0; j < nt; j++) {
    const uint8_t* wr = w.row(n0 + j);
    float* d = tile + static_cast<size_t>(j) * K;
    for (int k = 0; k < K; k += 32) {
      __m256 wv[4];
      fp8_decode32(wr + k, wv);
      for (int p = 0; p < 4; p++) _mm256_storeu_ps(d + k + 8 * p, wv[p]);
    }
  }
}


// Prescaling for 128-row group g: x times the group's scales, block by block along K, and
// times 2^c per row, with c chosen so that the row's largest scaled activation is about
// 2^100. Weights decode as value * 2^-120 (fp8_decode32), so the largest product is about
// 2^-10 and the products that matter stay far from fp32's denormal range; post[r] =
// 2^(120 - c) undoes both exactly. fp8_group_exponents picks c and post, fp8_prescale writes
// the prescaled rows (which the bf16 dot products do without: fp8_group_factors).
void fp8_group_exponents(const Matrix& w, int g, const float* xp, size_t ldx, int rows, int* c, double* post) {
  const float* s = w.scales.data() + static_cast<size_t>(g) * w.scale_cols;
  for (int r = 0; r < rows; r++) {
    const float* block_max = xp + r * ldx + w.K;
    float m = 0;
    for (int b = 0; b < w.scale_cols; b++) {
      const float v = block_max[b] * s[b];
      m = v > m ? v : m;
    }
    c[r] = 0;
    if (m > 0 && m <= 3.0e38f) c[r] = imin(127, imax(-126, 100 - ilogbf(m)));
    post[r] = ldexp(1.0, 120 - c[r]);
  }
}

void fp8_prescale(const Matrix& w, int g, const float* xp, size_t ldx, int rows, const int* c, float* dst) {
  const float* s = w.scales.data() + static_cast<size_t>(g) * w.scale_cols;
  for (int r = 0; r < rows; r++) {
    const float* x = xp + r * ldx;
    float* d = dst + r * ldx;
    const float t = ldexpf(1.0f, c[r]);
#ifdef DSV4_AVX512
    // (K is a multiple of 32 here.) Each block's scale once, 16 lanes at a time: per value the
    // same two multiplies.
    const __m512 tv = _mm512_set1_ps(t);
    for (int kb = 0; kb < w.K; kb += kFp8Block) {
      const __m512 sv = _mm512_set1_ps(s[kb / kFp8Block]);
      for (int k = kb; k < imin(w.K, kb + kFp8Block); k += 16)
        _mm512_storeu_ps(d + k, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + k), sv), tv));
    }
#else
    const __m256 tv = _mm256_set1_ps(t);
    for (int k = 0; k < w.K; k += 8)
      _mm256_storeu_ps(d + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k), _mm256_set1_ps(s[k / kFp8Block])), tv));
#endif
  }
}

#ifdef DSV4_AVX512_BF16
// The factor each 128-input block's chain sum of the rows' own bf16 pairs (fp8_prepare_row_bf16)
// is multiplied by to become the chain sum of group g's prescaled rows, f[r * ldf + b] =
// s_b * 2^(c_r - c0_r), when that is exact for every row and block, else false (the group
// then prescales). Exact means: every weight scale a power of two; x * s_b exact (0 or
// normal), as the float kernels' first multiply is; the prescaled values 0 or in [2^10,
// 2^110), where the chains of both forms have only normal partial sums (Fp8Bf16Groups in tiles_avx512.h);
// and f a normal float, so that scaling a normal chain sum by it is exact.
bool fp8_group_factors(const Matrix& w, int g, const float* xp, size_t ldx, int rows, const int* c, float* f, size_t ldf) {
  const float* s = w.scales.data() + static_cast<size_t>(g) * w.scale_cols;
  const int K = w.K;
  // Exponents of normal floats (every comparison below is between powers of two times a
  // significand in [1, 2), so exponents decide it); 0 and subnormals give -127.
  const auto exponent = [](float v) { return static_cast<int>((f2u(v) >> 23) & 0xFF) - 127; };
  for (int r = 0; r < rows; r++) {
    const float* x = xp + r * ldx;
    const float* flag = x + fp8_flag_at(K);
    if (flag[0] != 1.0f) return false;
    const int c0 = static_cast<int>(flag[1]);
    const float* block_max = x + K;
    const float* block_min = x + fp8_block_min_at(K);
    for (int b = 0; b < w.scale_cols; b++) {
      const uint32_t sb = f2u(s[b]);
      if ((sb & 0x807FFFFFu) != 0 || (sb >> 23) == 0 || (sb >> 23) == 255) return false;
      const int es = static_cast<int>(sb >> 23) - 127;
      const int e = es + c[r] - c0;
      if (e < -126 || e > 127) return false;
      f[r * ldf + b] = u2f(static_cast<uint32_t>(e + 127) << 23);
      if (block_max[b] == 0) continue;
      const int lo = exponent(block_min[b]), hi = exponent(block_max[b]);
      // x * s_b normal and finite; x * s_b * 2^c in [2^10, 2^110).
      if (lo == -127 || lo + es < -126 || hi + es > 127 || lo + es + c[r] < 10 || hi + es + c[r] > 109) return false;
    }
  }
  return true;
}
#endif

template <bool Tiled>
using Fp8Fn = void (*)(const Matrix&, const float*, const float*, size_t, float*, size_t, int, const double*);

// Output rows [n0, n1) of one 128-row scale group, for all prescaled activation rows (the
// float kernels; fp8_linear takes the bf16 dot products itself).
void fp8_group(const Matrix& w, const float* xs, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1, const double* post) {
  const size_t K = static_cast<size_t>(w.K);
#ifdef DSV4_AVX512
  return fp8_rows(w, xs, ldx, rows, out, ldo, n0, n1, post, nullptr, 0, nullptr, 0);
#endif
  if (rows >= kTiledRows) {
    static const Fp8Fn<true> micro[4][3] = {
        {fp8_dot<1, 1, true>, fp8_dot<1, 2, true>, fp8_dot<1, 3, true>},
        {fp8_dot<2, 1, true>, fp8_dot<2, 2, true>, fp8_dot<2, 3, true>},
        {fp8_dot<3, 1, true>, fp8_dot<3, 2, true>, fp8_dot<3, 3, true>},
        {fp8_dot<4, 1, true>, fp8_dot<4, 2, true>, fp8_dot<4, 3, true>},
    };
    float* tile = static_cast<float*>(scratch(Scratch::Tile, kTileRows * K * sizeof(float)));
    for (int t = n0; t < n1; t += kTileRows) {
      const int nt = imin(kTileRows, n1 - t);
      decode_tile(w, t, nt, tile);
      // The next tile's rows arrive while this one is multiplied (FP8 32768x1024, 8 rows:
      // decoding each tile straight from DRAM took three times as long as 4 rows' pass).
      if (t + kTileRows < n1) {
        const char* next = reinterpret_cast<const char*>(w.row(t + kTileRows));
        const size_t bytes = static_cast<size_t>(imin(kTileRows, n1 - t - kTileRows)) * K;
        for (size_t b = 0; b < bytes; b += 64) _mm_prefetch(next + b, _MM_HINT_T1);
      }
      for (int r = 0; r < rows; r += 3) {
        const int rb = imin(3, rows - r);
        micro[nt - 1][rb - 1](w, tile, xs + r * ldx, ldx, out + r * ldo, ldo, t, post + r);
      }
    }
    return;
  }
  // Few rows: decode on the fly, enough weight rows at once for eight independent chains.
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const int rb = imin(4, rows - r0);
    const float* x = xs + r0 * ldx;
    float* o = out + r0 * ldo;
    const double* pr = post + r0;
    int n = n0;
    switch (rb) {
      case 1:
        for (; n + 4 <= n1; n += 4) fp8_gemv4(w.row(n), w.K, x, o + n, pr[0]);
        for (; n < n1; n++) fp8_dot<1, 1, false>(w, nullptr, x, ldx, o, ldo, n, pr);
        break;
      case 2:
        for (; n + 2 <= n1; n += 2) fp8_dot<2, 2, false>(w, nullptr, x, ldx, o, ldo, n, pr);
        for (; n < n1; n++) fp8_dot<1, 2, false>(w, nullptr, x, ldx, o, ldo, n, pr);
        break;
      case 3:
        for (; n < n1; n++) fp8_dot<1, 3, false>(w, nullptr, x, ldx, o, ldo, n, pr);
        break;
      default:
        for (; n < n1; n++) fp8_dot<1, 4, false>(w, nullptr, x, ldx, o, ldo, n, pr);
        break;
    }
  }
}



void fp8_linear(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  double* post = static_cast<double*>(scratch(Scratch::Post, static_cast<size_t>(rows) * (sizeof(double) + sizeof(int))));
  int* c = reinterpret_cast<int*>(post + rows);
  float* xs = nullptr;
  const auto prescaled = [&](int g) {
    if (!xs) xs = static_cast<float*>(scratch(Scratch::Prescaled, static_cast<size_t>(rows) * ldx * sizeof(float)));
    fp8_prescale(w, g, xp, ldx, rows, c, xs);
    return xs;
  };
  // With bf16 dot products: the rows' own bf16 pairs (in the prepared rows) and each block's
  // factor for this group (fp8_group_factors).
#ifdef DSV4_AVX512_BF16
  const size_t ldf = static_cast<size_t>(w.scale_cols);
  float* f = static_cast<float*>(scratch(Scratch::Fp8Factors, static_cast<size_t>(rows) * ldf * sizeof(float)));
#endif
  for (int n = n0; n < n1;) {
    const int g = n / kFp8Block;
    const int end = imin(n1, (g + 1) * kFp8Block);
    fp8_group_exponents(w, g, xp, ldx, rows, c, post);
#ifdef DSV4_AVX512_BF16
    if (end - n >= kFp8GemvRows && fp8_group_factors(w, g, xp, ldx, rows, c, f, ldf)) {
      // The last (end - n) mod 8 rows take the float kernels (fp8_tiled), from prescaled rows.
      const float* tail = (end - n) % kFp8GemvRows ? prescaled(g) : nullptr;
      fp8_rows(w, tail, ldx, rows, out, ldo, n, end, post, reinterpret_cast<const uint32_t*>(xp + fp8_pairs_at(w.K)), ldx, f, ldf);
      n = end;
      continue;
    }
#endif
    fp8_group(w, prescaled(g), ldx, rows, out, ldo, n, end, post);
    n = end;
  }
}
#endif  // DSV4_AVX2

void linear_impl(const Matrix& w, const float* xp, int rows, float* out, size_t ldo, int n0, int n1) {
  const size_t ldx = prepared_width_impl(w);
#ifdef DSV4_AVX2
  const Layout layout = layout_of(w);
  if (w.format == Format::FP8) {
    if (layout == Layout::Fp8Group32) return fp8_linear(w, xp, ldx, rows, out, ldo, n0, n1);
  } else if (layout != Layout::Natural || w.format == Format::F32) {
    return rows_pass(w, xp, ldx, rows, out, ldo, n0, n1);
  }
#endif
  for (int r = 0; r < rows; r++)
    for (int n = n0; n < n1; n++) out[static_cast<size_t>(r) * ldo + n] = row_scalar(w, n, xp + static_cast<size_t>(r) * ldx);
}

// ---------------------------------------------------------------------------------------
// Vector primitives for attention and the indexer.

float dot_impl(const float* a, const float* b, int n) {
#ifdef DSV4_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  float s = hsum8(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
#else
  float s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
#endif
}

void axpy_impl(float* y, float a, const float* x, int n) {
  int i = 0;
#ifdef DSV4_AVX2
  __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; i++) y[i] += a * x[i];
}

// Softmax with the sink over one head's scores (masked rows: -inf), then out = sum p * row,
// scaled by 1 / den at the end. Shared by both paths so they do the same float operations.
inline void attend_softmax(float* scores, int count, float sink, float& den) {
  float m = -INFINITY;
  for (int t = 0; t < count; t++) m = scores[t] > m ? scores[t] : m;
  den = 0;
  for (int t = 0; t < count; t++) {
    if (scores[t] == -INFINITY) {
      scores[t] = 0;
      continue;
    }
    scores[t] = std::exp(scores[t] - m);
    den += scores[t];
  }
  den += std::exp(sink - m);
}

void attend_portable(const float* q, float* out, const float* const* rows, int count, int h0, int nh, int hd,
                     const float* sink, float scale, float* scores) {
  for (int h = h0; h < h0 + nh; h++) {
    const float* qh = q + static_cast<size_t>(h) * hd;
    float* oh = out + static_cast<size_t>(h) * hd;
    for (int i = 0; i < hd; i++) oh[i] = 0;
    if (count == 0) continue;
    for (int t = 0; t < count; t++) scores[t] = rows[t] ? dot_impl(qh, rows[t], hd) * scale : -INFINITY;
    float den;
    attend_softmax(scores, count, sink[h], den);
    for (int t = 0; t < count; t++)
      if (rows[t]) axpy_impl(oh, scores[t], rows[t], hd);
    const float inv = 1.0f / den;
    for (int i = 0; i < hd; i++) oh[i] *= inv;
  }
}

#ifdef DSV4_AVX2
// NH heads at once: each gathered row is loaded once for all of them (it was re-read per head,
// from L2, which bounded prefill attention). Per head the operations are attend_portable's:
// dot_impl's two chains (even and odd vectors), then axpy_impl's FMA per element in row order.
template <int NH>
void attend_heads(const float* q, float* out, const float* const* rows, int count, int h0, int hd,
                  const float* sink, float scale, float* scores) {
  for (int t = 0; t < count; t++) {
    const float* row = rows[t];
    if (!row) {
      for (int h = 0; h < NH; h++) scores[h * count + t] = -INFINITY;
      continue;
    }
    __m256 s0[NH], s1[NH];
    for (int h = 0; h < NH; h++) s0[h] = s1[h] = _mm256_setzero_ps();
    for (int i = 0; i < hd; i += 16) {
      const __m256 r0 = _mm256_loadu_ps(row + i), r1 = _mm256_loadu_ps(row + i + 8);
      for (int h = 0; h < NH; h++) {
        const float* qh = q + static_cast<size_t>(h0 + h) * hd + i;
        s0[h] = _mm256_fmadd_ps(_mm256_loadu_ps(qh), r0, s0[h]);
        s1[h] = _mm256_fmadd_ps(_mm256_loadu_ps(qh + 8), r1, s1[h]);
      }
    }
    for (int h = 0; h < NH; h++) scores[h * count + t] = hsum8(_mm256_add_ps(s0[h], s1[h])) * scale;
  }
  float inv[NH];
  for (int h = 0; h < NH; h++) {
    float den;
    attend_softmax(scores + h * count, count, sink[h0 + h], den);
    inv[h] = 1.0f / den;
  }
  for (int i = 0; i < hd; i += 16) {
    __m256 o0[NH], o1[NH];
    for (int h = 0; h < NH; h++) o0[h] = o1[h] = _mm256_setzero_ps();
    for (int t = 0; t < count; t++) {
      const float* row = rows[t];
      if (!row) continue;
      const __m256 r0 = _mm256_loadu_ps(row + i), r1 = _mm256_loadu_ps(row + i + 8);
      for (int h = 0; h < NH; h++) {
        const __m256 p = _mm256_broadcast_ss(scores + h * count + t);
        o0[h] = _mm256_fmadd_ps(p, r0, o0[h]);
        o1[h] = _mm256_fmadd_ps(p, r1, o1[h]);
      }
    }
    for (int h = 0; h < NH; h++) {
      float* oh = out + static_cast<size_t>(h0 + h) * hd + i;
      const __m256 s = _mm256_set1_ps(inv[h]);
      _mm256_storeu_ps(oh, _mm256_mul_ps(o0[h], s));
      _mm256_storeu_ps(oh + 8, _mm256_mul_ps(o1[h], s));
    }
  }
}
#endif

void attend_impl(const float* q, float* out, const float* const* rows, int count, int h0, int nh, int hd,
                 const float* sink, float scale, float* scores) {
#ifdef DSV4_AVX2
  if (hd % 16 == 0 && count > 0) {
    int h = h0;
    for (; h + 4 <= h0 + nh; h += 4) attend_heads<4>(q, out, rows, count, h, hd, sink, scale, scores);
    for (; h < h0 + nh; h++) attend_heads<1>(q, out, rows, count, h, hd, sink, scale, scores);
    return;
  }
#endif
  attend_portable(q, out, rows, count, h0, nh, hd, sink, scale, scores);
}

// The hyper-connection mixes of one row, as ops.cc had them: the same operations in the same
// order per element (a double product, a double sum, a float rounding per term), which GCC
// vectorises at each table's width (the avx512 table 2.5x the baseline build's loops, with the
// same bits: kernel_check hashes them on every table).
void hc_collapse_row_impl(const float* X, int hc, int dim, const double* pre, float* out) {
  for (int i = 0; i < dim; i++) out[i] = 0;
  for (int j = 0; j < hc; j++) {
    const double p = pre[j];
    const float* x = X + static_cast<size_t>(j) * dim;
    for (int i = 0; i < dim; i++) out[i] = static_cast<float>(static_cast<double>(out[i]) + p * static_cast<double>(x[i]));
  }
}

void hc_expand_row_impl(const float* y, const float* X, int hc, int dim, const double* post, const double* comb, float* out) {
  for (int k = 0; k < hc; k++) {
    float* o = out + static_cast<size_t>(k) * dim;
    const double p = post[k];
    for (int i = 0; i < dim; i++) o[i] = static_cast<float>(p * static_cast<double>(y[i]));
    for (int j = 0; j < hc; j++) {
      const double c = comb[j * hc + k];
      const float* x = X + static_cast<size_t>(j) * dim;
      for (int i = 0; i < dim; i++) o[i] = static_cast<float>(static_cast<double>(o[i]) + c * static_cast<double>(x[i]));
    }
  }
}

uint64_t read_sum_impl(const uint8_t* p, size_t bytes) {
#ifdef DSV4_AVX2
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) + _mm256_extract_epi64(s, 3));
#else
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (size_t i = 0; i < bytes / 8; i += 4) {
    a0 += w[i];
    a1 += w[i + 1];
    a2 += w[i + 2];
    a3 += w[i + 3];
  }
  return a0 + a1 + a2 + a3;
#endif
}

// The compute-peak probes' loop: twelve independent chains of `OP` (three operands: the
// chain last) over registers `REG` ("zmm" or "ymm"), zeroed with `ZERO`, `rounds` times. Twelve
// chains keep two pipes busy through a latency of up to six cycles. Written in assembly
// because the compiler kept the chains of the C++ form in memory (one load and store per FMA:
// half the peak).
#define DSV4_PEAK_R(REG, i) "%%" REG #i
#define DSV4_PEAK_MOV(REG, i) "vmovaps " DSV4_PEAK_R(REG, 0) ", " DSV4_PEAK_R(REG, i) "\n\t"
#define DSV4_PEAK_OP(OP, REG, i) OP " " DSV4_PEAK_R(REG, 15) ", " DSV4_PEAK_R(REG, 14) ", " DSV4_PEAK_R(REG, i) "\n\t"
#define DSV4_PEAK_LOOP(ZERO, OP, REG, rounds)                                                                                            \
  do {                                                                                                                                   \
    long n = (rounds);                                                                                                                   \
    __asm__ volatile(ZERO " " DSV4_PEAK_R(REG, 0) ", " DSV4_PEAK_R(REG, 0) ", " DSV4_PEAK_R(REG, 0) "\n\t" DSV4_PEAK_MOV(REG, 1)          \
                         DSV4_PEAK_MOV(REG, 2) DSV4_PEAK_MOV(REG, 3) DSV4_PEAK_MOV(REG, 4) DSV4_PEAK_MOV(REG, 5) DSV4_PEAK_MOV(REG, 6)     \
                             DSV4_PEAK_MOV(REG, 7) DSV4_PEAK_MOV(REG, 8) DSV4_PEAK_MOV(REG, 9) DSV4_PEAK_MOV(REG, 10)                   \
                                 DSV4_PEAK_MOV(REG, 11) DSV4_PEAK_MOV(REG, 14) DSV4_PEAK_MOV(REG, 15) "1:\n\t" DSV4_PEAK_OP(OP, REG, 0) \
                                     DSV4_PEAK_OP(OP, REG, 1) DSV4_PEAK_OP(OP, REG, 2) DSV4_PEAK_OP(OP, REG, 3) DSV4_PEAK_OP(OP, REG, 4)  \
                                         DSV4_PEAK_OP(OP, REG, 5) DSV4_PEAK_OP(OP, REG, 6) DSV4_PEAK_OP(OP, REG, 7)                      \
                                             DSV4_PEAK_OP(OP, REG, 8) DSV4_PEAK_OP(OP, REG, 9) DSV4_PEAK_OP(OP, REG, 10)                 \
                                                 DSV4_PEAK_OP(OP, REG, 11) "dec %0\n\tjnz 1b\n\tvzeroupper"                             \
                     : "+r"(n)                                                                                                           \
                     :                                                                                                                   \
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15", \
                       "cc");                                                                                                            \
  } while (0)

// The FMA-peak probe: the multiply-adds of the table's vector width.
double fma_peak_impl(long rounds) {
#if defined(DSV4_AVX512)
  // 512-bit vectors: the avx512 table's strip kernels run at this width.
  DSV4_PEAK_LOOP("vpxord", "vfmadd213ps", "zmm", rounds);
  return 2.0 * 16 * 12 * static_cast<double>(rounds);
#elif defined(DSV4_AVX2)
  DSV4_PEAK_LOOP("vxorps", "vfmadd213ps", "ymm", rounds);
  return 2.0 * 8 * 12 * static_cast<double>(rounds);
#else
  // Portable: the compiler's own code for twelve independent multiply-add chains.
  float a[12];
  for (int i = 0; i < 12; i++) a[i] = 0.001f * i;
  for (long it = 0; it < rounds; it++)
    for (int i = 0; i < 12; i++) a[i] = a[i] * 0.9999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 12; i++) s += a[i];
  volatile float sink = s;
  (void)sink;
  return 2.0 * 12 * static_cast<double>(rounds);
#endif
}

// The bf16 dot-product peak (vdpbf16ps: two products per lane per instruction), as the FMA
// probe with the products the avx512bf16 table's FP8, FP4 and BF16 dot paths run on; 0 for
// tables without them, whose products never use bf16 dot products.
double dot_peak_impl(long rounds) {
#if defined(DSV4_AVX512_BF16)
  DSV4_PEAK_LOOP("vpxord", "vdpbf16ps", "zmm", rounds);
  return 4.0 * 16 * 12 * static_cast<double>(rounds);
#else
  (void)rounds;
  return 0;
#endif
}

#undef DSV4_PEAK_LOOP
#undef DSV4_PEAK_OP
#undef DSV4_PEAK_MOV
#undef DSV4_PEAK_R

}  // namespace
}  // namespace dsv4
