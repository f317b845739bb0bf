#pragma once
#include <cstdint>

#include "matrix.h"

namespace dsv4 {

// The greedy token of BF16 products' rows (the head under greedy decoding and greedy
// verification) without computing every output exactly. For each of `rows` activation rows
// x_r (K floats apart): the index of the largest output of w·x_r among those not masked, the
// lowest on ties, i.e. exactly what argmax over linear()'s float32 outputs gives with the
// masked ones at -infinity. out[r] = -1 where this does not decide (values outside the range
// the bound covers, a kernel table without bf16 dot products, every output masked): the
// caller takes row r's exact outputs there.
// masked: every row's masked ids one after another, row r's at [mask_at[r], mask_at[r + 1]).
// exact (when not null): how many outputs of each row were computed exactly.
void greedy_rows(const Matrix& w, const float* x, int rows, const int32_t* masked, const int32_t* mask_at, int32_t* out, int32_t* exact);

}  // namespace dsv4
