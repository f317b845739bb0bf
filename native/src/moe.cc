#include "moe.h"

#include <algorithm>

#include "kernels.h"
#include "linear.h"
#include "ops.h"
#include "scratch.h"
#include "thread_pool.h"

namespace dsv4 {

namespace {
// Rows activation-quantised for w, gathered by `index` (null: in order) from x (K floats apart).
void prepare(const KernelTable& k, const Matrix& w, const float* x, const int32_t* index, int rows, float* prepared) {
  const size_t width = k.prepared_width(w);
  for (int r = 0; r < rows; r++) k.prepare(w, x + static_cast<size_t>(index ? index[r] : r) * w.K, 1, true, prepared + width * r);
}

// Whether rows prepared for a serve b as well (the same format, inputs and so layout).
bool same_preparation(const Matrix& a, const Matrix& b) { return a.format == b.format && a.K == b.K && a.scale_special == b.scale_special; }
}  // namespace

void routed_experts(const RoutedExpert* experts, int n, const float* x, int dim, const int32_t* row_index, const double* row_weights,
                    int inter, double limit, float* y) {
  if (n <= 0) return;
  for (int e = 0; e < n; e++) {
    check_readable(*experts[e].w1);
    check_readable(*experts[e].w2);
    check_readable(*experts[e].w3);
  }
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
    linear_prepared(*ex.w1, prepared, rows, g);
    if (!same_preparation(*ex.w1, *ex.w3)) prepare(k, *ex.w3, x, index, rows, prepared);
    linear_prepared(*ex.w3, prepared, rows, u);
    swiglu_rows(g, u, 0, rows, inter, limit, row_weights + ex.first);
    prepare(k, *ex.w2, g, nullptr, rows, prepared);
    linear_prepared(*ex.w2, prepared, rows, outs + static_cast<size_t>(ex.first) * dim);
  });
  add_rows(y, outs, row_index, total, dim);
}

}  // namespace dsv4
