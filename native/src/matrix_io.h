#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "matrix.h"

namespace dsv4 {

struct MatrixSource {
  Format format;
  int N;
  int K;
  // Either a file range (mapped) or bytes to copy.
  std::string file;
  uint64_t offset = 0;
  uint64_t byte_length = 0;
  const uint8_t* bytes = nullptr;
  size_t bytes_length = 0;
  // Scales: a file range (E8M0 bytes, mapped) or bytes to read.
  std::string scale_file;
  uint64_t scale_offset = 0;
  const uint8_t* scale = nullptr;
  size_t scale_length = 0;
  bool scale_f32 = false;
  // FP4: repack the rows for the kernel table in use when it reads packed matrices
  // (Matrix::fp4_packed), into memory of the matrix's own; the file's pages are let go.
  bool fp4_repack = false;
};

// Validates shapes and sizes; throws std::runtime_error with the reason.
std::unique_ptr<Matrix> make_matrix(const MatrixSource& src);

// Mapped FP8, BF16 or F32 rows that do not start on a cache line copied into 2 MiB-aligned
// memory of the matrix's own, locked when its mapping is, the mapped bytes let go (as FP4
// repacking does). Returns whether it copied. Not while products may run on m.
bool align_rows(Matrix& m);

// Row n decoded to float with its scales applied (embedding lookup).
void decode_row(const Matrix& m, int n, float* out);

}  // namespace dsv4
