#include "sampling.h"

#include "kernels.h"

#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <limits>

namespace dsv4 {

namespace {

// One weight, as softmax.ts computes it: y = n + j/64 + f, 2^y = 2^n * 2^(j/64) * 2^f, the
// product taken left to right. m is Math.floor(y * 64) as an int32 (JavaScript's >> and &).
// (y * 64 lies in (-68736, 0]: its truncation fits an int32, and floor is that or one less;
// std::floor is a library call on the baseline x86-64 the addon is built for.)
inline double weight(double y, const double* frac, const double* neg, const double* L, int32_t& m) {
  const double y64 = y * 64;
  m = static_cast<int32_t>(y64);
  if (static_cast<double>(m) > y64) m--;
  const double mf = static_cast<double>(m);
  const double f = y - mf * 0.015625;
  return neg[-(m >> 6)] * frac[m & 63] * (1 + f * (L[0] + f * (L[1] + f * (L[2] + f * (L[3] + f * L[4])))));
}

// shifted_exp's scalar loop over x[i, n), adding to `sum` (the AVX-512 loop's tail starts it
// part way); Binned: also the histogram. Two instances rather than a test per element, as in
// softmax.ts.
template <bool Binned>
double shifted_exp_scalar(const float* x, size_t i, size_t n, double max, double scale, const double* frac, const double* neg, const double* L,
                          double* out, uint16_t* bin, double* count, double* mass, double sum) {
  const uint16_t zeros = static_cast<uint16_t>(kWeightBins - 1);
  for (; i < n; i++) {
    const double y = (static_cast<double>(x[i]) - max) * scale;
    if (!(y > -1074)) {
      out[i] = 0;
      if (Binned) {
        bin[i] = zeros;
        count[zeros]++;
      }
      continue;
    }
    int32_t m;
    const double e = weight(y, frac, neg, L, m);
    out[i] = e;
    sum += e;
    if (Binned) {
      const int32_t b = m == 0 ? 0 : -(m >> 4) - 1;
      bin[i] = static_cast<uint16_t>(b);
      count[b]++;
      mass[b] += e;
    }
  }
  return sum;
}

#if defined(__x86_64__)
// Eight weights at a time with AVX-512: the same operations per element (a floor, products and
// sums of doubles, the two table reads as gathers), none fused, so each weight is the scalar
// one; the sum, the bins' counts and masses are then added in index order as before. Lanes
// whose y is not above -1074 (NaN included) compute from y = 0 and store 0. (The zero-masked
// intrinsics: GCC 12 warns about the plain ones' undefined pass-through source.)
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) double shifted_exp_avx512(const float* x, size_t n, double max, double scale, const double* frac,
                                                                             const double* neg, const double* L, double* out, uint16_t* bin,
                                                                             double* count, double* mass) {
  const __m512d vmax = _mm512_set1_pd(max), vscale = _mm512_set1_pd(scale), floor_y = _mm512_set1_pd(-1074);
  const __m512d c64 = _mm512_set1_pd(64), c1_64 = _mm512_set1_pd(0.015625), one = _mm512_set1_pd(1);
  const __m512d l0 = _mm512_set1_pd(L[0]), l1 = _mm512_set1_pd(L[1]), l2 = _mm512_set1_pd(L[2]), l3 = _mm512_set1_pd(L[3]), l4 = _mm512_set1_pd(L[4]);
  const uint16_t zeros = static_cast<uint16_t>(kWeightBins - 1);
  double sum = 0;
  size_t i = 0;
  alignas(64) double e8[8];
  alignas(32) int32_t b8[8];
  for (; i + 8 <= n; i += 8) {
    __m512d y = _mm512_mul_pd(_mm512_sub_pd(_mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(x + i)), vmax), vscale);
    const __mmask8 live = _mm512_cmp_pd_mask(y, floor_y, _CMP_GT_OQ);
    y = _mm512_maskz_mov_pd(live, y);
    const __m512d mf = _mm512_maskz_roundscale_pd(0xFF, _mm512_mul_pd(y, c64), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m256i m = _mm512_maskz_cvtpd_epi32(0xFF, mf);
    const __m512d f = _mm512_sub_pd(y, _mm512_mul_pd(mf, c1_64));
    const __m256i ni = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_srai_epi32(m, 6));
    const __m256i fi = _mm256_and_si256(m, _mm256_set1_epi32(63));
    const __m512d p = _mm512_add_pd(one, _mm512_mul_pd(f, _mm512_add_pd(l0, _mm512_mul_pd(f, _mm512_add_pd(l1, _mm512_mul_pd(f, _mm512_add_pd(l2, _mm512_mul_pd(f, _mm512_add_pd(l3, _mm512_mul_pd(f, l4))))))))));
    const __m512d e = _mm512_maskz_mov_pd(live, _mm512_mul_pd(_mm512_mul_pd(_mm512_mask_i32gather_pd(_mm512_setzero_pd(), 0xFF, ni, neg, 8), _mm512_mask_i32gather_pd(_mm512_setzero_pd(), 0xFF, fi, frac, 8)), p));
    _mm512_storeu_pd(out + i, e);
    _mm512_store_pd(e8, e);
    if (!bin) {
      for (int k = 0; k < 8; k++) sum += e8[k];
      continue;
    }
    // Bin of a live weight: 0 when m is 0, else -(m >> 4) - 1; the zeros' bin otherwise.
    const __m256i b = _mm256_sub_epi32(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_srai_epi32(m, 4)), _mm256_set1_epi32(1));
    const __m256i bz = _mm256_mask_blend_epi32(_mm256_cmpeq_epi32_mask(m, _mm256_setzero_si256()), b, _mm256_setzero_si256());
    _mm256_store_si256(reinterpret_cast<__m256i*>(b8), _mm256_mask_blend_epi32(live, _mm256_set1_epi32(zeros), bz));
    for (int k = 0; k < 8; k++) {
      const int32_t bk = b8[k];
      bin[i + k] = static_cast<uint16_t>(bk);
      count[bk]++;
      if ((live >> k) & 1) {
        sum += e8[k];
        mass[bk] += e8[k];
      }
    }
  }
  return bin ? shifted_exp_scalar<true>(x, i, n, max, scale, frac, neg, L, out, bin, count, mass, sum)
             : shifted_exp_scalar<false>(x, i, n, max, scale, frac, neg, L, out, nullptr, nullptr, nullptr, sum);
}

