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

// BF16: each row's Euclidean norm rounded up to a float (+infinity where not finite) and the
// largest, computed on the first use by greedy_head.cc.
struct RowNorms {
  std::once_flag once;
  std::vector<float> norms;
  float largest = 0;
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
// FP4 matrices repacked for the AVX-512 kernels (Matrix::fp4_packed) keep their rows in tiles of
// this many, each 64-input group of a tile's rows one contiguous run (see Matrix::fp4_group).
constexpr int kFp4PackRows = 4;

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
  // FP4 only: the rows are repacked (fp4_pack in matrix_io.cc) so that a kernel taking a tile
  // of kFp4PackRows rows reads one sequential stream: per tile and 64-input group, the rows'
  // 32 bytes one after another (128 bytes), and the scales likewise (2 bytes a row, 8 a
  // group). Only tables whose FP4 kernels step through fp4_group / fp4_scales read such a
  // matrix (KernelTable::packs_fp4); row() and scale_bytes() do not apply to it.
  bool fp4_packed = false;
  // The memory of the matrix's own rows when it keeps them (the packed FP4 rows, or an aligned
  // copy: align_rows), 2 MiB aligned, in transparent huge pages where the kernel
  // gives them; and its size.
  std::shared_ptr<uint8_t> packed;
  size_t packed_bytes = 0;
  std::shared_ptr<Bf16RangeScan> bf16_range = std::make_shared<Bf16RangeScan>();
  std::shared_ptr<RowNorms> row_norms = std::make_shared<RowNorms>();

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
  // FP4, either layout: row n's 32 bytes of inputs [k, k + 64) (k a multiple of 64), its two
  // scale bytes there, and how far the next group's bytes lie from these.
  const uint8_t* fp4_group(int n, int k) const {
    if (!fp4_packed) return row(n) + k / 2;
    const size_t tile = static_cast<size_t>(n / kFp4PackRows) * kFp4PackRows * row_bytes();
    return data + tile + static_cast<size_t>(k / 64) * (kFp4PackRows * 32) + static_cast<size_t>(n % kFp4PackRows) * 32;
  }
  const uint8_t* fp4_scales(int n, int k) const {
    if (!fp4_packed) return scale_bytes(n) + k / kFp4Block;
    const uint8_t* base = scale_e8m0_mapped ? scale_e8m0_mapped : scale_e8m0.data();
    const size_t tile = static_cast<size_t>(n / kFp4PackRows) * kFp4PackRows * scale_cols;
    return base + tile + static_cast<size_t>(k / 64) * (kFp4PackRows * 2) + static_cast<size_t>(n % kFp4PackRows) * 2;
  }
  size_t fp4_group_stride() const { return fp4_packed ? kFp4PackRows * 32 : 32; }
  size_t fp4_scale_stride() const { return fp4_packed ? kFp4PackRows * 2 : 2; }
};

}  // namespace dsv4
