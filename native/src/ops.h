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

// Hyper-connection read and write and the experts' SwiGLU: element-wise, in double per element
// with a float32 store after each term, exactly as the model's former JavaScript loops did
// (so moving them here changed no result). Rows are split over the thread pool.
void hc_collapse(const float* X, int rows, int hc, int dim, const double* pre, float* out);
void hc_expand(const float* y, const float* X, int rows, int hc, int dim, const double* post, const double* comb, float* out);
void swiglu(float* g, const float* u, int rows, int dim, double limit, const double* row_weights);
// swiglu on rows [r0, r1), on the calling thread (inside a pool task).
void swiglu_rows(float* g, const float* u, int r0, int r1, int dim, double limit, const double* row_weights);
// y[row_index[i]] += src[i] over dim-wide rows, in order.
void add_rows(float* y, const float* src, const int32_t* row_index, int n, int dim);

// Best GB/s of a multi-threaded read of a `bytes` buffer over `reps` passes.
double memory_bandwidth(size_t bytes, int reps);
// GFLOP/s of the kernel table's multiply-add loop: each pool thread's best of `reps` windows
// of about half a millisecond (a busy machine only ever lowers a window), summed. With `dot`,
// the same for its bf16 dot-product loop (0 when the table has none).
double fma_peak(int reps, bool dot = false);
// Microseconds per pool run() of `tasks` empty tasks: the best of 5 windows of `calls` runs.
double pool_overhead_us(int tasks, int calls);

}  // namespace dsv4
