// Kernel check: runs every entry of one kernel table over deterministic pseudo-random inputs
// and prints one line per case: the case and a hash of the output bits. Built without Node
// (test/kernels/kernel-cross.test.ts compiles it for this host and for aarch64, runs the
// latter under qemu-aarch64 and compares the lines across tables and architectures).
//
//   kernel_check --list    the tables this build and CPU have, one per line
//   kernel_check ISA       the cases for table ISA (scalar, avx2, avx512, avx512bf16, neon)
//
// Inputs are made from integer bits only, so they are the same on every architecture. A
// line carries nothing table-specific except through its hash (prepared_width is part of
// the prepare lines: the vector tables pad rows alike, the scalar one does not).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../src/kernels.h"
#include "../src/matrix.h"

using dsv4::Format;
using dsv4::KernelTable;
using dsv4::Matrix;

namespace {

// splitmix64: a deterministic stream of 64-bit values.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
};

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A float with exponent field in [elo, ehi], random mantissa and sign; with small odds
// +-0 or a denormal.
float random_float(Rng& r, int elo, int ehi) {
  const uint32_t sign = static_cast<uint32_t>(r.next() & 1) << 31;
  const uint32_t pick = r.below(32);
  if (pick == 0) return bits_to_float(sign);
  if (pick == 1) return bits_to_float(sign | (static_cast<uint32_t>(r.next()) & 0x7FFFFFu));
  const uint32_t e = static_cast<uint32_t>(elo) + r.below(static_cast<uint32_t>(ehi - elo + 1));
  return bits_to_float(sign | (e << 23) | (static_cast<uint32_t>(r.next()) & 0x7FFFFFu));
}

// Activations: mostly of magnitude 2^-12 .. 2^4.
std::vector<float> activations(Rng& r, size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = random_float(r, 127 - 12, 127 + 4);
  return v;
}

// FNV-1a over the bits of the floats, every NaN as the one quiet NaN (x86 and arm64 make
// NaNs of different sign; whether a value is NaN is what both must agree on).
struct Hash {
  uint64_t h = 0xCBF29CE484222325ull;
  void add_bits(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001B3ull;
    }
  }
  void add(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::isnan(f)) u = 0x7FC00000u;
    add_bits(u, 4);
  }
  void add(const float* p, size_t n) {
    for (size_t i = 0; i < n; i++) add(p[i]);
  }
};

void emit(const std::string& what, const Hash& h) { std::printf("%s %016llx\n", what.c_str(), static_cast<unsigned long long>(h.h)); }

