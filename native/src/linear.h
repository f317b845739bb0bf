#pragma once
#include "matrix.h"

namespace dsv4 {

// out[r, n] = sum_k x[r, k] * W[n, k] for `rows` rows, with the reference's activation
// quantisation when act_quant; split over the thread pool in tiles of output rows.
void linear(const Matrix& w, const float* x, int rows, bool act_quant, float* out);

// linear() for rows already prepared (KernelTable::prepare), split over the pool as linear() does.
void linear_pooled(const Matrix& w, const float* prepared, int rows, float* out);

// out = w(x) for rows the table's prepare() has laid out (prepared_width apart), on the calling
// thread: for products inside a pool task (routed_experts).
void linear_prepared(const Matrix& w, const float* prepared, int rows, float* out);

// Throws std::runtime_error when the kernel table in use cannot read w: an FP4 matrix repacked
// for another table (Matrix::fp4_packed), after a switch of tables. Call before a pool runs.
void check_readable(const Matrix& w);

}  // namespace dsv4
