#include "ops.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "scratch.h"
#include "thread_pool.h"

namespace dsv4 {

void rms_norm(const float* x, int rows, int dim, const float* weight, float eps, float* out) {
  const KernelTable& k = kernels();
  for (int r = 0; r < rows; r++) {
    const float* xr = x + static_cast<size_t>(r) * dim;
    float* o = out + static_cast<size_t>(r) * dim;
    float inv = 1.0f / std::sqrt(k.dot(xr, xr, dim) / static_cast<float>(dim) + eps);
    if (weight) {
      for (int i = 0; i < dim; i++) o[i] = weight[i] * (xr[i] * inv);
    } else {
      for (int i = 0; i < dim; i++) o[i] = xr[i] * inv;
    }
  }
}

void rope(float* x, int segments, int stride, const double* cos, const double* sin, int half, bool inverse) {
  float c[512], s[512];
  std::vector<float> big;
  float* cf = c;
  float* sf = s;
  if (half > 512) {
    resize_or_fail(big, 2 * static_cast<size_t>(half), "rope tables");
    cf = big.data();
    sf = big.data() + half;
  }
  for (int i = 0; i < half; i++) {
    cf[i] = static_cast<float>(cos[i]);
    sf[i] = static_cast<float>(inverse ? -sin[i] : sin[i]);
  }
  for (int seg = 0; seg < segments; seg++) {
    float* v = x + static_cast<size_t>(seg) * stride;
    for (int i = 0; i < half; i++) {
      float a = v[2 * i], b = v[2 * i + 1];
      v[2 * i] = a * cf[i] - b * sf[i];
      v[2 * i + 1] = a * sf[i] + b * cf[i];
    }
  }
}

void hadamard(float* x, int length, int n) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(n));
  for (int seg = 0; seg < length; seg += n) {
    float* v = x + seg;
    for (int h = 1; h < n; h *= 2)
      for (int i = 0; i < n; i += 2 * h)
        for (int j = i; j < i + h; j++) {
          float a = v[j], b = v[j + h];
          v[j] = a + b;
          v[j + h] = a - b;
        }
    for (int j = 0; j < n; j++) v[j] *= scale;
  }
}

void attention(const float* q, float* out, const AttentionSource* sources, int nsources, int heads, int head_dim,
               const float* sink, float scale) {
  const KernelTable& k = kernels();
  thread_local std::vector<const float*> rows;
  size_t total = 0;
  for (int s = 0; s < nsources; s++) total += static_cast<size_t>(sources[s].count);
  resize_or_fail(rows, total, "attention row pointers");
  size_t at = 0;
  for (int s = 0; s < nsources; s++) {
    const AttentionSource& src = sources[s];
    for (int t = 0; t < src.count; t++)
      rows[at++] = src.indices[t] < 0 ? nullptr : src.rows + static_cast<size_t>(src.indices[t]) * head_dim;
  }
  const int count = static_cast<int>(rows.size());
  const float* const* rp = rows.data();
  // Tasks of four heads: every head reads the same rows (one KV head), so a task loads each
  // row once for four heads.
  constexpr int kHeadsPerTask = 4;
  const int tasks = (heads + kHeadsPerTask - 1) / kHeadsPerTask;
  auto block = [&](int task, int) {
    thread_local std::vector<float> scores;
    resize_or_fail(scores, static_cast<size_t>(kHeadsPerTask) * count + 1, "attention scores");
    const int h0 = task * kHeadsPerTask;
    k.attend(q, out, rp, count, h0, std::min(kHeadsPerTask, heads - h0), head_dim, sink, scale, scores.data());
  };
  const size_t work = static_cast<size_t>(heads) * count * head_dim;
  if (work < 64 * 1024) {
    for (int t = 0; t < tasks; t++) block(t, 0);
  } else {
    pool().run(tasks, block);
  }
}

void softmax_pool(const float* kv, const float* score, const int32_t* slots, int nslots, int width, int row_stride,
                  float* out) {
  for (int j = 0; j < width; j++) {
    float m = -INFINITY;
    for (int s = 0; s < nslots; s++) {
      float v = score[static_cast<size_t>(slots[2 * s]) * row_stride + slots[2 * s + 1] + j];
      if (v > m) m = v;
    }
    float den = 0, num = 0;
    for (int s = 0; s < nslots; s++) {
      size_t i = static_cast<size_t>(slots[2 * s]) * row_stride + slots[2 * s + 1] + j;
      float p = std::exp(score[i] - m);
      den += p;
      num += p * kv[i];
    }
    out[j] = num / den;
  }
}

void indexer_scores(const float* q, const float* weights, int heads, int head_dim, const float* keys, int count,
                    double* out) {
  const KernelTable& k = kernels();
  for (int s = 0; s < count; s++) {
    const float* key = keys + static_cast<size_t>(s) * head_dim;
    float total = 0;
    for (int h = 0; h < heads; h++) {
      float d = k.dot(q + static_cast<size_t>(h) * head_dim, key, head_dim);
      if (d > 0) total += d * weights[h];
    }
    out[s] = total;
  }
}

