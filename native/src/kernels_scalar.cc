// The portable kernels: whatever the baseline target gives (SSE2 on x86-64).
#include "kernels_impl.h"
#include "kernels_table.inc"

namespace dsv4 {
const KernelTable* kernels_scalar() {
  static const KernelTable table = DSV4_KERNEL_TABLE("scalar");
  return &table;
}
}  // namespace dsv4
