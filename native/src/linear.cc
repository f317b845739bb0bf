#include "linear.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "scratch.h"
#include "thread_pool.h"

namespace dsv4 {

namespace {
// Below this much work (weight bytes x rows) waking a second thread costs more than it saves.
constexpr size_t kParallelWork = 256 * 1024;
// Weight bytes per task tile: with several activation rows the tile is re-read once per
// group of four rows, so it should stay in L2.
constexpr size_t kTileBytes = 96 * 1024;
// Activation values from which preparing them is split over the pool.
constexpr size_t kParallelPrepare = 16 * 1024;

// Weight rows per tile of a product split over `threads` threads. Enough tiles for dynamic
// balancing (threads finish unevenly on a shared machine), each big enough to amortise the
// per-task overhead; multiples of 4 rows so the kernels' row groups stay whole, of 8 for FP8
// (AVX-512 takes eight weight rows at a time there; the BF16 head's 12-row tiles rounded up to
// 16 measured 1-5% slower at 1-8 rows). FP8 tiles follow the 128-row scale groups when there
// are enough of them: each group's scales are applied to the activations once.
int tile_rows(const Matrix& w, int threads) {
  int tile = static_cast<int>(std::max<size_t>(4, kTileBytes / w.row_bytes()));
  tile = std::min(tile, std::max(4, w.N / (threads * 8)));
  tile = w.format == Format::FP8 ? (tile + 7) & ~7 : (tile + 3) & ~3;
  if (w.format == Format::FP8 && w.N >= kFp8Block * threads * 4) tile = kFp8Block;
  return tile;
}
}  // namespace

void check_readable(const Matrix& w) {
  if (w.fp4_packed && !kernels().packs_fp4) {
    throw std::runtime_error(std::string("this fp4 matrix was repacked for the AVX-512 kernels and the ") + kernels().isa +
                             " table cannot read it: select the kernel table before loading the weights");
  }
}

void linear(const Matrix& w, const float* x, int rows, bool act_quant, float* out) {
  check_readable(w);
  const KernelTable& k = kernels();
  const size_t width = k.prepared_width(w);
  // 64-byte aligned: the kernels read it with 32-byte loads, and from malloc's 16-byte
  // alignment half of those straddled two cache lines (FP4 with 4-6 activation rows: 24 ->
  // 31 G products/s per thread in a kernel harness).
  float* const prepared = static_cast<float*>(scratch(Scratch::Prepared, width * static_cast<size_t>(rows) * sizeof(float)));
  ThreadPool& p = pool();
  // Quantising and permuting the activations costs ~2 ns per value: for prefill-sized
  // inputs the rows are split over the pool rather than leaving the other threads idle.
  if (rows >= 2 && static_cast<size_t>(rows) * w.K >= kParallelPrepare) {
    p.run(rows, [&](int r, int) { k.prepare(w, x + static_cast<size_t>(r) * w.K, 1, act_quant, prepared + width * r); });
  } else {
    k.prepare(w, x, rows, act_quant, prepared);
  }
  linear_pooled(w, prepared, rows, out);
}

void linear_pooled(const Matrix& w, const float* prepared, int rows, float* out) {
  const KernelTable& k = kernels();
  ThreadPool& p = pool();
  const size_t work = w.row_bytes() * static_cast<size_t>(w.N) * static_cast<size_t>(rows);
  if (p.threads() == 1 || work < kParallelWork) {
    k.linear(w, prepared, rows, out, w.N, 0, w.N);
    return;
  }
  const int tile = tile_rows(w, p.threads());
  const int tasks = (w.N + tile - 1) / tile;
  p.run(tasks, [&](int t, int) {
    const int n0 = t * tile;
    const int n1 = std::min(w.N, n0 + tile);
    k.linear(w, prepared, rows, out, w.N, n0, n1);
  });
}

void linear_prepared(const Matrix& w, const float* prepared, int rows, float* out) {
  const KernelTable& k = kernels();
  // A decode batch's few rows in one pass over the whole matrix (the kernels take up to 8 at
  // once); more in the tiles one thread of linear() would get, which stay in L2 while every
  // row group passes.
  const int tile = rows <= 8 ? w.N : tile_rows(w, 1);
  for (int n0 = 0; n0 < w.N; n0 += tile) k.linear(w, prepared, rows, out, w.N, n0, std::min(w.N, n0 + tile));
}

}  // namespace dsv4
