#include "scratch.h"

#include <cstdlib>
#include <new>

namespace dsv4 {

void* scratch(Scratch slot, size_t bytes) {
  static thread_local void* p[static_cast<int>(Scratch::Count)] = {};
  static thread_local size_t have[static_cast<int>(Scratch::Count)] = {};
  const int i = static_cast<int>(slot);
  if (have[i] < bytes) {
    std::free(p[i]);
    have[i] = 0;
    p[i] = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p[i]) throw std::bad_alloc();
    have[i] = bytes;
  }
  return p[i];
}

}  // namespace dsv4
