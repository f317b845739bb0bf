#include "matrix_io.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <stdexcept>
#include <sys/mman.h>

#include "kernels.h"
#include "scratch.h"
#include "thread_pool.h"
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

// Memory of a matrix's own for `bytes` of rows (fp4_pack, align_rows): 2 MiB aligned, `alloc`
// bytes, in 2 MiB pages where the kernel has them (transparent huge pages are often "madvise"
// only): the mapped checkpoint it replaces sits in the page cache's large folios. A
// flash-slice layer's experts, 2 threads: a copy in 4 KiB pages streamed 1.1x the mapped rows,
// in 2 MiB pages 1.2x. Null when the memory is not there.
std::shared_ptr<uint8_t> own_rows(size_t bytes, size_t& alloc) {
  constexpr size_t kHuge = 2u << 20;
  alloc = (bytes + kHuge - 1) / kHuge * kHuge;
  uint8_t* d = static_cast<uint8_t*>(std::aligned_alloc(kHuge, alloc));
  if (!d) return nullptr;
  madvise(d, alloc, MADV_HUGEPAGE);
  return std::shared_ptr<uint8_t>(d, [](uint8_t* p) { std::free(p); });
}

// m's rows and scales into the packed layout (Matrix::fp4_packed), in memory of its own; the
// mapped bytes it read are let go (Mapping::release), so the weights are not held twice.
// The copy is locked in memory when the file's mapping is.
void fp4_pack(Matrix& m, const MatrixSource& src) {
  const size_t bytes = m.row_bytes() * static_cast<size_t>(m.N);
  const size_t ns = scale_count(m);
  size_t alloc = 0;
  std::shared_ptr<uint8_t> packed = own_rows(bytes, alloc);
  if (!packed) throw std::runtime_error("out of memory repacking an fp4 matrix (" + std::to_string(alloc) + " bytes)");
  uint8_t* d = packed.get();
  std::vector<uint8_t> scales(ns);
  const int groups = m.K / 64;
  // Over the pool (a whole checkpoint's experts are repacked at load): tasks of 64 tiles.
  const int tiles = m.N / kFp4PackRows, per = 64;
  pool().run((tiles + per - 1) / per, [&](int task, int) {
    for (int tile = task * per; tile < std::min(tiles, (task + 1) * per); tile++) {
      const int n0 = tile * kFp4PackRows;
      uint8_t* t = d + static_cast<size_t>(n0) * m.row_bytes();
      uint8_t* ts = scales.data() + static_cast<size_t>(n0) * m.scale_cols;
      for (int r = 0; r < kFp4PackRows; r++) {
        const uint8_t* row = m.row(n0 + r);
        const uint8_t* sr = m.scale_bytes(n0 + r);
        for (int g = 0; g < groups; g++) {
          std::memcpy(t + (static_cast<size_t>(g) * kFp4PackRows + r) * 32, row + 32 * static_cast<size_t>(g), 32);
          std::memcpy(ts + (static_cast<size_t>(g) * kFp4PackRows + r) * 2, sr + 2 * static_cast<size_t>(g), 2);
        }
      }
    }
  });
  const bool locked = (m.mapping && m.mapping->locked()) || (m.scale_mapping && m.scale_mapping->locked());
  if (m.mapping) m.mapping->release(src.offset, bytes);
  if (m.scale_e8m0_mapped) {
    const Mapping* sm = m.scale_mapping ? m.scale_mapping.get() : m.mapping.get();
    if (sm) sm->release(src.scale_offset, ns);
  }
  m.packed = std::move(packed);
  m.packed_bytes = alloc;
  m.data = d;
  m.mapping.reset();
  m.scale_mapping.reset();
  m.scale_e8m0 = std::move(scales);
  m.scale_e8m0_mapped = nullptr;
  m.fp4_packed = true;
  if (locked) {
    mlock(d, alloc);
    mlock(m.scale_e8m0.data(), m.scale_e8m0.size());
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
  if (src.fp4_repack && m->format == Format::FP4 && kernels().packs_fp4 && m->N % kFp4PackRows == 0 && m->K % 64 == 0 && !m->scale_special) {
    fp4_pack(*m, src);
  }
  return m;
}

// Checkpoints place tensors at any byte offset (a safetensors header is padded to 8 bytes,
// tensors follow one another), so mapped rows that do not start on a cache line split a load
// in two at every line or, at 64-byte loads, always. A flash-slice model's FP8 products from
// its own checkpoint (rows 52 bytes past a line), copy against mapping in one process, one
// row: wo_b 1.13-1.23x, shared w1 1.11-1.12x, wq_a / wq_b / wo_a 1.02-1.08x; the head (8
// bytes past) 1.02-1.15x.
bool align_rows(Matrix& m) {
  if (!m.mapping || m.format == Format::FP4 || reinterpret_cast<uintptr_t>(m.data) % 64 == 0) return false;
  const size_t bytes = m.row_bytes() * static_cast<size_t>(m.N);
  const size_t offset = static_cast<size_t>(m.data - m.mapping->data());
  size_t alloc = 0;
  std::shared_ptr<uint8_t> copy = own_rows(bytes, alloc);
  if (!copy) allocation_failed(alloc, "an aligned copy of a matrix");
  uint8_t* d = copy.get();
  constexpr size_t kChunk = 1u << 20;
  const uint8_t* from = m.data;
  pool().run(static_cast<int>((bytes + kChunk - 1) / kChunk), [&](int c, int) {
    const size_t at = static_cast<size_t>(c) * kChunk;
    std::memcpy(d + at, from + at, std::min(kChunk, bytes - at));
  });
  if (m.mapping->locked()) mlock(d, alloc);
  m.mapping->release(offset, bytes);
  m.packed = std::move(copy);
  m.packed_bytes = alloc;
  m.data = d;
  m.mapping.reset();
  return true;
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
      for (int k = 0; k < m.K; k += 2) {
        // Either layout: 64 inputs (32 bytes, 2 scales) of a row lie together in both.
        const uint8_t* g = m.fp4_group(n, k & ~63);
        const uint8_t* s = m.fp4_scales(n, k & ~63);
        const uint8_t b = g[(k & 63) >> 1];
        const float sc = e8m0_value(s[(k & 63) / kFp4Block]);
        out[k] = e2m1_value(b & 15u) * sc;
        out[k + 1] = e2m1_value(b >> 4) * sc;
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
