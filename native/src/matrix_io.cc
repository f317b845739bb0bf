#include "matrix_io.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "quant_inline.h"

namespace dsv4 {

namespace {
size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

size_t scale_count(const Matrix& m) {
  switch (m.format) {
    case Format::FP8: return ceil_div(m.N, kFp8Block) * ceil_div(m.K, kFp8Block);
    case Format::FP4: return static_cast<size_t>(m.N) * (m.K / kFp4Block);
    default: return 0;
  }
}
}  // namespace

std::unique_ptr<Matrix> make_matrix(const MatrixSource& src) {
  if (src.N <= 0 || src.K <= 0) throw std::runtime_error("matrix dimensions must be positive");
  auto m = std::make_unique<Matrix>();
  m->format = src.format;
  m->N = src.N;
  m->K = src.K;
  if (src.format == Format::FP4 && src.K % kFp4Block != 0) throw std::runtime_error("fp4 matrix needs inFeatures divisible by 32");
  const size_t need = m->row_bytes() * static_cast<size_t>(src.N);
  if (!src.file.empty()) {
    if (src.byte_length != need) throw std::runtime_error("weight byte length does not match the shape");
    m->mapping = Mapping::open(src.file);
    if (src.offset > m->mapping->size() || need > m->mapping->size() - src.offset) throw std::runtime_error("weight range lies outside " + src.file);
    m->data = m->mapping->data() + src.offset;
  } else {
    if (src.bytes_length != need) throw std::runtime_error("weight byte length does not match the shape");
    m->owned.assign(src.bytes, src.bytes + need);
    m->data = m->owned.data();
  }
  const size_t ns = scale_count(*m);
  if (ns > 0) {
    const uint8_t* scale = src.scale;
    std::shared_ptr<Mapping> scale_mapping;
    if (!src.scale_file.empty()) {
      if (src.scale_f32) throw std::runtime_error("mapped scales must be E8M0 bytes");
      scale_mapping = src.scale_file == src.file && m->mapping ? m->mapping : Mapping::open(src.scale_file);
      if (src.scale_offset > scale_mapping->size() || src.scale_length > scale_mapping->size() - src.scale_offset) throw std::runtime_error("scale range lies outside " + src.scale_file);
      scale = scale_mapping->data() + src.scale_offset;
    }
    if (!scale) throw std::runtime_error("quantised weight without scales");
    if (src.scale_length != ns * (src.scale_f32 ? 4 : 1)) throw std::runtime_error("scale tensor size does not match the shape");
    if (src.format == Format::FP4 && scale_mapping) {
      // The bytes stay in the file: only look for the values the vector kernels cannot take
      // (memchr is vectorised; a byte loop took ~0.25 ms per expert matrix).
      m->scale_special = std::memchr(scale, 0, ns) != nullptr || std::memchr(scale, 255, ns) != nullptr;
      m->scale_e8m0_mapped = scale;
      if (scale_mapping != m->mapping) m->scale_mapping = scale_mapping;
    } else if (src.format == Format::FP4) {
      m->scale_e8m0.resize(ns);
      for (size_t i = 0; i < ns; i++) {
        uint8_t b;
        if (src.scale_f32) {
          float f;
          std::memcpy(&f, scale + 4 * i, 4);
          int e = 0;
          const float frac = std::frexp(f, &e);  // f = frac * 2^e, frac = 0.5 for powers of two
          if (!(frac == 0.5f) || e - 1 < -127 || e - 1 > 127) throw std::runtime_error("fp4 scales must be powers of two (E8M0)");
          b = static_cast<uint8_t>(e - 1 + 127);
        } else {
          b = scale[i];
        }
        m->scale_e8m0[i] = b;
        if (b == 0 || b == 255) m->scale_special = true;
      }
    } else {
      m->scales.resize(ns);
      if (src.scale_f32) {
        std::memcpy(m->scales.data(), scale, ns * 4);
      } else {
        for (size_t i = 0; i < ns; i++) m->scales[i] = e8m0_value(scale[i]);
      }
    }
    m->scale_cols = static_cast<int>(src.format == Format::FP8 ? ceil_div(src.K, kFp8Block) : src.K / kFp4Block);
  }
  return m;
}

void decode_row(const Matrix& m, int n, float* out) {
  const uint8_t* r = m.row(n);
  switch (m.format) {
    case Format::FP8: {
      const float* s = m.scale_row(n);
      for (int k = 0; k < m.K; k++) out[k] = e4m3_value(r[k]) * s[k / kFp8Block];
      break;
    }
    case Format::FP4: {
      const uint8_t* s = m.scale_bytes(n);
      for (int k = 0; k < m.K; k += 2) {
        float sc = e8m0_value(s[k / kFp4Block]);
        out[k] = e2m1_value(r[k >> 1] & 15u) * sc;
        out[k + 1] = e2m1_value(r[k >> 1] >> 4) * sc;
      }
      break;
    }
    case Format::BF16:
      for (int k = 0; k < m.K; k++) out[k] = bf16_value(static_cast<uint16_t>(r[2 * k] | (r[2 * k + 1] << 8)));
      break;
    case Format::F32:
      std::memcpy(out, r, static_cast<size_t>(m.K) * 4);
      break;
  }
}

}  // namespace dsv4
