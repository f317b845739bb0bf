#include "heap_tuning.h"

#include <climits>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace dsv4 {

bool keep_freed_memory(size_t mmap_threshold, size_t trim_threshold) {
#ifdef __GLIBC__
  if (mmap_threshold > INT_MAX || trim_threshold > INT_MAX) return false;
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) == 1 && mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold)) == 1;
#else
  (void)mmap_threshold;
  (void)trim_threshold;
  return false;
#endif
}

}  // namespace dsv4