// 64-byte aligned floats (the vector tables load prepared rows aligned).
struct Aligned {
  float* p;
  explicit Aligned(size_t n) : p(static_cast<float*>(std::aligned_alloc(64, (n * 4 + 63) / 64 * 64))) {}
  ~Aligned() { std::free(p); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
};

// ---------------------------------------------------------------------------------------
// Matrices.

// BF16 has no scales: there Normal is random weights with some subnormals (the float path in
// every table), InRange the same without subnormals (the avx512bf16 table's dot-product path),
// Extreme in range but for one 2^-60 (the float path again).
// FP8 Wide: the scale of every odd 128-input block column is 2^-40, of the others 1, and the
// activations of odd blocks are 2^-60 times the usual: every row is in the avx512bf16 table's
// own-pairs range, but a group's prescaled odd blocks fall below it (fp8_group_factors).
enum class Scales { Normal, Extreme, Special, InRange, Wide };
const char* scales_name(Scales s) {
  return s == Scales::Normal ? "normal" : s == Scales::Extreme ? "extreme" : s == Scales::Special ? "special" : s == Scales::Wide ? "wide" : "in-range";
}
struct Shape {
  Format format;
  int N, K;
  Scales scales = Scales::Normal;
};

float e8m0(uint8_t b) {
  if (b == 0) return 0x1p-127f;
  return bits_to_float(static_cast<uint32_t>(b) << 23);
}

// A scale byte: normal 2^-7 .. 2^2; extreme adds 2^-126, 2^-125, 2^123, 2^127; special adds
// the bytes the vector kernels leave to the portable ones (0 = 2^-127, 255 = NaN).
uint8_t scale_byte(Rng& r, Scales kind) {
  static const uint8_t extreme[] = {1, 2, 250, 254};
  static const uint8_t special[] = {0, 255};
  const uint32_t pick = r.below(8);
  if (kind == Scales::Extreme && pick == 0) return extreme[r.below(4)];
  if (kind == Scales::Special && pick == 0) return special[r.below(2)];
  return static_cast<uint8_t>(120 + r.below(10));
}

Matrix make_matrix(const Shape& s, uint64_t seed) {
  Rng r(seed);
  Matrix m;
  m.format = s.format;
  m.N = s.N;
  m.K = s.K;
  const size_t n = static_cast<size_t>(s.N), k = static_cast<size_t>(s.K);
  switch (s.format) {
    case Format::FP8: {
      m.owned.resize(n * k);
      for (size_t i = 0; i < m.owned.size(); i++) {
        // Every byte value in turn on the first row, then random ones; no NaN codes.
        uint8_t b = i < 256 ? static_cast<uint8_t>(i) : static_cast<uint8_t>(r.next());
        if ((b & 0x7F) == 0x7F) b ^= 1;
        m.owned[i] = b;
      }
      m.scale_cols = static_cast<int>((k + 127) / 128);
      m.scales.resize(((n + 127) / 128) * m.scale_cols);
      for (size_t i = 0; i < m.scales.size(); i++) {
        uint8_t b = scale_byte(r, s.scales);
        if (b == 255) b = 254;
        if (s.scales == Scales::Wide) b = (i % m.scale_cols) % 2 ? 87 : 127;
        m.scales[i] = e8m0(b);
      }
      break;
    }
    case Format::FP4: {
      m.owned.resize(n * k / 2);
      // All 16 codes in both nibbles on the first bytes, then random ones.
      for (size_t i = 0; i < m.owned.size(); i++) m.owned[i] = i < 256 ? static_cast<uint8_t>(i * 17 + (i >> 4)) : static_cast<uint8_t>(r.next());
      m.scale_cols = s.K / 32;
      m.scale_e8m0.resize(n * m.scale_cols);
      for (auto& b : m.scale_e8m0) {
        b = scale_byte(r, s.scales);
        if (b == 0 || b == 255) m.scale_special = true;
      }
      break;
    }
    case Format::BF16: {
      m.owned.resize(n * k * 2);
      for (size_t i = 0; i < n * k; i++) {
        uint32_t u;
        const float f = random_float(r, 127 - 10, 127 + 2);
        std::memcpy(&u, &f, 4);
        if (s.scales != Scales::Normal && (u & 0x7F800000u) == 0) u &= 0x80000000u;
        m.owned[2 * i] = static_cast<uint8_t>(u >> 16);
        m.owned[2 * i + 1] = static_cast<uint8_t>(u >> 24);
      }
      // One weight of 2^-60: outside the bf16 dot-product path's range, so every row of the
      // matrix takes the float path in the avx512bf16 table.
      if (s.scales == Scales::Extreme) m.owned[2 * (n * k / 2)] = 0x80, m.owned[2 * (n * k / 2) + 1] = 0x21;
      break;
    }
    case Format::F32: {
      m.owned.resize(n * k * 4);
      for (size_t i = 0; i < n * k; i++) {
        const float f = random_float(r, 127 - 10, 127 + 2);
        std::memcpy(m.owned.data() + 4 * i, &f, 4);
      }
      break;
    }
  }
  m.data = m.owned.data();
  return m;
}

// Activations rounded to bf16 values (to nearest even), as the head's input is. Row 1 also
// gets a 2^-60, a bf16 value outside the dot-product path's range, and row 2 zeros of both
// signs: a batch mixing rows that take the path with rows that do not.
std::vector<float> bf16_rows(const std::vector<float>& x, int rows, int K) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); i++) {
    uint32_t u;
    std::memcpy(&u, &x[i], 4);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;  // no subnormals, as in a norm's output
    std::memcpy(&out[i], &u, 4);
  }
  if (rows > 1) out[static_cast<size_t>(K) + K / 2] = 0x1p-60f;
  if (rows > 2) out[2 * static_cast<size_t>(K)] = 0.0f, out[2 * static_cast<size_t>(K) + 1] = -0.0f;
  return out;
}

