#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "mapping.h"

namespace dsv4 {

enum class Format : int { FP8 = 0, FP4 = 1, BF16 = 2, F32 = 3 };

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
  // Block scales as float: fp8 [ceil(N/128), ceil(K/128)], fp4 [N, K/32]; empty otherwise.
  std::vector<float> scales;
  int scale_cols = 0;

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
  // Scales of row n, one per block along K.
  const float* scale_row(int n) const {
    if (format == Format::FP8) return scales.data() + static_cast<size_t>(n / kFp8Block) * scale_cols;
    return scales.data() + static_cast<size_t>(n) * scale_cols;
  }
};

}  // namespace dsv4
