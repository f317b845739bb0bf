#pragma once
// Scalar number-format helpers shared by every kernel translation unit. Everything here has
// internal linkage on purpose: each TU is compiled for a different instruction set, and a
// shared inline definition could be merged by the linker into the wrong one.
#include <cstdint>
#include <cstring>

namespace dsv4 {
namespace {

inline uint32_t f2u(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float u2f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float fabs_(float v) { return u2f(f2u(v) & 0x7FFFFFFFu); }

// UE8M0 scale byte: 2^(b - 127); 255 is NaN, 0 the subnormal 2^-127.
inline float e8m0_value(uint8_t b) {
  if (b == 255) return u2f(0x7FC00000u);
  if (b == 0) return 0x1p-127f;
  return u2f(static_cast<uint32_t>(b) << 23);
}
inline float fmax_(float a, float b) { return a > b ? a : b; }

constexpr float kE4M3Max = 448.0f;
constexpr float kE2M1Max = 6.0f;
constexpr float kFp8AmaxFloor = 1e-4f;
constexpr float kFp4AmaxFloor = 0x1.8p-124f;  // 6 * 2^-126

// 2^ceil(log2 r) for a positive normal r, read off its bits (spec §3.4). The amax floors keep
// r normal; a subnormal r would only come from a corrupted input and is treated as the floor.
inline float ceil_pow2(float r) {
  uint32_t b = f2u(r);
  uint32_t e = (b >> 23) & 0xFFu;
  if (e == 0) return 0x1p-126f;
  if (b & 0x7FFFFFu) e += 1;
  return u2f(e << 23);
}

// The float32 rule of the reference: r = fp32(amax' * fp32(1/448)) (and 1/6 for FP4).
inline float fp8_scale(float amax) { return ceil_pow2(fmax_(amax, kFp8AmaxFloor) * (1.0f / 448.0f)); }
inline float fp4_scale(float amax) { return ceil_pow2(fmax_(amax, kFp4AmaxFloor) * (1.0f / 6.0f)); }

// Round to a grid with `mbits` mantissa bits and minimum exponent `emin`, ties to even on the
// encoding (spec §3.3). Adding and subtracting 2^(e+23-mbits) leaves exactly mbits fraction
// bits under round-to-nearest-even; below 2^emin the quantum stays 2^(emin-mbits).
template <int Emin, int Mbits>
inline float round_grid(float v) {
  float a = fabs_(v);
  uint32_t eb = f2u(a) >> 23;
  if (eb < static_cast<uint32_t>(127 + Emin)) eb = 127 + Emin;
  float c = u2f((eb + 23 - Mbits) << 23);
  float r = (a + c) - c;
  return u2f(f2u(r) | (f2u(v) & 0x80000000u));
}
inline float round_e4m3(float v) { return round_grid<-6, 3>(v); }
inline float round_e2m1(float v) { return round_grid<0, 1>(v); }

inline float clampf(float v, float lim) { return v > lim ? lim : (v < -lim ? -lim : v); }

// Quantise-dequantise one block: y = RNE(clamp(x / s)) * s with the block's power-of-two s.
inline void qdq_e4m3_block_scalar(const float* x, float* y, int n) {
  float amax = 0;
  for (int i = 0; i < n; i++) amax = fmax_(amax, fabs_(x[i]));
  float s = fp8_scale(amax);
  float inv = 1.0f / s;  // exact: s is a power of two
  for (int i = 0; i < n; i++) y[i] = round_e4m3(clampf(x[i] * inv, kE4M3Max)) * s;
}
inline void qdq_e2m1_block_scalar(const float* x, float* y, int n) {
  float amax = 0;
  for (int i = 0; i < n; i++) amax = fmax_(amax, fabs_(x[i]));
  float s = fp4_scale(amax);
  float inv = 1.0f / s;
  for (int i = 0; i < n; i++) y[i] = round_e2m1(clampf(x[i] * inv, kE2M1Max)) * s;
}

inline float e4m3_value(uint8_t b) {
  uint32_t e = (b >> 3) & 0xFu;
  uint32_t m = b & 7u;
  float v = e == 0 ? static_cast<float>(m) * 0x1p-9f : u2f(((e + 120u) << 23) | (m << 20));
  return (b & 0x80u) ? -v : v;
}
inline float e2m1_value(uint8_t code) {
  static const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  float v = mag[code & 7u];
  return (code & 8u) ? -v : v;
}
inline float bf16_value(uint16_t bits) { return u2f(static_cast<uint32_t>(bits) << 16); }

}  // namespace
}  // namespace dsv4