// FP8 and FP4 products take E4M3-quantised activations in the engine; both settings are run
// for every format (prepare is format-agnostic about it).
void check_linear(const KernelTable& t) {
  // K: multiples of each vector layout's group and not (those go to the portable kernels);
  // N: partial 4-row tiles, 128-row scale groups crossed, several FP4/BF16 spans.
  const Shape shapes[] = {
      {Format::FP8, 9, 32}, {Format::FP8, 130, 96}, {Format::FP8, 5, 128}, {Format::FP8, 12, 160},
      {Format::FP8, 131, 256}, {Format::FP8, 6, 1024}, {Format::FP8, 10, 256, Scales::Extreme},
      {Format::FP8, 4, 100}, {Format::FP8, 3, 48}, {Format::FP8, 20, 1024}, {Format::FP8, 16, 512, Scales::Wide},
      {Format::FP4, 8, 64}, {Format::FP4, 9, 128}, {Format::FP4, 5, 192}, {Format::FP4, 4, 4096},
      {Format::FP4, 6, 256, Scales::Extreme}, {Format::FP4, 5, 256, Scales::Special},
      {Format::FP4, 6, 32}, {Format::FP4, 7, 96}, {Format::FP4, 40, 4096},
      {Format::BF16, 9, 16}, {Format::BF16, 5, 48}, {Format::BF16, 12, 256}, {Format::BF16, 40, 4096},
      {Format::BF16, 3, 24}, {Format::BF16, 4, 1000}, {Format::BF16, 7, 64, Scales::Extreme},
      {Format::BF16, 9, 32, Scales::InRange}, {Format::BF16, 13, 256, Scales::InRange}, {Format::BF16, 40, 4096, Scales::InRange},
      {Format::BF16, 5, 48, Scales::InRange},
      {Format::F32, 9, 16}, {Format::F32, 5, 24}, {Format::F32, 7, 33}, {Format::F32, 3, 7},
      {Format::F32, 6, 1030}, {Format::F32, 5, 1}, {Format::F32, 34, 2048},
  };
  const int row_counts[] = {1, 2, 3, 4, 5, 6, 8, 13, 16, 17, 33};
  uint64_t seed = 1;
  for (const Shape& s : shapes) {
    const Matrix m = make_matrix(s, seed++);
    const size_t width = t.prepared_width(m);
    char name[128];
    std::snprintf(name, sizeof name, "%s N=%d K=%d scales=%s", format_name(s.format), s.N, s.K, scales_name(s.scales));
    for (int rows : row_counts) {
      Rng r(seed++);
      std::vector<float> x = activations(r, static_cast<size_t>(rows) * s.K);
      if (s.scales == Scales::Wide)
        for (size_t i = 0; i < x.size(); i++)
          if ((i % s.K) / 128 % 2) x[i] *= 0x1p-60f;
      const std::vector<float> xb = bf16_rows(x, rows, s.K);
      const std::vector<float> xc = bf16_rows(x, 1, s.K);  // every row bf16 values in the dot path's range
      // aq 0: float activations; 1: E4M3-quantised by prepare; 2: bf16 values (the head's input), not quantised;
      // 3: the same with no row outside the dot path (greedy_head.cc's first pass: whole blocks on it).
      for (int aq = 0; aq < 4; aq++) {
        Aligned xp(static_cast<size_t>(rows) * width);
        std::memset(xp.p, 0, static_cast<size_t>(rows) * width * 4);
        t.prepare(m, (aq == 2 ? xb : aq == 3 ? xc : x).data(), rows, aq == 1, xp.p);
        // FP4 and BF16 rows are K floats in every table but avx512bf16, which adds their bf16
        // copy after them (checked through the products that read it); FP8 rows are K floats and
        // the block maxima, after which avx512bf16 adds the block minima and a bf16 copy.
        size_t common = s.format == Format::FP4 || s.format == Format::BF16 ? static_cast<size_t>(s.K) : width;
        if (s.format == Format::FP8) common = std::min(width, static_cast<size_t>(s.K) + static_cast<size_t>(((s.K + 127) / 128 + 7) / 8 * 8));
        Hash hp;
        for (int row = 0; row < rows; row++) hp.add(xp.p + static_cast<size_t>(row) * width, common);
        char what[256];
        std::snprintf(what, sizeof what, "prepare %s rows=%d aq=%d width=%zu", name, rows, aq, common);
        emit(what, hp);
        // The whole range, and a middle one (for N >= 130 across a 128-row scale group).
        int ranges[2][2] = {{0, s.N}, {s.N / 3, s.N - s.N / 4}};
        if (s.N >= 130) ranges[1][0] = 126;
        for (auto& range : ranges) {
          if (range[0] >= range[1]) continue;
          const size_t ldo = static_cast<size_t>(s.N) + 5;
          std::vector<float> out(static_cast<size_t>(rows) * ldo, 777.0f);  // outside [n0, n1) must stay
          t.linear(m, xp.p, rows, out.data(), ldo, range[0], range[1]);
          Hash h;
          h.add(out.data(), out.size());
          std::snprintf(what, sizeof what, "linear %s rows=%d aq=%d n=[%d,%d)", name, rows, aq, range[0], range[1]);
          emit(what, h);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Vector primitives.

const int kLengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000};

void check_dot_axpy(const KernelTable& t) {
  uint64_t seed = 1000;
  for (int n : kLengths) {
    Rng r(seed++);
    const std::vector<float> a = activations(r, n + 1), b = activations(r, n + 1);
    Hash h;
    h.add(t.dot(a.data(), b.data(), n));
    emit("dot n=" + std::to_string(n), h);
    std::vector<float> y = activations(r, n + 1);
    const float alpha = random_float(r, 127 - 4, 127 + 1);
    t.axpy(y.data(), alpha, b.data(), n);
    Hash hy;
    hy.add(y.data(), y.size());  // y[n] must stay
    emit("axpy n=" + std::to_string(n), hy);
  }
}

void check_simulate(const KernelTable& t) {
  const int lengths[] = {7, 8, 16, 128, 130, 256, 1000};
  const int blocks[] = {7, 8, 32, 128};
  // Inputs: mixed magnitudes; all tiny (amax below the floors, denormals); a zero first block.
  const char* kinds[] = {"mixed", "tiny", "zero-block"};
  uint64_t seed = 2000;
  for (int n : lengths)
    for (int block : blocks)
      for (int kind = 0; kind < 3; kind++)
        for (int fp4 = 0; fp4 < 2; fp4++) {
          Rng r(seed++);
          std::vector<float> x(n);
          for (int i = 0; i < n; i++) x[i] = kind == 1 ? random_float(r, 1, 10) : random_float(r, 127 - 20, 127 + 10);
          if (kind == 2)
            for (int i = 0; i < n && i < block; i++) x[i] = 0;
          if (fp4) t.fp4_simulate(x.data(), n, block);
          else t.fp8_simulate(x.data(), n, block);
          Hash h;
          h.add(x.data(), x.size());
          emit(std::string(fp4 ? "fp4_simulate" : "fp8_simulate") + " n=" + std::to_string(n) + " block=" + std::to_string(block) + " " + kinds[kind], h);
        }
}

void check_attend(const KernelTable& t) {
  const int dims[] = {8, 16, 24, 64, 128};
  const int counts[] = {0, 1, 5, 37};
  const int heads[][2] = {{0, 9}, {2, 3}, {5, 4}, {0, 1}};
  const int H = 9;
  uint64_t seed = 3000;
  for (int hd : dims)
    for (int count : counts)
      for (const auto& hh : heads) {
        Rng r(seed++);
        std::vector<float> q(static_cast<size_t>(H) * hd), sink(H);
        for (auto& v : q) v = random_float(r, 127 - 6, 127 + 1);
        for (auto& v : sink) v = random_float(r, 127 - 3, 127 + 1);
        const std::vector<float> kv = activations(r, static_cast<size_t>(count) * hd + 1);
        std::vector<const float*> rows(count + 1);
        for (int i = 0; i < count; i++) rows[i] = i % 5 == 3 ? nullptr : kv.data() + static_cast<size_t>(i) * hd;  // masked rows
        std::vector<float> out(static_cast<size_t>(H) * hd, 777.0f), scores(static_cast<size_t>(hh[1]) * (count + 1));
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        t.attend(q.data(), out.data(), rows.data(), count, hh[0], hh[1], hd, sink.data(), scale, scores.data());
        Hash h;
        h.add(out.data(), out.size());
        char what[128];
        std::snprintf(what, sizeof what, "attend hd=%d count=%d heads=[%d,%d)", hd, count, hh[0], hh[0] + hh[1]);
        emit(what, h);
      }
}

void check_hc(const KernelTable& t) {
  const int dims[] = {1, 7, 8, 16, 129, 4096};
  const int mults[] = {1, 2, 4};
  uint64_t seed = 5000;
  for (int dim : dims)
    for (int hc : mults) {
      Rng r(seed++);
      const std::vector<float> X = activations(r, static_cast<size_t>(hc) * dim), y = activations(r, static_cast<size_t>(dim));
      std::vector<double> pre(hc), post(hc), comb(static_cast<size_t>(hc) * hc);
      for (auto* v : {&pre, &post, &comb})
        for (auto& d : *v) d = static_cast<double>(random_float(r, 127 - 4, 127 + 1)) * (1.0 + 1.0 / 3.0);
      std::vector<float> collapsed(dim, 777.0f), expanded(static_cast<size_t>(hc) * dim, 777.0f);
      t.hc_collapse_row(X.data(), hc, dim, pre.data(), collapsed.data());
      t.hc_expand_row(y.data(), X.data(), hc, dim, post.data(), comb.data(), expanded.data());
      Hash hc_hash, he_hash;
      hc_hash.add(collapsed.data(), collapsed.size());
      he_hash.add(expanded.data(), expanded.size());
      emit("hc_collapse_row hc=" + std::to_string(hc) + " dim=" + std::to_string(dim), hc_hash);
      emit("hc_expand_row hc=" + std::to_string(hc) + " dim=" + std::to_string(dim), he_hash);
    }
}

void check_probes(const KernelTable& t) {
  const size_t sizes[] = {128, 4096, 128 * 37};
  Rng r(4000);
  for (size_t bytes : sizes) {
    uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
    for (size_t i = 0; i < bytes; i++) p[i] = static_cast<uint8_t>(r.next());
    Hash h;
    h.add_bits(t.read_sum(p, bytes), 8);
    emit("read_sum bytes=" + std::to_string(bytes), h);
    std::free(p);
  }
  // The FMA count depends on the table's vector width: only that the probe runs and counts.
  const double flops = t.fma_peak(1000);
  std::printf("fma_peak counts=%s\n", flops > 0 && std::isfinite(flops) ? "yes" : "no");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kernel_check --list | kernel_check ISA\n");
    return 2;
  }
  const char* names[] = {"scalar", "avx2", "avx512", "avx512bf16", "neon"};
  if (std::strcmp(argv[1], "--list") == 0) {
    for (const char* n : names)
      if (dsv4::kernels_named(n)) std::printf("%s\n", n);
    return 0;
  }
  const KernelTable* t = dsv4::kernels_named(argv[1]);
  if (!t) {
    std::fprintf(stderr, "kernel_check: no kernel table '%s' in this build or on this CPU (see --list)\n", argv[1]);
    return 2;
  }
  check_linear(*t);
  check_dot_axpy(*t);
  check_simulate(*t);
  check_attend(*t);
  check_hc(*t);
  check_probes(*t);
  return 0;
}
