// Built with -mavx512f -mavx512bw -mavx2 -mfma -mf16c (see binding.gyp); only called when the CPU has
// them. The same source as the AVX2 table, with 512-bit strip kernels that give the AVX2
// kernels' results bit for bit (see strip_product in kernels_impl.h).
#include "kernels_impl.h"
#include "kernels_table.inc"

#if !defined(DSV4_AVX512) || !defined(__AVX512BW__)
#error "kernels_avx512.cc must be compiled with -mavx512f -mavx512bw -mavx2 -mfma -mf16c"
#endif

namespace dsv4 {
const KernelTable* kernels_avx512() {
  static const KernelTable table = DSV4_KERNEL_TABLE("avx512");
  return &table;
}
}  // namespace dsv4
