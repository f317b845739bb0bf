#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "mapping.h"

namespace dsv4 {

// BF16: whether every weight is 0 or of magnitude in [2^-56, 2^50), found by one scan on the
// first use by a kernel that needs it (the bf16 dot-product path, tiles_avx512.h). Shared so
// that a Matrix stays copyable.
struct Bf16RangeScan {
  std::once_flag once;
  bool in_dot_range = false;
};

enum class Format : int { FP8 = 0, FP4 = 1, BF16 = 2, F32 = 3 };

inline const char* format_name(Format f) {
  switch (f) {
    case Format::FP8: return "fp8";
    case Format::FP4: return "fp4";
    case Format::BF16: return "bf16";
    case Format::F32: return "f32";
  }
  return "?";
}

constexpr int kFp8Block = 128;  // weight scale blocks are 128x128
constexpr int kFp4Block = 32;   // FP4 scales cover 32 inputs of one row
constexpr int kActBlock = 128;  // activation quantisation block

// A weight matrix [N, K] kept in its checkpoint format. `data` points into a file mapping
// when the tensor has a location, else into `owned`.
struct Matrix {
  Format format;
  int N;
  int K;
  const uint8_t* data = nullptr;
  std::vector<uint8_t> owned;
  std::shared_ptr<Mapping> mapping;
  std::shared_ptr<Mapping> scale_mapping;  // the scales' file, when not the weights' own
  // FP8 block scales as float, [ceil(N/128), ceil(K/128)]; empty otherwise.
  std::vector<float> scales;
  // FP4 block scales as the checkpoint's E8M0 bytes, [N, K/32]: read as bytes by the kernels,
  // a quarter of the memory traffic floats would take (FP4 is half a byte per weight). They
  // are used in place from the file mapping when the tensor has a location (creating a
  // routed expert then reads nothing: copying its 0.75 MB of scales took ~4 ms at
  // flash-slice, on the first step that routed to it); else copied into scale_e8m0.
  std::vector<uint8_t> scale_e8m0;
  const uint8_t* scale_e8m0_mapped = nullptr;
  // FP4 only: some scale is 0 (2^-127) or 255 (NaN), which the vector kernels' bit trick does
  // not reproduce, so the portable kernel is used.
  bool scale_special = false;
  int scale_cols = 0;
  std::shared_ptr<Bf16RangeScan> bf16_range = std::make_shared<Bf16RangeScan>();

  size_t row_bytes() const {
    switch (format) {
      case Format::FP8: return static_cast<size_t>(K);
      case Format::FP4: return static_cast<size_t>(K) / 2;
      case Format::BF16: return static_cast<size_t>(K) * 2;
      case Format::F32: return static_cast<size_t>(K) * 4;
    }
    return 0;
  }
  const uint8_t* row(int n) const { return data + row_bytes() * static_cast<size_t>(n); }
  // FP8: the scales of row n's 128-row group, one per 128 inputs.
  const float* scale_row(int n) const { return scales.data() + static_cast<size_t>(n / kFp8Block) * scale_cols; }
  // FP4: row n's E8M0 scale bytes, one per 32 inputs.
  const uint8_t* scale_bytes(int n) const {
    return (scale_e8m0_mapped ? scale_e8m0_mapped : scale_e8m0.data()) + static_cast<size_t>(n) * scale_cols;
  }
};

}  // namespace dsv4
