// Built with -mavx512f -mavx512bw -mavx512bf16 -mavx512vbmi -mavx2 -mfma -mf16c (see
// binding.gyp); only called when the CPU has them. The avx512 table plus AVX512_BF16: FP4 and
// FP8 products from E4M3 activations take bf16 dot products (fp4_rows_bf16_k and
// Fp8Bf16Groups in tiles_avx512.h), with the same results bit for bit.
#include "kernels_impl.h"
#include "kernels_table.inc"

#if !defined(DSV4_AVX512_BF16) || !defined(__AVX512BW__) || !defined(__AVX512VBMI__)
#error "kernels_avx512bf16.cc must be compiled with -mavx512f -mavx512bw -mavx512bf16 -mavx512vbmi -mavx2 -mfma -mf16c"
#endif

namespace dsv4 {
const KernelTable* kernels_avx512bf16() {
  static const KernelTable table = DSV4_KERNEL_TABLE("avx512bf16");
  return &table;
}
}  // namespace dsv4
