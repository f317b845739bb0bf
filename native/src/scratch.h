#pragma once
#include <cstddef>
#include <new>
#include <stdexcept>

namespace dsv4 {

// Per-thread working buffers, 64-byte aligned, grown on demand and never freed (the pool's
// threads and the calling JS threads live as long as the process). One slot per use, since
// a caller may hold several at once. Compiled at the baseline ISA, so every kernel table
// shares the one definition.
enum class Scratch { Prepared, Carry, Tile, Prescaled, Post, Paired, Fp8Factors, ExpertHidden, ExpertOut, GreedyInput, GreedyExact, GreedyLogits, Count };

// At least `bytes` bytes for `slot` on this thread; the contents are not kept when it grows.
// Throws AllocationFailure when the memory is not there.
void* scratch(Scratch slot, size_t bytes);

// An allocation that failed, with its size: what() reads "could not allocate N bytes of
// <what>". A std::bad_alloc, so code that catches those still does. The message lives in the
// exception itself: building it allocates nothing.
class AllocationFailure : public std::bad_alloc {
 public:
  AllocationFailure(size_t bytes, const char* what);
  const char* what() const noexcept override { return message_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
  char message_[96];
};

// Throws AllocationFailure(bytes, what).
[[noreturn]] void allocation_failed(size_t bytes, const char* what);

// True when the test hook below says this allocation request fails.
bool injected_allocation_failure();

// v.resize(n), with a failure reported as AllocationFailure naming the bytes and `what`.
// Counts as an allocation request for the test hook, like scratch().
template <class Vector>
void resize_or_fail(Vector& v, size_t n, const char* what) {
  if (injected_allocation_failure()) allocation_failed(n * sizeof(typename Vector::value_type), what);
  try {
    v.resize(n);
  } catch (const std::exception&) {  // std::bad_alloc, or std::length_error past max_size()
    allocation_failed(n * sizeof(typename Vector::value_type), what);
  }
}

// Test-only (the addon's failAllocationsAfter): after `n` more allocation requests (scratch,
// resize_or_fail), every request fails as if memory had run out, on whichever thread makes it; n < 0 (the
// default) turns this off. Lets the tests check that the failure reaches JavaScript.
void fail_allocations_after(long n);

}  // namespace dsv4
