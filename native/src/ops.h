#pragma once
#include <cstddef>
#include <cstdint>

namespace dsv4 {

// The non-matmul operations of the Backend interface, in float32 (see src/kernels/backend.ts
// for their meaning; src/kernels/ref/ops.ts is the float64 reference they follow).

void rms_norm(const float* x, int rows, int dim, const float* weight, float eps, float* out);
void rope(float* x, int segments, int stride, const double* cos, const double* sin, int half, bool inverse);
void hadamard(float* x, int length, int n);

struct AttentionSource {
  const float* rows;
  const int32_t* indices;  // negative: no entry
  int count;
};
void attention(const float* q, float* out, const AttentionSource* sources, int nsources, int heads, int head_dim,
               const float* sink, float scale);

// slots: (row, offset) pairs
void softmax_pool(const float* kv, const float* score, const int32_t* slots, int nslots, int width, int row_stride,
                  float* out);

void indexer_scores(const float* q, const float* weights, int heads, int head_dim, const float* keys, int count,
                    double* out);

// Best GB/s of a multi-threaded read of a `bytes` buffer over `reps` passes.
double memory_bandwidth(size_t bytes, int reps);

}  // namespace dsv4
