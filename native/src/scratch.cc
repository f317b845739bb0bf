#include "scratch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace dsv4 {

namespace {
std::atomic<long> g_fail_after{-1};
}  // namespace

// The count goes down to 0 and stays there.
bool injected_allocation_failure() {
  long n = g_fail_after.load(std::memory_order_relaxed);
  while (n > 0 && !g_fail_after.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
  }
  return n == 0;
}

AllocationFailure::AllocationFailure(size_t bytes, const char* what) : bytes_(bytes) {
  std::snprintf(message_, sizeof(message_), "could not allocate %zu bytes of %s", bytes, what);
}

void allocation_failed(size_t bytes, const char* what) { throw AllocationFailure(bytes, what); }

void fail_allocations_after(long n) { g_fail_after.store(n < 0 ? -1 : n, std::memory_order_relaxed); }

void* scratch(Scratch slot, size_t bytes) {
  static thread_local void* p[static_cast<int>(Scratch::Count)] = {};
  static thread_local size_t have[static_cast<int>(Scratch::Count)] = {};
  if (injected_allocation_failure()) allocation_failed(bytes, "scratch");
  const int i = static_cast<int>(slot);
  if (have[i] < bytes) {
    std::free(p[i]);
    have[i] = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    p[i] = rounded < bytes ? nullptr : std::aligned_alloc(64, rounded);
    if (!p[i]) allocation_failed(bytes, "scratch");
    have[i] = bytes;
  }
  return p[i];
}

}  // namespace dsv4
