// Built with -mavx2 -mfma -mf16c (see binding.gyp); only called when the CPU has them.
#include "kernels_impl.h"
#include "kernels_table.inc"

#ifndef DSV4_AVX2
#error "kernels_avx2.cc must be compiled with -mavx2 -mfma -mf16c"
#endif

namespace dsv4 {
const KernelTable* kernels_avx2() {
  static const KernelTable table = DSV4_KERNEL_TABLE("avx2");
  return &table;
}
}  // namespace dsv4
