#pragma once
#include "matrix.h"

namespace dsv4 {

// out[r, n] = sum_k x[r, k] * W[n, k] for `rows` rows, with the reference's activation
// quantisation when act_quant; split over the thread pool in tiles of output rows.
void linear(const Matrix& w, const float* x, int rows, bool act_quant, float* out);

// out = w(x) for rows the table's prepare() has laid out (prepared_width apart), on the calling
// thread: for products inside a pool task (routed_experts).
void linear_prepared(const Matrix& w, const float* prepared, int rows, float* out);

}  // namespace dsv4