// The largest of x[0, n) ignoring NaN (vmaxps returns its second operand when either is NaN,
// and the running maximum, there, never is), -Infinity when none is larger. (The zero-masked
// max: GCC 12 warns about the plain one's undefined pass-through source.)
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) float max_avx512(const float* x, size_t n) {
  __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_maskz_max_ps(0xFFFF, _mm512_loadu_ps(x + i), acc);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float m = lanes[0];
  for (int k = 1; k < 16; k++)
    if (lanes[k] > m) m = lanes[k];
  for (; i < n; i++)
    if (x[i] > m) m = x[i];
  return m;
}

// The first index of `value` in x[0, n) (n when absent).
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"))) size_t find_avx512(const float* x, size_t n, float value) {
  const __m512 v = _mm512_set1_ps(value);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), v, _CMP_EQ_OQ);
    if (eq) return i + static_cast<size_t>(__builtin_ctz(eq));
  }
  for (; i < n; i++)
    if (x[i] == value) return i;
  return n;
}

// The AVX-512 loop where the CPU has it and the kernels in use are an avx512 table (so
// DSV4_ISA=avx2 or selectIsa, as in the tests, runs the scalar loop).
bool use_avx512() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512bw");
  return cpu && std::strncmp(kernels().isa, "avx512", 6) == 0;
}
#endif

}  // namespace

double shifted_exp(const float* x, size_t n, double max, double scale, const double* tables, double* out, uint16_t* bin,
                   double* count, double* mass) {
  const double* frac = tables;
  const double* neg = tables + 64;
  const double* L = tables + 64 + 1075;
  if (bin) {
    std::memset(count, 0, kWeightBins * sizeof(double));
    std::memset(mass, 0, kWeightBins * sizeof(double));
  }
#if defined(__x86_64__)
  if (use_avx512()) return shifted_exp_avx512(x, n, max, scale, frac, neg, L, out, bin, count, mass);
#endif
  return bin ? shifted_exp_scalar<true>(x, 0, n, max, scale, frac, neg, L, out, bin, count, mass, 0)
             : shifted_exp_scalar<false>(x, 0, n, max, scale, frac, neg, L, out, nullptr, nullptr, nullptr, 0);
}

double max_of(const float* x, size_t n) {
#if defined(__x86_64__)
  if (use_avx512()) return max_avx512(x, n);
#endif
  double max = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; i++)
    if (static_cast<double>(x[i]) > max) max = x[i];
  return max;
}

size_t argmax_of(const float* x, size_t n) {
#if defined(__x86_64__)
  // The first occurrence of the maximum is the index the strict comparison below settles on.
  if (use_avx512()) {
    const float m = max_avx512(x, n);
    return m == -std::numeric_limits<float>::infinity() ? 0 : find_avx512(x, n, m);
  }
#endif
  size_t best = 0;
  double best_v = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; i++) {
    const double v = x[i];
    if (v > best_v) {
      best_v = v;
      best = i;
    }
  }
  return best;
}

size_t draw_kept(const double* w, size_t n, double threshold, double at_threshold, double lowest, double u) {
  double ties = at_threshold;
  double acc = 0;
  size_t last = 0;
  for (size_t i = 0; i < n; i++) {
    const double v = w[i];
    if (v >= lowest && (v > threshold || (v == threshold && ties-- > 0))) {
      acc += v;
      last = i;
      if (u < acc) return i;
    }
  }
  return last;
}

double kept_mass(const double* w, size_t n, double threshold, double at_threshold, double lowest) {
  double ties = at_threshold;
  double mass = 0;
  for (size_t i = 0; i < n; i++) {
    const double v = w[i];
    if (v >= lowest && (v > threshold || (v == threshold && ties-- > 0))) mass += v;
  }
  return mass;
}

size_t gather_bin(const double* w, size_t n, const uint16_t* bin, uint16_t b, bool above, double* out) {
  size_t k = 0;
  if (above) {
    for (size_t i = 0; i < n; i++)
      if (bin[i] > b) out[k++] = w[i];
  } else {
    for (size_t i = 0; i < n; i++)
      if (bin[i] == b) out[k++] = w[i];
  }
  return k;
}

}  // namespace dsv4
