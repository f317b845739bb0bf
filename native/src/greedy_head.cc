// Greedy tokens from a BF16 product with a certified first pass.
//
// A greedy step needs the largest logit, not all 129,280 of them. With several activation
// rows the exact float path is bound by its multiply-adds (one per weight and row), while the
// bf16 dot-product path does two per instruction lane but needs bf16 activations. So:
//
// 1. x̂ = x rounded to bf16 (0 below 2^-56, the dot path's range); A = w·x̂ on the dot path.
// 2. Every exact output L_n (the float path's, whatever its order of summation) satisfies
//    |L_n - A_n| <= E_n = |w_n| (|x - x̂| + γ (|x| + |x̂|)) (Euclidean norms, Cauchy-Schwarz):
//    |w_n·(x - x̂)| <= |w_n| |x - x̂|, and a sum of K products formed in any order with at
//    most K + 64 roundings (FMA chains, pair sums, horizontal sums; vdpbf16ps rounds twice per
//    pair) is within γ = m u / (1 - m u), m = K + 64, u = 2^-24, of the real sum, relative
//    to the sum of the products' magnitudes, itself at most |w_n| |x|. Norms are taken in
//    double and rounded up; a small factor and 2^-100 cover their own rounding and any
//    result below float's normal range.
// 3. With M = max over the unmasked n of (A_n - E_n), an output with A_n + E_n < M is below
//    the exact value of the output that reached M, so it is not the maximum and not tied with
//    it. Only the others (a handful: the bound is ~|w_n| |x| 2^-9) are computed exactly, by
//    the table's own kernel on one output at a time, which gives the bits linear() gives
//    (every kernel shape does the same arithmetic per output), and the first of the largest
//    is the token.
// Anything the bound does not cover (a non-finite value, activations of 2^50 or more, sums
// that could overflow, too many candidates) leaves the row to the caller's exact path, or is
// computed whole here.
#include "greedy_head.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "linear.h"
#include "quant_inline.h"
#include "scratch.h"
#include "thread_pool.h"

