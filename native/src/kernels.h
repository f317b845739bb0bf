#pragma once
#include <cstddef>
#include <cstdint>

#include "matrix.h"

namespace dsv4 {

// The per-instruction-set kernels. Each table comes from the same source (kernels_impl.h)
// compiled with different target flags; dispatch picks the widest the CPU supports.
struct KernelTable {
  const char* isa;
  // Floats per prepared activation row for a matrix with K inputs (>= K; rows are padded).
  size_t (*prepared_width)(const Matrix& w);
  // Prepare `rows` activation rows for w: E4M3 quantise-dequantise when act_quant (spec §3.5),
  // then lay them out in the order the kernel decodes weights.
  void (*prepare)(const Matrix& w, const float* x, int rows, bool act_quant, float* dst);
  // out[r * ldo + n] = sum_k x[r, k] * W[n, k] for n in [n0, n1) and every row r.
  void (*linear)(const Matrix& w, const float* xp, int rows, float* out, size_t ldo, int n0, int n1);
  float (*dot)(const float* a, const float* b, int n);
  // y += a * x
  void (*axpy)(float* y, float a, const float* x, int n);
  // In-place quantise-dequantise in blocks (the reference's FP8 / FP4 "simulation").
  void (*fp8_simulate)(float* x, int n, int block);
  void (*fp4_simulate)(float* x, int n, int block);
  // Attention of heads [h0, h0 + nh) of one query over `count` gathered rows (null: masked),
  // each head_dim wide: out[h] = sum_t softmax_t(scale * q[h].row[t]; sink[h]) * row[t], the
  // sink a logit with a zero value (spec 5.3). scores: scratch of nh * count floats.
  void (*attend)(const float* q, float* out, const float* const* rows, int count, int h0, int nh, int head_dim,
                 const float* sink, float scale, float* scores);
  // Reads every byte of [p, p + bytes) (bytes a multiple of 128): the bandwidth probe.
  uint64_t (*read_sum)(const uint8_t* p, size_t bytes);
  // Runs `rounds` rounds of independent multiply-adds at this table's vector width and
  // returns the floating-point operations done: the FMA-peak probe.
  double (*fma_peak)(long rounds);
  // The same with bf16 dot products (two multiply-adds per lane per instruction); returns 0
  // where the table's products use none.
  double (*dot_peak)(long rounds);
  // One row of the hyper-connection mixes (ops.cc hc_collapse / hc_expand: in double, each
  // added term rounded to float), compiled per table so that the wider tables vectorise them.
  // out[i] = sum_j pre[j] * X[j][i];  X: hc rows of dim floats.
  void (*hc_collapse_row)(const float* X, int hc, int dim, const double* pre, float* out);
  // out[k][i] = post[k] * y[i] + sum_j comb[j * hc + k] * X[j][i], for k < hc.
  void (*hc_expand_row)(const float* y, const float* X, int hc, int dim, const double* post, const double* comb, float* out);
  // Whether this table's FP4 kernels read repacked matrices (Matrix::fp4_packed). Matrices
  // are repacked only when the table in use at their creation does; the others refuse them.
  bool packs_fp4;
  // Whether products of the BF16 matrix w with activation rows of bf16 values run on bf16 dot
  // products (twice the multiply-adds per instruction of the float path): the avx512bf16 table,
  // K a multiple of 32 and every weight in that path's range.
  bool (*bf16_dot_ready)(const Matrix& w);
};

const KernelTable* kernels_scalar();
const KernelTable* kernels_avx2();     // nullptr when not compiled in
const KernelTable* kernels_avx512();   // nullptr when not compiled in
const KernelTable* kernels_avx512bf16();  // nullptr when not compiled in
const KernelTable* kernels_neon();     // nullptr when not compiled in (arm64 builds only)

// The table in use: the widest this CPU supports, or DSV4_ISA=scalar|avx2|avx512|avx512bf16|neon when set.
const KernelTable& kernels();
// nullptr when `isa` is unknown, not compiled in, or not supported by this CPU.
const KernelTable* kernels_named(const char* isa);
// Switch the table in use (tests compare instruction sets in one process).
bool select_kernels(const char* isa);

}  // namespace dsv4
