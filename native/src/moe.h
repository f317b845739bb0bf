#pragma once
#include <cstdint>

#include "matrix.h"

namespace dsv4 {

// One routed expert of a layer and the batch rows it was picked for: rows
// [first, first + count) of routed_experts' row_index / row_weights.
struct RoutedExpert {
  const Matrix* w1;
  const Matrix* w3;
  const Matrix* w2;
  int first;
  int count;
};

// y[row] += w2(swiglu(w1(x[row]), w3(x[row])) * weight) for every pick, the experts' outputs
// added in the order given (ascending expert id, as the reference accumulates): the same
// products, SwiGLU and sums as one linear / swiglu / addRows call per expert, bit for bit.
// Each expert runs whole on one thread of the pool, so a decode step's dozens of small
// experts cost one pool job instead of three products and their hand-offs each.
void routed_experts(const RoutedExpert* experts, int n, const float* x, int dim, const int32_t* row_index, const double* row_weights,
                    int inter, double limit, float* y);

}  // namespace dsv4
