#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace dsv4 {

namespace {
[[maybe_unused]] bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

// AVX-512F and BW (byte shuffles of the FP4 decode) with the AVX2 table's extensions (the
// avx512 table is the AVX2 one plus 512-bit kernels). GCC's check includes the OS saving the
// 512-bit state (XCR0).
[[maybe_unused]] bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}

// AVX512_BF16 and AVX512_VBMI (Zen 4 and later, Sapphire Rapids and later) on top: the FP8
// dot products decode E4M3 through vpermi2b tables. Cooper Lake (BF16 without VBMI) takes the
// avx512 table.
[[maybe_unused]] bool cpu_has_avx512bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi");
#else
  return false;
#endif
}

const KernelTable* widest() {
#ifdef DSV4_HAVE_NEON
  return kernels_neon();  // Advanced SIMD is part of every aarch64 CPU
#endif
#ifdef DSV4_HAVE_AVX512BF16
  if (cpu_has_avx512bf16()) return kernels_avx512bf16();
#endif
#ifdef DSV4_HAVE_AVX512
  if (cpu_has_avx512()) return kernels_avx512();
#endif
#ifdef DSV4_HAVE_AVX2
  if (cpu_has_avx2()) return kernels_avx2();
#endif
  return kernels_scalar();
}
}  // namespace

#ifndef DSV4_HAVE_AVX2
const KernelTable* kernels_avx2() { return nullptr; }
#endif
#ifndef DSV4_HAVE_AVX512
const KernelTable* kernels_avx512() { return nullptr; }
#endif
#ifndef DSV4_HAVE_AVX512BF16
const KernelTable* kernels_avx512bf16() { return nullptr; }
#endif
#ifndef DSV4_HAVE_NEON
const KernelTable* kernels_neon() { return nullptr; }
#endif

const KernelTable* kernels_named(const char* isa) {
  if (std::strcmp(isa, "scalar") == 0) return kernels_scalar();
#ifdef DSV4_HAVE_AVX2
  if (std::strcmp(isa, "avx2") == 0) return cpu_has_avx2() ? kernels_avx2() : nullptr;
#endif
#ifdef DSV4_HAVE_AVX512
  if (std::strcmp(isa, "avx512") == 0) return cpu_has_avx512() ? kernels_avx512() : nullptr;
#endif
#ifdef DSV4_HAVE_AVX512BF16
  if (std::strcmp(isa, "avx512bf16") == 0) return cpu_has_avx512bf16() ? kernels_avx512bf16() : nullptr;
#endif
#ifdef DSV4_HAVE_NEON
  if (std::strcmp(isa, "neon") == 0) return kernels_neon();
#endif
  return nullptr;
}

namespace {
const KernelTable* initial() {
  const char* want = std::getenv("DSV4_ISA");
  if (want && *want) {
    if (const KernelTable* t = kernels_named(want)) return t;
  }
  return widest();
}
const KernelTable* current = nullptr;
}  // namespace

const KernelTable& kernels() {
  if (!current) current = initial();
  return *current;
}

bool select_kernels(const char* isa) {
  const KernelTable* t = kernels_named(isa);
  if (!t) return false;
  current = t;
  return true;
}

}  // namespace dsv4
