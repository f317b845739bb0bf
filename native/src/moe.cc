#include "moe.h"

#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "ops.h"
#include "scratch.h"
#include "thread_pool.h"

namespace dsv4 {

namespace {
constexpr size_t kTileBytes = 96 * 1024;  // linear.cc's tile of weight bytes

// Rows activation-quantised for w, gathered by `index` (null: in order) from x (K floats apart).
void prepare(const KernelTable& k, const Matrix& w, const float* x, const int32_t* index, int rows, float* prepared) {
  const size_t width = k.prepared_width(w);
  for (int r = 0; r < rows; r++) k.prepare(w, x + static_cast<size_t>(index ? index[r] : r) * w.K, 1, true, prepared + width * r);
}

// Whether rows prepared for a serve b as well (the same format, inputs and so layout).
bool same_preparation(const Matrix& a, const Matrix& b) { return a.format == b.format && a.K == b.K && a.scale_special == b.scale_special; }

// out = w(prepared rows), on this thread.
void product(const KernelTable& k, const Matrix& w, const float* prepared, int rows, float* out) {
  // One pass over the whole matrix for a decode batch's few rows (the kernels take up to 8 at
  // once); with more, tiles of output rows that stay in L2 while every row group passes, as
  // linear() splits them (128-row scale groups for FP8).
  int tile = w.N;
  if (rows > 8) tile = w.format == Format::FP8 ? kFp8Block : static_cast<int>((std::max<size_t>(4, kTileBytes / w.row_bytes()) + 3) & ~size_t{3});
  for (int n0 = 0; n0 < w.N; n0 += tile) k.linear(w, prepared, rows, out, w.N, n0, std::min(w.N, n0 + tile));
}
}  // namespace

void routed_experts(const RoutedExpert* experts, int n, const float* x, int dim, const int32_t* row_index, const double* row_weights,
                    int inter, double limit, float* y) {
  if (n <= 0) return;
  const KernelTable& k = kernels();
  const int total = experts[n - 1].first + experts[n - 1].count;
  float* outs = static_cast<float*>(scratch(Scratch::ExpertOut, static_cast<size_t>(total) * dim * sizeof(float)));
  pool().run(n, [&](int e, int) {
    const RoutedExpert& ex = experts[e];
    const int rows = ex.count;
    const size_t width = std::max(std::max(k.prepared_width(*ex.w1), k.prepared_width(*ex.w3)), k.prepared_width(*ex.w2));
    float* prepared = static_cast<float*>(scratch(Scratch::Prepared, width * rows * sizeof(float)));
    float* g = static_cast<float*>(scratch(Scratch::ExpertHidden, 2 * static_cast<size_t>(rows) * inter * sizeof(float)));
    float* u = g + static_cast<size_t>(rows) * inter;
    const int32_t* index = row_index + ex.first;
    prepare(k, *ex.w1, x, index, rows, prepared);
    product(k, *ex.w1, prepared, rows, g);
    if (!same_preparation(*ex.w1, *ex.w3)) prepare(k, *ex.w3, x, index, rows, prepared);
    product(k, *ex.w3, prepared, rows, u);
    swiglu_rows(g, u, 0, rows, inter, limit, row_weights + ex.first);
    prepare(k, *ex.w2, g, nullptr, rows, prepared);
    product(k, *ex.w2, prepared, rows, outs + static_cast<size_t>(ex.first) * dim);
  });
  add_rows(y, outs, row_index, total, dim);
}

}  // namespace dsv4