namespace {
// Rows per task: enough work per task to pay for the dispatch.
template <class F>
void over_rows(int rows, size_t row_work, F&& fn) {
  const int per = static_cast<int>(std::max<size_t>(1, (64 * 1024) / std::max<size_t>(1, row_work)));
  const int tasks = (rows + per - 1) / per;
  pool().run(tasks, [&](int t, int) {
    const int r1 = std::min(rows, (t + 1) * per);
    for (int r = t * per; r < r1; r++) fn(r);
  });
}
}  // namespace

void hc_collapse(const float* X, int rows, int hc, int dim, const double* pre, float* out) {
  const KernelTable& k = kernels();
  over_rows(rows, static_cast<size_t>(hc) * dim, [&](int r) {
    k.hc_collapse_row(X + static_cast<size_t>(r) * hc * dim, hc, dim, pre + static_cast<size_t>(r) * hc, out + static_cast<size_t>(r) * dim);
  });
}

void hc_expand(const float* y, const float* X, int rows, int hc, int dim, const double* post, const double* comb, float* out) {
  const KernelTable& k = kernels();
  over_rows(rows, static_cast<size_t>(hc) * hc * dim, [&](int r) {
    k.hc_expand_row(y + static_cast<size_t>(r) * dim, X + static_cast<size_t>(r) * hc * dim, hc, dim, post + static_cast<size_t>(r) * hc,
                    comb + static_cast<size_t>(r) * hc * hc, out + static_cast<size_t>(r) * hc * dim);
  });
}

void swiglu_rows(float* g, const float* u, int r0, int r1, int dim, double limit, const double* row_weights) {
  for (int r = r0; r < r1; r++) {
    float* gr = g + static_cast<size_t>(r) * dim;
    const float* ur = u + static_cast<size_t>(r) * dim;
    for (int i = 0; i < dim; i++) {
      double gi = gr[i], ui = ur[i];
      if (limit > 0) {
        gi = std::min(gi, limit);
        ui = std::min(std::max(ui, -limit), limit);
      }
      const double h = (gi / (1 + std::exp(-gi))) * ui;
      gr[i] = static_cast<float>(row_weights ? row_weights[r] * h : h);
    }
  }
}

void swiglu(float* g, const float* u, int rows, int dim, double limit, const double* row_weights) {
  over_rows(rows, static_cast<size_t>(dim) * 8, [&](int r) { swiglu_rows(g, u, r, r + 1, dim, limit, row_weights); });
}

void add_rows(float* y, const float* src, const int32_t* row_index, int n, int dim) {
  for (int i = 0; i < n; i++) {
    float* yr = y + static_cast<size_t>(row_index[i]) * dim;
    const float* s = src + static_cast<size_t>(i) * dim;
    for (int j = 0; j < dim; j++) yr[j] += s[j];
  }
}

double memory_bandwidth(size_t bytes, int reps) {
  const KernelTable& k = kernels();
  bytes &= ~static_cast<size_t>(4095);
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (!buf) allocation_failed(bytes, "bandwidth probe buffer");
  std::memset(buf, 1, bytes);  // fault every page in before timing
  ThreadPool& p = pool();
  // Many chunks, taken dynamically: on a shared machine threads progress unevenly.
  const int chunks = p.threads() * 16;
  const size_t per = (bytes / chunks) & ~static_cast<size_t>(127);
  std::vector<uint64_t> sums(static_cast<size_t>(p.threads()) * 8, 0);
  double best = 0;
  for (int r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    p.run(chunks, [&](int c, int thread) { sums[static_cast<size_t>(thread) * 8] += k.read_sum(buf + static_cast<size_t>(c) * per, per); });
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double gbs = static_cast<double>(per) * chunks / dt / 1e9;
    if (gbs > best) best = gbs;
  }
  volatile uint64_t sink = 0;
  for (uint64_t v : sums) sink = sink + v;
  std::free(buf);
  return best;
}

double fma_peak(int reps, bool dot) {
  const KernelTable& k = kernels();
  ThreadPool& p = pool();
  constexpr long kRounds = 100000;  // ~0.5 ms at a few GHz
  const auto probe = dot ? k.dot_peak : k.fma_peak;
  if (dot && probe(1) == 0) return 0;
  // One task per thread, each keeping its own best window: the sum is what the cores can do
  // when they are not shared, which is the peak a kernel is measured against (a product that
  // ran while another process held a core is slowed down exactly like a probe window).
  std::vector<double> best(static_cast<size_t>(p.threads()), 0);
  p.run(p.threads(), [&](int task, int) {
    for (int r = 0; r < reps; r++) {
      auto t0 = std::chrono::steady_clock::now();
      const double flops = probe(kRounds);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best[static_cast<size_t>(task)] = std::max(best[static_cast<size_t>(task)], flops / dt / 1e9);
    }
  });
  double sum = 0;
  for (double b : best) sum += b;
  return sum;
}

double pool_overhead_us(int tasks, int calls) {
  ThreadPool& p = pool();
  double best = 1e30;
  for (int w = 0; w < 5; w++) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < calls; c++) p.run(tasks, [](int, int) {});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s * 1e6 / calls);
  }
  return best;
}

}  // namespace dsv4