namespace dsv4 {

namespace {
constexpr float kSmallest = 0x1p-56f;  // below it x̂ is 0 (the dot path's range starts there)
constexpr float kLargest = 0x1p50f;    // from it on the row goes to the caller
// More candidates than this and the row is computed whole.
constexpr size_t kMostCandidates = 4096;

// Round to nearest even bf16 (|v| < 2^50, finite), 0 below kSmallest.
float bf16_round(float v) {
  if (std::fabs(v) < kSmallest) return 0.0f;
  const uint32_t b = f2u(v);
  return u2f((b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u);
}

// The smallest float not below v (v >= 0).
float round_up(double v) {
  const float f = static_cast<float>(v);
  return static_cast<double>(f) < v ? std::nextafter(f, std::numeric_limits<float>::infinity()) : f;
}

const RowNorms& row_norms(const Matrix& w) {
  RowNorms& rn = *w.row_norms;
  std::call_once(rn.once, [&] {
    resize_or_fail(rn.norms, static_cast<size_t>(w.N), "bf16 row norms");
    // A sum of K squares of bf16 values in double: each square exact, the sum within
    // (K + 2) 2^-53 of the real one with the square root's rounding.
    const double inflate = 1.0 + (w.K + 2.0) * 0x1p-52;
    constexpr int kRowsPerTask = 256;
    pool().run((w.N + kRowsPerTask - 1) / kRowsPerTask, [&](int t, int) {
      for (int n = t * kRowsPerTask; n < std::min(w.N, (t + 1) * kRowsPerTask); n++) {
        const uint16_t* v = reinterpret_cast<const uint16_t*>(w.row(n));
        double s = 0;
        for (int k = 0; k < w.K; k++) {
          const double f = bf16_value(v[k]);
          s += f * f;
        }
        const double norm = std::sqrt(s) * inflate;
        rn.norms[n] = std::isfinite(norm) ? round_up(norm) : std::numeric_limits<float>::infinity();
      }
    });
    rn.largest = *std::max_element(rn.norms.begin(), rn.norms.end());
  });
  return rn;
}

// One row's token from its first-pass outputs A (N floats, overwritten: masked ids, then the
// exact candidates). xe: the row prepared exactly. Returns -1 when undecided.
int32_t decide(const Matrix& w, const RowNorms& rn, float* A, const float* xe, const int32_t* masked, int masks, double c1, double c0, int32_t* exact) {
  const KernelTable& k = kernels();
  const int N = w.N;
  const auto mask = [&] {
    for (int i = 0; i < masks; i++)
      if (masked[i] >= 0 && masked[i] < N) A[masked[i]] = -std::numeric_limits<float>::infinity();
  };
  mask();
  const auto is_masked = [&](int n) { return std::find(masked, masked + masks, n) != masked + masks; };
  thread_local std::vector<int32_t> cands;
  cands.clear();
  double M = -std::numeric_limits<double>::infinity();
  // One pass: the candidates against the running M (a superset), filtered after.
  for (int n = 0; n < N; n++) {
    const float a = A[n];
    if (!std::isfinite(a)) {
      if (a == -std::numeric_limits<float>::infinity() && is_masked(n)) continue;
      return -1;
    }
    const double e = static_cast<double>(rn.norms[n]) * c1 + c0;
    const double lo = a - e;
    if (lo > M) M = lo;
    if (a + e >= M) cands.push_back(n);
  }
  if (M == -std::numeric_limits<double>::infinity()) return -1;  // every output masked
  size_t kept = 0;
  for (const int32_t n : cands)
    if (A[n] + (static_cast<double>(rn.norms[n]) * c1 + c0) >= M) cands[kept++] = n;
  cands.resize(kept);
  if (cands.size() > kMostCandidates) {
    k.linear(w, xe, 1, A, N, 0, N);
    mask();
    cands.resize(N);
    for (int n = 0; n < N; n++) cands[n] = n;
  } else {
    // Exact outputs, a run of consecutive candidates per call.
    for (size_t i = 0; i < cands.size();) {
      size_t j = i + 1;
      while (j < cands.size() && cands[j] == cands[j - 1] + 1) j++;
      k.linear(w, xe, 1, A, N, cands[i], cands[j - 1] + 1);
      i = j;
    }
  }
  if (exact) *exact = static_cast<int32_t>(cands.size());
  int32_t best = -1;
  float best_v = -std::numeric_limits<float>::infinity();
  for (const int32_t n : cands)
    if (A[n] > best_v) {
      best_v = A[n];
      best = n;
    }
  return best;
}
}  // namespace

void greedy_rows(const Matrix& w, const float* x, int rows, const int32_t* masked, const int32_t* mask_at, int32_t* out, int32_t* exact) {
  const KernelTable& k = kernels();
  std::fill(out, out + rows, -1);
  if (exact) std::fill(exact, exact + rows, 0);
  if (rows <= 0 || w.format != Format::BF16 || !k.bf16_dot_ready(w)) return;
  const RowNorms& rn = row_norms(w);
  const int K = w.K, N = w.N;
  // x̂ of every row, and each row's bound factor (negative: the row goes to the caller).
  float* xh = static_cast<float*>(scratch(Scratch::GreedyInput, static_cast<size_t>(rows) * K * sizeof(float)));
  std::vector<double> c1(rows, -1.0);
  const double m = K + 64.0, u = 0x1p-24;
  const double gamma = m * u / (1 - m * u);
  bool any = false;
  for (int r = 0; r < rows; r++) {
    const float* xr = x + static_cast<size_t>(r) * K;
    float* hr = xh + static_cast<size_t>(r) * K;
    double x2 = 0, h2 = 0, d2 = 0;
    bool ok = true;
    for (int i = 0; i < K; i++) {
      const float v = xr[i];
      if (!(std::fabs(v) < kLargest)) {  // NaN included
        ok = false;
        break;
      }
      hr[i] = bf16_round(v);
      const double d = static_cast<double>(v) - hr[i];
      x2 += static_cast<double>(v) * v;
      h2 += static_cast<double>(hr[i]) * hr[i];
      d2 += d * d;
    }
    // Every |L_n| stays below |w_n| |x| (1 + γ): far from float's overflow here.
    if (ok && static_cast<double>(rn.largest) * std::sqrt(x2) < 0x1p120) {
      c1[r] = (std::sqrt(d2) + gamma * (std::sqrt(x2) + std::sqrt(h2))) * (1 + 0x1p-20);
      any = true;
    } else {
      std::fill(hr, hr + K, 0.0f);
    }
  }
  if (!any) return;
  const size_t width = k.prepared_width(w);
  float* prepared = static_cast<float*>(scratch(Scratch::Prepared, width * static_cast<size_t>(rows) * sizeof(float)));
  k.prepare(w, xh, rows, false, prepared);
  float* A = static_cast<float*>(scratch(Scratch::GreedyLogits, static_cast<size_t>(rows) * N * sizeof(float)));
  linear_pooled(w, prepared, rows, A);
  constexpr double c0 = 0x1p-100;
  pool().run(rows, [&](int r, int) {
    if (c1[r] < 0) return;
    float* xe = static_cast<float*>(scratch(Scratch::GreedyExact, width * sizeof(float)));
    k.prepare(w, x + static_cast<size_t>(r) * K, 1, false, xe);
    out[r] = decide(w, rn, A + static_cast<size_t>(r) * N, xe, masked + mask_at[r], mask_at[r + 1] - mask_at[r], c1[r], c0, exact ? exact + r : nullptr);
  });
}

}  // namespace dsv4
