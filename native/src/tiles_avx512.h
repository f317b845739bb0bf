#pragma once
// Register-tiled AVX-512 products for several activation rows (decode batches), included by
// kernels_impl.h inside its anonymous namespace when compiled for AVX-512 (it uses that
// file's hsum8, imin and Matrix helpers). Every kernel here performs, per output, exactly the
// AVX2 table's 8-lane arithmetic, so the avx512 table keeps giving the avx2 table's results
// bit for bit and a row's result never depends on the rows batched with it.

// ---------------------------------------------------------------------------------------
// BF16 (the head, 129,280 x 4,096): one 512-bit accumulator per output holds both chains of
// the AVX2 kernels (dense_tile, dense_strip8): c0 in lanes 0-7 (the even inputs of each 16,
// in the Bf16Group16 layout the first 8 prepared floats) and c1 in lanes 8-15 (the odd
// ones). Sixteen prepared inputs are then one plain 64-byte load, the sixteen weights one
// 32-byte broadcast and two integer operations, and an FMA advances both chains of one
// output: kBf16Tile weight rows x up to kBf16Group activation rows of accumulators, each
// weight decoded once per row group and each activation load used by every weight row of
// the tile. The result is hsum8(c0 + c1), as in dense_tile.
//
// Each micro-kernel runs over the whole K: a tile's weight rows (4 x 8 KB for the head) stay
// in L1 while every row group of a block passes, and the block's activations come from L2.
// (Splitting K into L1-sized chunks with the chains carried in memory between them measured
// slower: head rows, one Zen 5 core, 16 rows 135 vs 170 GFLOP/s, 64 rows 122 vs 162.) The
// next tile's rows are asked for while this one is multiplied.
// From one activation row: bf16_micro<4, 1> keeps four weight rows' chains in flight, where
// the AVX2 single-row tile (dense_tile, two rows of 256-bit chains) was bound by its FMA
// latency and decode work. Head 129,280 x 4,096, one Zen 5 core, other agents stopped: 16.3
// -> 24.3 GB/s from DRAM, 17.5 -> 50 GB/s from L3 (bit for bit the same sums).
constexpr int kBf16TiledRows = 1;  // activation rows from which bf16_tiled is used
constexpr int kBf16Tile = 4;       // weight rows per micro-kernel
constexpr int kBf16Group = 6;      // most activation rows per micro-kernel (4 x 6 accumulators)
constexpr int kBf16Block = 16;     // most activation rows sharing one pass over a tile
constexpr size_t kBf16BlockBytes = 256 * 1024;  // their activations, to stay in L2
// Up to kBf16ChunkRows activation rows, bf16_tiled goes over blocks of kBf16ChunkTiles tiles
// kBf16ChunkK inputs at a time (see there).
constexpr int kBf16ChunkK = 1024;
constexpr int kBf16ChunkTiles = 16;
constexpr int kBf16ChunkRows = 12;
// With bf16 dot products (pairs: half the bytes per input) up to this many rows.
constexpr int kBf16DotChunkRows = 16;

// Sixteen BF16 weights (32 bytes) as [even inputs | odd inputs] floats. (The zero-masked
// intrinsics: GCC 12 warns about the plain ones' undefined pass-through source.)
inline __m512 bf16_decode_even_odd(const uint8_t* p) {
  const __m512i raw = _mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  const __m512i shift = _mm512_setr_epi32(16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_sllv_epi32(0xFFFF, raw, shift), _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// The outputs of MR x NR accumulators holding both chains (lanes 0-7 and 8-15): hsum8(c0 + c1).
template <int MR, int NR>
inline void bf16_store_outputs(const __m512 (&c)[MR][NR], float* out, size_t ldo) {
  alignas(64) float t[16];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) {
      _mm512_store_ps(t, c[j][r]);
      out[r * ldo + j] = hsum8(_mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8)));
    }
}

// MR weight rows (w: the first, row_bytes apart) x NR activation rows (x: ldx floats apart)
// over inputs [k0, k1), added to the accumulators c. `ahead`: bytes past each weight row's
// inputs to prefetch (0: none).
template <int MR, int NR>
__attribute__((always_inline)) inline void bf16_micro_span(const uint8_t* w, size_t row_bytes, int k0, int k1, const float* x, size_t ldx, size_t ahead,
                                                           __m512 (&c)[MR][NR]) {
  for (int i = k0; i < k1; i += 16) {
    if (ahead && (i & 31) == 0)
      for (int j = 0; j < MR; j++) _mm_prefetch(reinterpret_cast<const char*>(w + j * row_bytes + 2 * i + ahead), _MM_HINT_T0);
    __m512 wv[MR];
    for (int j = 0; j < MR; j++) wv[j] = bf16_decode_even_odd(w + j * row_bytes + 2 * i);
    for (int r = 0; r < NR; r++) {
      const __m512 xv = _mm512_loadu_ps(x + r * ldx + i);
      for (int j = 0; j < MR; j++) c[j][r] = _mm512_fmadd_ps(wv[j], xv, c[j][r]);
    }
  }
}

// bf16_micro_span over all K inputs from zero; out[r * ldo + j] gets output (j, r).
template <int MR, int NR>
void bf16_micro(const uint8_t* w, size_t row_bytes, int K, const float* x, size_t ldx, float* out, size_t ldo, size_t ahead) {
  __m512 c[MR][NR];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) c[j][r] = _mm512_setzero_ps();
  bf16_micro_span<MR, NR>(w, row_bytes, 0, K, x, ldx, ahead, c);
  bf16_store_outputs<MR, NR>(c, out, ldo);
}

// bf16_micro over inputs [k0, k1) only: the accumulators come from `carry` (zero when
// `first`) and go back to it, or (when `last`) to the outputs. Each output's chain is the same
// FMAs in the same order as bf16_micro's, its register stored and reloaded between chunks.
template <int MR, int NR>
void bf16_micro_chunk(const uint8_t* w, size_t row_bytes, int k0, int k1, bool first, bool last, const float* x, size_t ldx, float* out, size_t ldo,
                      size_t ahead, float* carry) {
  __m512 c[MR][NR];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) c[j][r] = first ? _mm512_setzero_ps() : _mm512_load_ps(carry + (j * NR + r) * 16);
  bf16_micro_span<MR, NR>(w, row_bytes, k0, k1, x, ldx, ahead, c);
  if (last) {
    bf16_store_outputs<MR, NR>(c, out, ldo);
    return;
  }
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) _mm512_store_ps(carry + (j * NR + r) * 16, c[j][r]);
}

using Bf16Micro = void (*)(const uint8_t*, size_t, int, const float*, size_t, float*, size_t, size_t);
using Bf16MicroChunk = void (*)(const uint8_t*, size_t, int, int, bool, bool, const float*, size_t, float*, size_t, size_t, float*);

// A family of micro-kernels (Kernel<MR, NR>::run) and its instance for mr x nr accumulators.
template <template <int, int> class Kernel, int MR>
inline auto bf16_micro_for(int nr) -> std::remove_const_t<decltype(Kernel<MR, 1>::run)> {
  switch (nr) {
    case 1: return Kernel<MR, 1>::run;
    case 2: return Kernel<MR, 2>::run;
    case 3: return Kernel<MR, 3>::run;
    case 4: return Kernel<MR, 4>::run;
    case 5: return Kernel<MR, 5>::run;
    default: return Kernel<MR, 6>::run;
  }
}
template <template <int, int> class Kernel>
inline auto bf16_micro_for(int mr, int nr) -> std::remove_const_t<decltype(Kernel<1, 1>::run)> {
  switch (mr) {
    case 1: return bf16_micro_for<Kernel, 1>(nr);
    case 2: return bf16_micro_for<Kernel, 2>(nr);
    case 3: return bf16_micro_for<Kernel, 3>(nr);
    default: return bf16_micro_for<Kernel, 4>(nr);
  }
}
template <int MR, int NR>
struct Bf16FloatMicro {
  static constexpr Bf16Micro run = bf16_micro<MR, NR>;
};
template <int MR, int NR>
struct Bf16ChunkMicro {
  static constexpr Bf16MicroChunk run = bf16_micro_chunk<MR, NR>;
};

#ifdef DSV4_AVX512_BF16
inline __m512bh as_bf16x32(__m512i v) { return (__m512bh)v; }

// bf16_micro with bf16 dot products (AVX512_BF16), for activation rows whose values are bf16
// values (bf16_prepare_pairs' flag) and weights in bf16_weights_in_dot_range. vdpbf16ps
// adds to each lane's float its high product, then its low one, each rounded to nearest even
// as an FMA would be, but with denormal inputs read as 0 and denormal results flushed to 0.
// Neither can happen here: every product of two bf16 values is exact in fp32, and with both
// factors 0 or of magnitude in [2^-56, 2^50) each product is a multiple of 2^-126 below
// 2^100, so every partial sum (rounded or not) is 0 or a normal float, below 2^116 for any
// K up to 2^20. Each lane's chain is then the FMA chain of bf16_micro, two products per
// instruction, bit for bit. The weights need no widening: 64 bytes (32 inputs) and one word
// permute put G0's and G1's weight of each lane into its high and low halves, as the pairs
// hold the activations. Twice the products per instruction, a third of the instructions per
// weight byte.
// Word 2L (low half of lane L) <- G1's input of lane L, word 2L + 1 <- G0's; lanes 0-7 the
// even inputs of each 16, 8-15 the odd ones.
inline __m512i bf16_dot_order() {
  return _mm512_setr_epi32(16 | (0 << 16), 18 | (2 << 16), 20 | (4 << 16), 22 | (6 << 16), 24 | (8 << 16), 26 | (10 << 16), 28 | (12 << 16), 30 | (14 << 16),
                           17 | (1 << 16), 19 | (3 << 16), 21 | (5 << 16), 23 | (7 << 16), 25 | (9 << 16), 27 | (11 << 16), 29 | (13 << 16), 31 | (15 << 16));
}

// bf16_dot_micro's products over inputs [k0, k1) (multiples of 32), added to c; x: prepared
// rows (their pairs at x + K).
template <int MR, int NR>
__attribute__((always_inline)) inline void bf16_dot_span(const uint8_t* w, size_t row_bytes, int K, int k0, int k1, const float* x, size_t ldx, size_t ahead,
                                                         __m512 (&c)[MR][NR]) {
  const __m512i order = bf16_dot_order();
  const float* pairs = x + K;
  for (int i = k0; i < k1; i += 32) {
    if (ahead)
      for (int j = 0; j < MR; j++) _mm_prefetch(reinterpret_cast<const char*>(w + j * row_bytes + 2 * i + ahead), _MM_HINT_T0);
    __m512bh wv[MR];
    for (int j = 0; j < MR; j++) wv[j] = as_bf16x32(_mm512_permutexvar_epi16(order, _mm512_loadu_si512(w + j * row_bytes + 2 * i)));
    for (int r = 0; r < NR; r++) {
      const __m512bh xv = as_bf16x32(_mm512_loadu_si512(pairs + r * ldx + i / 2));
      for (int j = 0; j < MR; j++) c[j][r] = _mm512_dpbf16_ps(c[j][r], wv[j], xv);
    }
  }
}

template <int MR, int NR>
void bf16_dot_micro(const uint8_t* w, size_t row_bytes, int K, const float* x, size_t ldx, float* out, size_t ldo, size_t ahead) {
  __m512 c[MR][NR];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) c[j][r] = _mm512_setzero_ps();
  bf16_dot_span<MR, NR>(w, row_bytes, K, 0, K, x, ldx, ahead, c);
  bf16_store_outputs<MR, NR>(c, out, ldo);
}

// bf16_dot_micro over inputs [k0, k1) only, the accumulators carried as bf16_micro_chunk's are:
// per output the same instructions in the same order. (K, not k1, locates the pairs.)
template <int MR, int NR>
void bf16_dot_micro_chunk(const uint8_t* w, size_t row_bytes, int K, int k0, int k1, bool first, bool last, const float* x, size_t ldx, float* out, size_t ldo,
                          size_t ahead, float* carry) {
  __m512 c[MR][NR];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) c[j][r] = first ? _mm512_setzero_ps() : _mm512_load_ps(carry + (j * NR + r) * 16);
  bf16_dot_span<MR, NR>(w, row_bytes, K, k0, k1, x, ldx, ahead, c);
  if (last) {
    bf16_store_outputs<MR, NR>(c, out, ldo);
    return;
  }
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) _mm512_store_ps(carry + (j * NR + r) * 16, c[j][r]);
}

template <int MR, int NR>
struct Bf16DotMicro {
  static constexpr Bf16Micro run = bf16_dot_micro<MR, NR>;
};
using Bf16DotMicroChunk = void (*)(const uint8_t*, size_t, int, int, int, bool, bool, const float*, size_t, float*, size_t, size_t, float*);
template <int MR, int NR>
struct Bf16DotChunkMicro {
  static constexpr Bf16DotMicroChunk run = bf16_dot_micro_chunk<MR, NR>;
};

// Whether activation rows [r0, r0 + nr) all carry bf16_prepare_pairs' flag.
inline bool bf16_dot_rows(int K, const float* xp, size_t ldx, int r0, int nr) {
  for (int r = r0; r < r0 + nr; r++)
    if (xp[static_cast<size_t>(r) * ldx + bf16_dot_flag(K)] == 0.0f) return false;
  return true;
}
#endif

// Output rows [n0, n1) of a BF16 matrix (K % 16 == 0, Bf16Group16 layout) for `rows`
// prepared activation rows ldx floats apart.
void bf16_tiled(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  const int K = w.K;
  const size_t row_bytes = w.row_bytes();
  bool dot_weights = false;
#ifdef DSV4_AVX512_BF16
  // The weights are scanned (once per matrix, a pass over all of it) only when some row could
  // take the dot path: the model's rows are float today, and its head is a gigabyte.
  bool dot_rows = false;
  for (int r = 0; r < rows && !dot_rows; r++) dot_rows = bf16_dot_rows(K, xp, ldx, r, 1);
  dot_weights = dot_rows && K % 32 == 0 && bf16_weights_in_dot_range(w);
#endif
  const int most = imax(kBf16Group, imin(kBf16Block, static_cast<int>(kBf16BlockBytes / (4 * static_cast<size_t>(K)))));
  const int blocks = (rows + most - 1) / most;
  const int block_rows = (rows + blocks - 1) / blocks;
  for (int b0 = 0; b0 < rows; b0 += block_rows) {
    const int br = imin(block_rows, rows - b0);
    const int groups = (br + kBf16Group - 1) / kBf16Group;
    // Few rows (decode of a few sequences, a speculative block's verification): a block of
    // tiles is taken kBf16ChunkK inputs at a time, each tile's accumulators kept in `carry`
    // between passes, so those inputs of every activation row (6 x 4 KB) stay in L1 across
    // the block's tiles instead of streaming from L2 once per tile. Per output the same FMAs
    // in the same order. The head, 129,280 x 4,096, against whole-K tiles alternating in one
    // process on one mapped copy (bench kernels --rows --baseline): 1 row 1.06-1.11x, 2 rows
    // 1.20-1.28x, 3 1.30x, 4 1.20x, 5-6 1.11-1.13x, 8 1.05x; 16 rows (three groups) 0.96-0.99x,
    // so more rows keep whole-K tiles.
    const int KC = kBf16ChunkK;
    bool dot_block = false;
#ifdef DSV4_AVX512_BF16
    dot_block = dot_weights && bf16_dot_rows(K, xp, ldx, b0, br);
#endif
    if ((br <= kBf16ChunkRows || (dot_block && br <= kBf16DotChunkRows)) && K > KC && K % KC == 0 && (dot_block || !dot_weights)) {
      const int TB = kBf16ChunkTiles;
      float* carry = static_cast<float*>(scratch(Scratch::Carry, static_cast<size_t>(TB) * groups * kBf16Tile * kBf16Group * 16 * sizeof(float)));
      for (int nb = n0; nb < n1; nb += TB * kBf16Tile) {
        const int nbe = imin(n1, nb + TB * kBf16Tile);
        for (int k0 = 0; k0 < K; k0 += KC) {
          const int k1 = k0 + KC;
          for (int g = 0, r0 = b0; g < groups; g++) {
            const int nr = (b0 + br - r0 + (groups - g) - 1) / (groups - g);
            for (int n = nb, t = 0; n < nbe; n += kBf16Tile, t++) {
              const int mr = imin(kBf16Tile, nbe - n);
              float* cy = carry + (static_cast<size_t>(t) * groups + g) * kBf16Tile * kBf16Group * 16;
              const float* xg = xp + static_cast<size_t>(r0) * ldx;
              float* og = out + static_cast<size_t>(r0) * ldo + n;
              const size_t ahead = g == 0 ? mr * row_bytes : 0;
#ifdef DSV4_AVX512_BF16
              if (dot_block) {
                bf16_micro_for<Bf16DotChunkMicro>(mr, nr)(w.row(n), row_bytes, K, k0, k1, k0 == 0, k1 == K, xg, ldx, og, ldo, ahead, cy);
                continue;
              }
#endif
              bf16_micro_for<Bf16ChunkMicro>(mr, nr)(w.row(n), row_bytes, k0, k1, k0 == 0, k1 == K, xg, ldx, og, ldo, ahead, cy);
            }
            r0 += nr;
          }
        }
      }
      continue;
    }
    for (int n = n0; n < n1; n += kBf16Tile) {
      const int mr = imin(kBf16Tile, n1 - n);
      const uint8_t* wt = w.row(n);
      for (int g = 0, r0 = b0; g < groups; g++) {
        // Balanced groups: 16 rows as 6 + 5 + 5, not 6 + 6 + 4.
        const int nr = (b0 + br - r0 + (groups - g) - 1) / (groups - g);
        Bf16Micro micro = bf16_micro_for<Bf16FloatMicro>(mr, nr);
#ifdef DSV4_AVX512_BF16
        if (dot_weights && bf16_dot_rows(K, xp, ldx, r0, nr)) micro = bf16_micro_for<Bf16DotMicro>(mr, nr);
#endif
        micro(wt, row_bytes, K, xp + static_cast<size_t>(r0) * ldx, ldx, out + static_cast<size_t>(r0) * ldo + n, ldo, g == 0 ? mr * row_bytes : 0);
        r0 += nr;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// FP4 (the routed experts, 1-8 rows each in a decode batch; prefill passes of up to 8): two
// weight rows per 512-bit vector, each 256-bit half doing for its row exactly the AVX2
// kernels' operations (fp4_decode's byte shuffles and unpacks act within 128-bit lanes, so
// the 512-bit forms decode both rows at once), with the activations broadcast to both halves.
// Decoding was what bounded the AVX2 kernels (the FMAs idle), and it now costs half as much
// per weight. Per (weight row, activation row): chain a (vectors 0, 2, 4, 6 of a 64-input
// group) from a multiply, chain b (1, 3, 5, 7), a + b times the group's scale pair, added to
// the total in group order; the result is hsum8 of the total (fp4_row_k, fp4_tile_k,
// fp4_gemv_row). K goes in the AVX2 kernels' L1-sized chunks (fp4_chunk), the totals carried
// in memory between them, which changes no bit.
constexpr int kFp4PairRows = 8;  // most activation rows per pass

// 64-input group g of rows p0 (low half) and p1 (high half) -> 8 vectors in the
// Fp4Group64 order: f[v] holds vector v of both rows.
inline void fp4_decode_pair(const uint8_t* p0, const uint8_t* p1, __m512 f[8]) {
  const __m512i lut_lo = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm256_castsi256_si128(fp4_lut_lo()));
  const __m512i lut_hi = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm256_castsi256_si128(fp4_lut_hi()));
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m512i raw = _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
                                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1);
  for (int h = 0; h < 2; h++) {
    const __m512i codes = h == 0 ? _mm512_and_si512(raw, low4) : _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
    const __m512i lo = _mm512_shuffle_epi8(lut_lo, codes);
    const __m512i hi = _mm512_shuffle_epi8(lut_hi, codes);
    const __m512i u0 = _mm512_unpacklo_epi8(lo, hi);
    const __m512i u1 = _mm512_unpackhi_epi8(lo, hi);
    f[4 * h + 0] = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, u0, 16));
    f[4 * h + 1] = _mm512_castsi512_ps(_mm512_and_si512(u0, high));
    f[4 * h + 2] = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, u1, 16));
    f[4 * h + 3] = _mm512_castsi512_ps(_mm512_and_si512(u1, high));
  }
}

// The scale pairs of group g of both rows: row p0's in lanes 0-7, p1's in 8-15 (the values
// of fp4_scale_pair: each E8M0 byte shifted into a float's exponent field). The four bytes
// widen in one vector and spread with one permute (gathering them in a general register
// first, as fp4_scale_pair does: one activation row, one core, 4096x2048, 44-47 instead of
// 54-60 GFLOP/s in alternating runs on a loaded machine).
inline __m512 fp4_scale_pairs(const uint8_t* s0, const uint8_t* s1) {
  uint16_t a, b;
  std::memcpy(&a, s0, 2);
  std::memcpy(&b, s1, 2);
  const __m128i bytes = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(static_cast<int>(static_cast<uint32_t>(a) | (static_cast<uint32_t>(b) << 16))));
  const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_permutexvar_epi32(0xFFFF, spread, _mm512_zextsi128_si512(bytes)), 23));
}

// The parts every FP4 rows kernel shares (fp4_rows_k, fp4_rows_bf16_k). Start: each row's
// weight and scale pointers at input k0 (pointers stepped per group: `g / 2` and
// `g / kFp4Block` on a signed int cost five scalar instructions each per group; an odd count
// repeats its last row) and the totals, from `carry` unless k0 == 0.
template <int P, int RB>
__attribute__((always_inline)) inline void fp4_rows_begin(const Matrix& w, int n, int count, int k0, const float* carry, const uint8_t* (&p)[2 * P],
                                                          const uint8_t* (&q)[2 * P], __m512 (&acc)[P][RB]) {
  for (int i = 0; i < 2 * P; i++) {
    const int row = n + imin(i, count - 1);
    p[i] = w.fp4_group(row, k0);
    q[i] = w.fp4_scales(row, k0);
  }
  for (int j = 0; j < P; j++)
    for (int r = 0; r < RB; r++) acc[j][r] = k0 > 0 ? _mm512_load_ps(carry + (j * kFp4PairRows + r) * 16) : _mm512_setzero_ps();
}

// Every row's pointers one 64-input group on (gs, qs: the matrix's fp4_group_stride and
// fp4_scale_stride).
template <int P>
__attribute__((always_inline)) inline void fp4_rows_step(const uint8_t* (&p)[2 * P], const uint8_t* (&q)[2 * P], size_t gs, size_t qs) {
#pragma GCC unroll 4
  for (int i = 0; i < 2 * P; i++) {
    p[i] += gs;
    q[i] += qs;
  }
}

// End: the totals to `carry` when k1 < K, else each output's hsum8 to out.
template <int P, int RB>
__attribute__((always_inline)) inline void fp4_rows_end(const Matrix& w, int n, int count, int k1, float* out, size_t ldo, float* carry, const __m512 (&acc)[P][RB]) {
  if (k1 < w.K) {
    for (int j = 0; j < P; j++)
      for (int r = 0; r < RB; r++) _mm512_store_ps(carry + (j * kFp4PairRows + r) * 16, acc[j][r]);
    return;
  }
  alignas(64) float t[16];
  for (int j = 0; j < P; j++)
    for (int r = 0; r < RB; r++) {
      _mm512_store_ps(t, acc[j][r]);
      for (int h = 0; h < 2 && 2 * j + h < count; h++) out[r * ldo + n + 2 * j + h] = hsum8(_mm256_load_ps(t + 8 * h));
    }
}

// Output rows n .. n + count - 1 (count <= 2P: P pairs of rows, the last row repeated when
// count is odd) x RB activation rows over inputs [k0, k1), with the arithmetic above. Each
// activation vector is broadcast once for all P pairs: P = 2 halves the loads and the loop
// overhead per weight of a loop bound by its instruction count (one pair: ~75 per pair and
// 64-input group; bench kernels --rows, 2 threads, against one pair at a time in the same
// run: 1 row 1.06-1.27x, 2-64 rows 1.10-1.29x on both expert shapes). The prefetch asks for
// the same place in the next 2P rows. carry: each pair's kFp4PairRows totals of 16 floats,
// read unless k0 == 0; written unless k1 == K, when the sums go to out.
template <int P, int RB>
void fp4_rows_k(const Matrix& w, int n, int count, const float* x, size_t ldx, float* out, size_t ldo, int k0, int k1, float* carry) {
  const uint8_t* p[2 * P];
  const uint8_t* q[2 * P];
  __m512 acc[P][RB];
  fp4_rows_begin<P, RB>(w, n, count, k0, carry, p, q, acc);
  const size_t ahead = 2 * P * w.row_bytes();
  const size_t gs = w.fp4_group_stride(), qs = w.fp4_scale_stride();
  const float* xg = x + k0;
  for (int g = k0; g < k1; g += 64, xg += 64) {
    __m512 f[P][8], s[P];
#pragma GCC unroll 2
    for (int j = 0; j < P; j++) {
      _mm_prefetch(reinterpret_cast<const char*>(p[2 * j] + ahead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p[2 * j + 1] + ahead), _MM_HINT_T0);
      fp4_decode_pair(p[2 * j], p[2 * j + 1], f[j]);
      s[j] = fp4_scale_pairs(q[2 * j], q[2 * j + 1]);
    }
    fp4_rows_step<P>(p, q, gs, qs);
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const float* xr = xg + r * ldx;
      __m512 a[P], b[P];
      __m512 xv = broadcast8(xr);
      for (int j = 0; j < P; j++) a[j] = _mm512_mul_ps(f[j][0], xv);
      xv = broadcast8(xr + 8);
      for (int j = 0; j < P; j++) b[j] = _mm512_mul_ps(f[j][1], xv);
#pragma GCC unroll 3
      for (int v = 2; v < 8; v += 2) {
        xv = broadcast8(xr + 8 * v);
        for (int j = 0; j < P; j++) a[j] = _mm512_fmadd_ps(f[j][v], xv, a[j]);
        xv = broadcast8(xr + 8 * v + 8);
        for (int j = 0; j < P; j++) b[j] = _mm512_fmadd_ps(f[j][v + 1], xv, b[j]);
      }
      for (int j = 0; j < P; j++) acc[j][r] = _mm512_fmadd_ps(_mm512_add_ps(a[j], b[j]), s[j], acc[j][r]);
    }
  }
  fp4_rows_end<P, RB>(w, n, count, k1, out, ldo, carry, acc);
}

#ifdef DSV4_AVX512_BF16
// FP4 with bf16 dot products (AVX512_BF16), for activation rows that E4M3 quantisation made
// bf16 values (fp4_prepare_bf16's flag). Each product of a chain is then exact (an E4M3
// value times a power of two, 4 significant bits, by an E2M1 one, 2 bits) and so is each
// chain: its four products are multiples of 2^-10 s of at most 2688 s (s the activation
// block's scale), so their sum stays below 2^14 s, within fp32's 24 bits. The chains a and b
// of the AVX2 arithmetic are therefore the same numbers however they are summed, and the
// kernel forms each from two vdpbf16ps (two products per 32-bit lane) instead of four FMAs,
// then does exactly what fp4_rows_k does: (a + b) times the scale pair, added to the total.
// The weights decode to bf16 with one word permute (vpermw, a 32-entry table) per 32 codes
// and no widening to floats: a byte shuffle first puts each 16-byte block's bytes in the
// order (2i, 2i + 1, 8 + 2i, 9 + 2i) for i = 0..3, so that nibble n of every 16-bit word,
// shifted down, pairs in each 32-bit lane i the inputs of one chain: n = 0 and 1 (the two
// nibbles of bytes 2i and 8 + 2i) chain a, n = 2 and 3 (bytes 2i + 1 and 9 + 2i) chain b.
// fp4_prepare_bf16 lays the activations out in the same order. (Against the two byte-table
// shuffles and interleaves per 32 codes before: ten shuffles per group of a pair of rows,
// now six.)

// E2M1 code -> bf16 bits in each 16-bit entry; vpermw reads an index's low 5 bits, and bit 4
// (the next nibble's lowest bit) selects a copy of the same 16 entries.
inline __m512i fp4_bf16_table() {
  return _mm512_setr_epi32(0x3F000000, 0x3FC03F80, 0x40404000, 0x40C04080, (int)0xBF008000u, (int)0xBFC0BF80u, (int)0xC040C000u, (int)0xC0C0C080u,
                           0x3F000000, 0x3FC03F80, 0x40404000, 0x40C04080, (int)0xBF008000u, (int)0xBFC0BF80u, (int)0xC040C000u, (int)0xC0C0C080u);
}

// Group g of rows p0 (low half) and p1 (high half) as bf16 pairs: f[0] and f[1] chain a's,
// f[2] and f[3] chain b's (see fp4_prepare_bf16 for the inputs each lane pairs).
inline void fp4_decode_pair_bf16(const uint8_t* p0, const uint8_t* p1, __m512i table, __m512bh f[4]) {
  const __m512i order = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15));
  const __m512i raw = _mm512_shuffle_epi8(_mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
                                                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1),
                                          order);
  f[0] = as_bf16x32(_mm512_permutexvar_epi16(raw, table));
  f[1] = as_bf16x32(_mm512_permutexvar_epi16(_mm512_srli_epi16(raw, 4), table));
  f[2] = as_bf16x32(_mm512_permutexvar_epi16(_mm512_srli_epi16(raw, 8), table));
  f[3] = as_bf16x32(_mm512_permutexvar_epi16(_mm512_srli_epi16(raw, 12), table));
}

// As fp4_rows_k, with x the rows' bf16 copies (fp4_prepare_bf16: 32 floats' room per group).
template <int P, int RB>
void fp4_rows_bf16_k(const Matrix& w, int n, int count, const float* x, size_t ldx, float* out, size_t ldo, int k0, int k1, float* carry) {
  const uint8_t* p[2 * P];
  const uint8_t* q[2 * P];
  __m512 acc[P][RB];
  fp4_rows_begin<P, RB>(w, n, count, k0, carry, p, q, acc);
  // The prefetch asks for the same line of the rows 2P ahead (4P with several activation
  // rows) once per 64 bytes, i.e. every other group. Against asking every group 2P rows
  // ahead, alternating in one process: 1 row 1.01-1.02x, 2 rows 1.04-1.05x, 4-8 rows
  // 1.05-1.16x; without a prefetch the hardware's alone gave 0.64-0.91x. (A packed matrix's
  // whole tiles take fp4_tile_bf16_k; here only its odd pairs, whose prefetch still lands
  // in the next rows.)
  const size_t ahead = (RB == 1 ? 2 : 4) * P * w.row_bytes();
  const size_t gs = w.fp4_group_stride(), qs = w.fp4_scale_stride();
  const float* xg = x + k0 / 2;
  const __m512i table = fp4_bf16_table();
  for (int g = k0; g < k1; g += 64, xg += 32) {
    __m512bh f[P][4];
    __m512 s[P];
#pragma GCC unroll 2
    for (int j = 0; j < P; j++) {
      if ((g & 64) == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(p[2 * j] + ahead), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p[2 * j + 1] + ahead), _MM_HINT_T0);
      }
      fp4_decode_pair_bf16(p[2 * j], p[2 * j + 1], table, f[j]);
      s[j] = fp4_scale_pairs(q[2 * j], q[2 * j + 1]);
    }
    fp4_rows_step<P>(p, q, gs, qs);
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const float* xr = xg + r * ldx;
      __m512 a[P], b[P];
      for (int j = 0; j < P; j++) a[j] = b[j] = _mm512_setzero_ps();
      for (int v = 0; v < 4; v++) {
        const __m512bh xv = as_bf16x32(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_load_si256(reinterpret_cast<const __m256i*>(xr + 8 * v))));
        for (int j = 0; j < P; j++) {
          if (v < 2) a[j] = _mm512_dpbf16_ps(a[j], f[j][v], xv);
          else b[j] = _mm512_dpbf16_ps(b[j], f[j][v], xv);
        }
      }
      for (int j = 0; j < P; j++) acc[j][r] = _mm512_fmadd_ps(_mm512_add_ps(a[j], b[j]), s[j], acc[j][r]);
    }
  }
  fp4_rows_end<P, RB>(w, n, count, k1, out, ldo, carry, acc);
}

// fp4_rows_bf16_k<2, RB> for one whole tile of a packed matrix (Matrix::fp4_packed; n a
// multiple of kFp4PackRows): the same operations in the same order, with what the packing
// allows. A pair's 64 bytes are one load (not two and an insert), the tile's eight scale
// bytes one load spread to both pairs' lanes by a byte permute each (not two scalar loads,
// a merge, a widening and a dword permute per pair), one pointer for all four rows, and one
// sequential stream to prefetch.
template <int RB>
void fp4_tile_bf16_k(const Matrix& w, int n, int /*count*/, const float* x, size_t ldx, float* out, size_t ldo, int k0, int k1, float* carry) {
  const uint8_t* t = w.fp4_group(n, k0);
  const uint8_t* sc = w.fp4_scales(n, k0);
  __m512 acc[2][RB];
  for (int j = 0; j < 2; j++)
    for (int r = 0; r < RB; r++) acc[j][r] = k0 > 0 ? _mm512_load_ps(carry + (j * kFp4PairRows + r) * 16) : _mm512_setzero_ps();
  const size_t ahead = (RB == 1 ? 1 : 2) * kFp4PackRows * w.row_bytes();
  const float* xg = x + k0 / 2;
  const __m512i table = fp4_bf16_table();
  const __m512i order = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15));
  // Lane i of pair j takes scale byte 4j + i / 4 into its byte 2 (then << 7: the byte << 23 of
  // fp4_scale_pairs); the other bytes are zeroed.
  const __m512i spread0 = _mm512_setr_epi32(0x000000, 0x000000, 0x000000, 0x000000, 0x010000, 0x010000, 0x010000, 0x010000,
                                            0x020000, 0x020000, 0x020000, 0x020000, 0x030000, 0x030000, 0x030000, 0x030000);
  const __m512i spread1 = _mm512_add_epi32(spread0, _mm512_set1_epi32(0x040000));
  constexpr __mmask64 kByte2 = 0x4444444444444444ull;
  for (int g = k0; g < k1; g += 64, xg += 32, t += kFp4PackRows * 32, sc += kFp4PackRows * 2) {
    _mm_prefetch(reinterpret_cast<const char*>(t + ahead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(t + ahead + 64), _MM_HINT_T0);
    __m512bh f[2][4];
    __m512 s[2];
    const __m512i bytes = _mm512_zextsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc)));
    for (int j = 0; j < 2; j++) {
      const __m512i raw = _mm512_shuffle_epi8(_mm512_loadu_si512(t + 64 * j), order);
      f[j][0] = as_bf16x32(_mm512_permutexvar_epi16(raw, table));
      f[j][1] = as_bf16x32(_mm512_permutexvar_epi16(_mm512_srli_epi16(raw, 4), table));
      f[j][2] = as_bf16x32(_mm512_permutexvar_epi16(_mm512_srli_epi16(raw, 8), table));
      f[j][3] = as_bf16x32(_mm512_permutexvar_epi16(_mm512_srli_epi16(raw, 12), table));
      s[j] = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_permutexvar_epi8(kByte2, j == 0 ? spread0 : spread1, bytes), 7));
    }
#pragma GCC unroll 8
    for (int r = 0; r < RB; r++) {
      const float* xr = xg + r * ldx;
      __m512 a[2], b[2];
      for (int j = 0; j < 2; j++) a[j] = b[j] = _mm512_setzero_ps();
      for (int v = 0; v < 4; v++) {
        const __m512bh xv = as_bf16x32(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_load_si256(reinterpret_cast<const __m256i*>(xr + 8 * v))));
        for (int j = 0; j < 2; j++) {
          if (v < 2) a[j] = _mm512_dpbf16_ps(a[j], f[j][v], xv);
          else b[j] = _mm512_dpbf16_ps(b[j], f[j][v], xv);
        }
      }
      for (int j = 0; j < 2; j++) acc[j][r] = _mm512_fmadd_ps(_mm512_add_ps(a[j], b[j]), s[j], acc[j][r]);
    }
  }
  fp4_rows_end<2, RB>(w, n, kFp4PackRows, k1, out, ldo, carry, acc);
}

// Whether rows [r0, r0 + rb) of a prepared block may take the bf16 path.
inline bool fp4_bf16_rows(const Matrix& w, const float* xp, size_t ldx, int r0, int rb) {
  for (int r = r0; r < r0 + rb; r++)
    if (xp[static_cast<size_t>(r) * ldx + fp4_bf16_flag(w.K)] != 1.0f) return false;
  return true;
}
#endif

using Fp4RowsFn = void (*)(const Matrix&, int, int, const float*, size_t, float*, size_t, int, int, float*);

// The kernel for P pairs of weight rows by RB activation rows, on floats or (Bf16) on the
// rows' bf16 copies.
template <int P, int RB, bool Bf16>
inline Fp4RowsFn fp4_kernel() {
#ifdef DSV4_AVX512_BF16
  if constexpr (Bf16) return fp4_rows_bf16_k<P, RB>;
#endif
  return fp4_rows_k<P, RB>;
}

#ifdef DSV4_AVX512_BF16
inline Fp4RowsFn fp4_tile_bf16_for(int rb) {
  switch (rb) {
    case 1: return fp4_tile_bf16_k<1>;
    case 2: return fp4_tile_bf16_k<2>;
    case 3: return fp4_tile_bf16_k<3>;
    case 4: return fp4_tile_bf16_k<4>;
    case 5: return fp4_tile_bf16_k<5>;
    case 6: return fp4_tile_bf16_k<6>;
    case 7: return fp4_tile_bf16_k<7>;
    default: return fp4_tile_bf16_k<8>;
  }
}
#endif

template <int P, bool Bf16>
inline Fp4RowsFn fp4_rows_for(int rb) {
  switch (rb) {
    case 1: return fp4_kernel<P, 1, Bf16>();
    case 2: return fp4_kernel<P, 2, Bf16>();
    case 3: return fp4_kernel<P, 3, Bf16>();
    case 4: return fp4_kernel<P, 4, Bf16>();
    case 5: return fp4_kernel<P, 5, Bf16>();
    case 6: return fp4_kernel<P, 6, Bf16>();
    case 7: return fp4_kernel<P, 7, Bf16>();
    default: return fp4_kernel<P, 8, Bf16>();
  }
}

// Output rows [n0, n1) of an FP4 matrix (Fp4Group64 layout) for `rows` prepared activation
// rows: balanced passes of up to kFp4PairRows rows, each over K in chunks.
void fp4_pairs(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  const int passes = (rows + kFp4PairRows - 1) / kFp4PairRows;
  const int pairs = (n1 - n0 + 1) / 2;
  float* carry = static_cast<float*>(scratch(Scratch::Carry, static_cast<size_t>(pairs) * kFp4PairRows * 16 * sizeof(float)));
  for (int p = 0, r0 = 0; p < passes; p++) {
    const int rb = (rows - r0 + (passes - p) - 1) / (passes - p);
    Fp4RowsFn quad = fp4_rows_for<2, false>(rb), pair = fp4_rows_for<1, false>(rb);
    const float* x = xp + static_cast<size_t>(r0) * ldx;
    bool whole_k = rb == 1;
#ifdef DSV4_AVX512_BF16
    if (fp4_bf16_rows(w, xp, ldx, r0, rb)) {
      quad = w.fp4_packed && n0 % kFp4PackRows == 0 ? fp4_tile_bf16_for(rb) : fp4_rows_for<2, true>(rb);
      pair = fp4_rows_for<1, true>(rb);
      x += w.K;
      // Half the activation bytes per input, read by half the instructions: the whole K in
      // one pass measured 1.22-1.60x against fp4_chunk's L1-sized chunks at 4-32 rows and
      // 1.00-1.15x at 2 (2048 x 4096 and 4096 x 2048, alternating in one process); chunks
      // sized for 2-byte activations came between the two.
      whole_k = true;
    }
#endif
    float* o = out + static_cast<size_t>(r0) * ldo;
    const int kc = whole_k ? w.K : fp4_chunk(w.K, rb);
    for (int k0 = 0; k0 < w.K; k0 += kc) {
      const int k1 = imin(w.K, k0 + kc);
      for (int i = 0; i < pairs;) {
        const int n = n0 + 2 * i;
        float* c = carry + static_cast<size_t>(i) * kFp4PairRows * 16;
        if (n + 4 <= n1) {
          quad(w, n, 4, x, ldx, o, ldo, k0, k1, c);
          i += 2;
        } else {
          pair(w, n, imin(2, n1 - n), x, ldx, o, ldo, k0, k1, c);
          i += 1;
        }
      }
    }
    r0 += rb;
  }
}

// ---------------------------------------------------------------------------------------
// FP8 (the dense products: attention projections, shared experts) with several activation
// rows: two activation rows per 512-bit vector (row 2q in lanes 0-7, 2q + 1 in 8-15, from a
// pair-interleaved copy of the prescaled rows) and each weight row's decoded vectors in both
// halves, so that one FMA advances one weight row against two activation rows. Per output
// the arithmetic is the AVX2 kernels' (fp8_dot, fp8_gemv4): one chain per 128-input block
// from zero in K order (Fp8Group32 lanes), each added to a total that starts at zero, the
// result hsum8(total) * post. kFp8Tile weight rows x up to kFp8Pairs pairs per micro-kernel,
// over the whole K (as bf16_tiled, and for the same reason).
constexpr int kFp8Tile = 2;       // weight rows per micro-kernel (8 decoded vectors)
constexpr int kFp8Pairs = 4;      // most activation row pairs per micro-kernel (2 x 4 chains + totals)

// fp8_decode32 with each vector in both halves.
inline void fp8_decode32_both(const uint8_t* p, __m512 w[4]) {
  const __m512i mask = _mm512_set1_epi32(static_cast<int>(0x87F00000u));
  const __m512i raw = _mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  w[0] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, _mm512_maskz_slli_epi32(0xFFFF, raw, 24), 4), mask));
  w[1] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, _mm512_maskz_slli_epi32(0xFFFF, raw, 16), 4), mask));
  w[2] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, _mm512_maskz_slli_epi32(0xFFFF, raw, 8), 4), mask));
  w[3] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, raw, 4), mask));
}

// MR weight rows (w: the first, K bytes apart) x NP activation pairs (xq: pair q at
// xq + q * 2K). out/post: the pairs' first row; `last_single`: the last pair's second row is
// a copy of its first (an odd row count) and is not stored. `ahead`: bytes to prefetch past
// each weight row's inputs (0: none).
template <int MR, int NP>
void fp8_micro(const uint8_t* w, int K, const float* xq, float* out, size_t ldo, const double* post, bool last_single, size_t ahead) {
  const size_t lw = static_cast<size_t>(K), lq = 2 * static_cast<size_t>(K);
  __m512 tot[MR][NP];
  for (int j = 0; j < MR; j++)
    for (int q = 0; q < NP; q++) tot[j][q] = _mm512_setzero_ps();
  for (int kb = 0; kb < K; kb += kFp8Block) {
    const int ke = imin(K, kb + kFp8Block);
    __m512 c[MR][NP];
    for (int j = 0; j < MR; j++)
      for (int q = 0; q < NP; q++) c[j][q] = _mm512_setzero_ps();
    for (int k = kb; k < ke; k += 32) {
      __m512 wv[MR][4];
      for (int j = 0; j < MR; j++) {
        if (ahead) _mm_prefetch(reinterpret_cast<const char*>(w + j * lw + k + ahead), _MM_HINT_T0);
        fp8_decode32_both(w + j * lw + k, wv[j]);
      }
      for (int p = 0; p < 4; p++)
        for (int q = 0; q < NP; q++) {
          const __m512 xv = _mm512_load_ps(xq + q * lq + 2 * (k + 8 * p));
          for (int j = 0; j < MR; j++) c[j][q] = _mm512_fmadd_ps(wv[j][p], xv, c[j][q]);
        }
    }
    for (int j = 0; j < MR; j++)
      for (int q = 0; q < NP; q++) tot[j][q] = _mm512_add_ps(tot[j][q], c[j][q]);
  }
  alignas(64) float t[16];
  for (int j = 0; j < MR; j++)
    for (int q = 0; q < NP; q++) {
      _mm512_store_ps(t, tot[j][q]);
      out[2 * q * ldo + j] = static_cast<float>(static_cast<double>(hsum8(_mm256_load_ps(t))) * post[2 * q]);
      if (!(last_single && q == NP - 1)) out[(2 * q + 1) * ldo + j] = static_cast<float>(static_cast<double>(hsum8(_mm256_load_ps(t + 8))) * post[2 * q + 1]);
    }
}

using Fp8Micro = void (*)(const uint8_t*, int, const float*, float*, size_t, const double*, bool, size_t);

template <int MR>
inline Fp8Micro fp8_micro_for(int np) {
  switch (np) {
    case 1: return fp8_micro<MR, 1>;
    case 2: return fp8_micro<MR, 2>;
    case 3: return fp8_micro<MR, 3>;
    default: return fp8_micro<MR, 4>;
  }
}

// Two FP8 weight rows' 32 inputs, row p0 in lanes 0-7 and p1 in 8-15 of each vector (each
// half decodes its 32 bytes exactly as fp8_decode32 does).
inline void fp8_decode32_pair(const uint8_t* p0, const uint8_t* p1, __m512 w[4]) {
  const __m512i mask = _mm512_set1_epi32(static_cast<int>(0x87F00000u));
  const __m512i raw = _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
                                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1);
  w[0] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, _mm512_maskz_slli_epi32(0xFFFF, raw, 24), 4), mask));
  w[1] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, _mm512_maskz_slli_epi32(0xFFFF, raw, 16), 4), mask));
  w[2] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, _mm512_maskz_slli_epi32(0xFFFF, raw, 8), 4), mask));
  w[3] = _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_srai_epi32(0xFFFF, raw, 4), mask));
}

constexpr int kFp8GemvRows = 8;  // weight rows per fp8_gemv8_rows call (4 pairs)

// The FP8 product on AVX-512 for R activation rows (every row count: the GEMV, decode
// batches, the verify step of speculative decoding, prefill): eight weight rows as four pairs,
// each pair's 32 inputs decoded once and used by every activation row (broadcast to both
// halves), one chain per (pair, row) per 128-input block: 4R chains. Per output the sums are
// fp8_gemv4's and fp8_dot's, bit for bit. fp8_tiled, which it replaced for all but a range's
// last n mod 8 rows, puts one weight row in both halves: every weight is decoded once per
// activation pair and a pair runs only two chains, so the FMA latency bound it at 2-4 rows.
// Measured in a kernel harness (one Zen 5 core, weights streamed from DRAM, both kernels in
// one process, FP8 1024x4096 / 4096x1024): 2 rows 0.30 -> 0.25 / 0.31 -> 0.19 ms, 3 rows
// 0.40 -> 0.26 / 0.37 -> 0.20, 8 rows 0.70 -> 0.55 / 0.67 -> 0.47, 32 rows 2.39 -> 1.93 /
// 2.50 -> 1.84. Passes of 5 or 6 rows over four pairs spill the chains and measured slower
// than 3 + 2 or 3 + 3; over two pairs (Q = 2: 2R chains) they do not, see fp8_passes. At one
// row it also beat the former single-row kernel (two blocks at once, eight chains),
// 1.06-1.12x alternating in one process (bench-style, 2 threads, 4096x4096 / 1024x4096 /
// 4096x1024), and asking for the next rows' line once per 64 bytes rather than per 32 gave
// another 1.05-1.14x at 1-4 rows.
constexpr int kFp8RowsMost = 4;  // most activation rows per four-pair pass
constexpr int kFp8WideRows = 6;  // most activation rows per two-pair pass

// One 32-input group g of the 2Q weight rows at w (k bytes apart) against R prescaled rows
// (Fp8Group32, ldx floats apart): c[r][q] advanced by pair q's four decoded vectors.
struct Fp8FloatGroups {
  // Two-pair passes of 5-6 rows measured slower here (four FMAs per pair and row spill them).
  static constexpr bool kWidePasses = false;
  const float* x;
  size_t ldx;
  Fp8FloatGroups from_row(int r0) const { return {x + static_cast<size_t>(r0) * ldx, ldx}; }
  // Row r's chain sum of 128-input block b as the prescaled rows' (these are).
  __m512 block_sum(int /*r*/, int /*b*/, __m512 c) const { return c; }
  template <int R, int Q>
  __attribute__((always_inline)) void step(const uint8_t* w, size_t k, int g, __m512 (&c)[R][Q]) const {
#pragma GCC unroll 4
    for (int q = 0; q < Q; q++) {
      __m512 wv[4];
      fp8_decode32_pair(w + 2 * q * k + g, w + (2 * q + 1) * k + g, wv);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        const float* xr = x + r * ldx + g;
        for (int p = 0; p < 4; p++) c[r][q] = _mm512_fmadd_ps(wv[p], broadcast8(xr + 8 * p), c[r][q]);
      }
    }
  }
};

// The kernel for either way of forming the chains (Groups: Fp8FloatGroups, Fp8Bf16Groups).
template <int R, class Groups, int Q = 4>
void fp8_gemv8_rows(const uint8_t* w, int K, const Groups& rows, float* out, size_t ldo, const double* post, bool ahead) {
  const size_t k = static_cast<size_t>(K);
  const Groups groups = rows;  // a local copy, so that its vectors stay in registers
  // The totals live in memory (added to once per block): 4R chains and 4R totals in
  // registers would spill inside the loop from R = 4.
  alignas(64) float t[R][Q][16];
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) _mm512_store_ps(t[r][q], _mm512_setzero_ps());
  for (int kb = 0; kb < K; kb += kFp8Block) {
    const int ke = imin(K, kb + kFp8Block);
    __m512 c[R][Q];  // (without the unroll pragmas GCC 12 keeps these on the stack)
    for (int r = 0; r < R; r++)
      for (int q = 0; q < Q; q++) c[r][q] = _mm512_setzero_ps();
    for (int g = kb; g < ke; g += 32) {
      if (ahead && (g & 32) == 0)
        for (int j = 0; j < 2 * Q; j++) _mm_prefetch(reinterpret_cast<const char*>(w + j * k + g + 2 * Q * k), _MM_HINT_T0);
      groups.template step<R, Q>(w, k, g, c);
    }
    for (int r = 0; r < R; r++)
      for (int q = 0; q < Q; q++) _mm512_store_ps(t[r][q], _mm512_add_ps(_mm512_load_ps(t[r][q]), groups.block_sum(r, kb / kFp8Block, c[r][q])));
  }
  for (int r = 0; r < R; r++)
    for (int q = 0; q < Q; q++) {
      out[r * ldo + 2 * q] = static_cast<float>(static_cast<double>(hsum8(_mm256_load_ps(t[r][q]))) * post[r]);
      out[r * ldo + 2 * q + 1] = static_cast<float>(static_cast<double>(hsum8(_mm256_load_ps(t[r][q] + 8))) * post[r]);
    }
}

template <class Groups>
using Fp8RowsFn = void (*)(const uint8_t*, int, const Groups&, float*, size_t, const double*, bool);

// The kernel for r activation rows over Q pairs: at most kFp8RowsMost rows over four pairs
// (with bf16 dot products too, 5 or 6 rows there spill and measured 0.82-0.92x of two passes),
// at most kFp8WideRows over two.
template <class Groups, int Q>
inline Fp8RowsFn<Groups> fp8_rows_for(int r) {
  if constexpr (Q == 2) {
    if (r == 5) return fp8_gemv8_rows<5, Groups, 2>;
    if (r >= 6) return fp8_gemv8_rows<6, Groups, 2>;
  }
  switch (r) {
    case 1: return fp8_gemv8_rows<1, Groups, Q>;
    case 2: return fp8_gemv8_rows<2, Groups, Q>;
    case 3: return fp8_gemv8_rows<3, Groups, Q>;
    default: return fp8_gemv8_rows<4, Groups, Q>;
  }
}

#ifdef DSV4_AVX512_BF16
// fp8_gemv8_rows with bf16 dot products (AVX512_BF16 + VBMI). vdpbf16ps advances a lane's
// float by its high product, then its low one, each rounded to nearest even as an FMA would
// be (checked on Zen 5: a tie after the first product is rounded before the second is
// added), but reads denormal inputs as 0 and flushes denormal results. So each lane's chain
// of fp8_gemv8_rows (inputs 4i, 4i + 1, 4i + 2, 4i + 3 of every 32, in that order) becomes two
// instructions, bit for bit, when no value involved is a denormal:
// - weights: E4M3 values (subnormals and the 0x7F code's 480 included, as fp8_decode32 reads
//   it) as normal bf16 from a 128-entry table (vpermi2b), not the float path's value * 2^-120;
// - activations: the prescaled rows times 2^-120, so that every product is the float path's;
//   fp8_prepare_row_bf16 and fp8_group_factors allow a row only when each value is 0 or of magnitude in [2^10, 2^110)
//   (times 2^-120: normal) and a bf16 value (the E4M3 activations times powers of two are);
// - products: a weight's E4M3 grid (2^-9) times an activation's bf16 grid (at least 2^3) times
//   2^-120 is a multiple of 2^-126, so every partial sum, rounded or not, is 0 or normal, and
//   below 2^-1.2 * 16 per chain. No product can overflow.
// Decoding 32 inputs of two weight rows costs an insert, a byte shuffle, two table lookups, a
// sign merge and two unpacks (the float path: an insert and twelve shifts and masks), and each
// activation row then takes two instructions where it took four FMAs.
struct Fp8Bf16Tables {
  __m512i order;   // per 128-bit lane: the bytes in the order the unpacks pair them
  __m512i lo0, lo1, hi0, hi1;  // bf16 low / high bytes of E4M3 magnitudes 0-63, 64-127
  __m512i sign;    // 0x80 in every byte
};

inline Fp8Bf16Tables fp8_bf16_tables() {
  alignas(64) static uint8_t lo[128], hi[128];
  static const bool filled = [] {
    for (int m = 0; m < 128; m++) {
      const int e = m >> 3, f = m & 7;
      const float v = e == 0 ? ldexpf(static_cast<float>(f), -9) : ldexpf(1.0f + f / 8.0f, e - 7);
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      lo[m] = static_cast<uint8_t>(bits >> 16);
      hi[m] = static_cast<uint8_t>(bits >> 24);
    }
    return true;
  }();
  (void)filled;
  Fp8Bf16Tables t;
  // Unpacking (lo, hi) bytes 0-7 of a 128-bit lane gives words 0-7: dword d = (word of byte
  // 2d, word of byte 2d + 1), the second the high half. Lane d's first instruction needs
  // (input 4d + 1, input 4d) there, its second (4d + 3, 4d + 2), from bytes 8-15.
  t.order = _mm512_maskz_broadcast_i32x4(0xFFFF, _mm_setr_epi8(1, 0, 5, 4, 9, 8, 13, 12, 3, 2, 7, 6, 11, 10, 15, 14));
  t.lo0 = _mm512_load_si512(lo);
  t.lo1 = _mm512_load_si512(lo + 64);
  t.hi0 = _mm512_load_si512(hi);
  t.hi1 = _mm512_load_si512(hi + 64);
  t.sign = _mm512_set1_epi8(static_cast<char>(0x80));
  return t;
}

// 32 inputs of weight rows p0 (lanes 0-7) and p1 (8-15) as bf16 pairs: a holds, in lane i,
// inputs 4i (high) and 4i + 1 (low); b inputs 4i + 2 and 4i + 3.
inline void fp8_decode32_pair_bf16(const uint8_t* p0, const uint8_t* p1, const Fp8Bf16Tables& t, __m512bh& a, __m512bh& b) {
  const __m512i raw = _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
                                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1);
  const __m512i codes = _mm512_shuffle_epi8(raw, t.order);
  const __m512i lo = _mm512_permutex2var_epi8(t.lo0, codes, t.lo1);
  const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(t.hi0, codes, t.hi1), codes, t.sign, 0xF8);  // hi | (codes & 0x80)
  a = as_bf16x32(_mm512_unpacklo_epi8(lo, hi));
  b = as_bf16x32(_mm512_unpackhi_epi8(lo, hi));
}

// As Fp8FloatGroups, from the rows' own bf16 pairs (fp8_prepare_row_bf16, ldb words apart):
// two vdpbf16ps per pair and row where that takes four FMAs. Each 128-input block's chain sum
// is then scaled by the row's factor for the block (fp8_group_factors, ldf apart), which makes
// it the prescaled rows' chain sum exactly.
// Mode: kFp8Decode decodes the weights in every pass; over several passes of activation rows
// the first (kFp8DecodeStore) also stores each 32-input group's decoded pairs in `decoded`
// (2Q vectors per group) and the others (kFp8Load) read them from there instead of decoding
// again. The same vectors either way, so the same sums.
enum Fp8Mode { kFp8Decode, kFp8DecodeStore, kFp8Load };
// Up to this K the decoded pairs of a two-pair pass (8 KB per 1,024 inputs) are kept.
constexpr int kFp8DecodeOnceK = 2048;

template <int Mode = kFp8Decode>
struct Fp8Bf16Groups {
  static constexpr bool kWidePasses = true;
  const uint32_t* xb;
  size_t ldb;
  const float* f;
  size_t ldf;
  Fp8Bf16Tables tables;
  __m512i* decoded = nullptr;
  Fp8Bf16Groups from_row(int r0) const { return {xb + static_cast<size_t>(r0) * ldb, ldb, f + static_cast<size_t>(r0) * ldf, ldf, tables, decoded}; }
  template <int M>
  Fp8Bf16Groups<M> with_mode(__m512i* buffer) const { return {xb, ldb, f, ldf, tables, buffer}; }
  __m512 block_sum(int r, int b, __m512 c) const { return _mm512_mul_ps(c, _mm512_set1_ps(f[static_cast<size_t>(r) * ldf + b])); }
  template <int R, int Q>
  __attribute__((always_inline)) void step(const uint8_t* w, size_t k, int g, __m512 (&c)[R][Q]) const {
    if constexpr (Q == 2) {
      // Both pairs decoded first, then each row's two broadcasts used by both: hoisting all
      // rows' broadcasts out of a pair loop (what GCC does with the loop below) spills at 6 rows.
      __m512bh a[Q], b[Q];
      __m512i* d = decoded + static_cast<size_t>(g / 32) * 2 * Q;
      for (int q = 0; q < Q; q++) {
        if constexpr (Mode == kFp8Load) {
          a[q] = as_bf16x32(_mm512_load_si512(d + 2 * q));
          b[q] = as_bf16x32(_mm512_load_si512(d + 2 * q + 1));
        } else {
          fp8_decode32_pair_bf16(w + 2 * q * k + g, w + (2 * q + 1) * k + g, tables, a[q], b[q]);
          if constexpr (Mode == kFp8DecodeStore) {
            _mm512_store_si512(d + 2 * q, (__m512i)a[q]);
            _mm512_store_si512(d + 2 * q + 1, (__m512i)b[q]);
          }
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) {
        const uint32_t* xr = xb + r * ldb + g / 2;
        const __m512bh x0 = as_bf16x32(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr))));
        const __m512bh x1 = as_bf16x32(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + 8))));
        for (int q = 0; q < Q; q++) c[r][q] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(c[r][q], a[q], x0), b[q], x1);
      }
      return;
    }
    static_assert(Q == 2 || Mode == kFp8Decode, "decoded pairs are kept for two-pair passes only");
#pragma GCC unroll 4
    for (int q = 0; q < Q; q++) {
      __m512bh a, b;
      fp8_decode32_pair_bf16(w + 2 * q * k + g, w + (2 * q + 1) * k + g, tables, a, b);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        const uint32_t* xr = xb + r * ldb + g / 2;
        c[r][q] = _mm512_dpbf16_ps(c[r][q], a, as_bf16x32(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr)))));
        c[r][q] = _mm512_dpbf16_ps(c[r][q], b, as_bf16x32(_mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + 8)))));
      }
    }
  }
};
#endif

// Output rows [n0, n1) of one 128-row scale group (fp8_group) for `rows` >= 2 prescaled rows
// (xs, ldx floats apart) with their post factors.
void fp8_tiled(const Matrix& w, const float* xs, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1, const double* post) {
  const int K = w.K;
  const int pairs = (rows + 1) / 2;
  // Pair q's 8-input step s at xq + q * 2K + 16 s: row 2q's 8 inputs, then row 2q + 1's (for
  // an odd count the last row twice).
  float* xq = static_cast<float*>(scratch(Scratch::Paired, static_cast<size_t>(pairs) * 2 * K * sizeof(float)));
  for (int q = 0; q < pairs; q++) {
    const float* a = xs + static_cast<size_t>(2 * q) * ldx;
    const float* b = xs + static_cast<size_t>(imin(2 * q + 1, rows - 1)) * ldx;
    float* d = xq + static_cast<size_t>(q) * 2 * K;
    for (int k = 0; k < K; k += 8) {
      _mm256_store_ps(d + 2 * k, _mm256_loadu_ps(a + k));
      _mm256_store_ps(d + 2 * k + 8, _mm256_loadu_ps(b + k));
    }
  }
  // Blocks of pairs whose activations stay in L2 (as bf16_tiled's), each passing every tile.
  const int most = imax(kFp8Pairs, imin(kBf16Block / 2, static_cast<int>(kBf16BlockBytes / (8 * static_cast<size_t>(K)))));
  const int blocks = (pairs + most - 1) / most;
  const int block_pairs = (pairs + blocks - 1) / blocks;
  for (int b0 = 0; b0 < pairs; b0 += block_pairs) {
    const int bp = imin(block_pairs, pairs - b0);
    const int passes = (bp + kFp8Pairs - 1) / kFp8Pairs;
    for (int n = n0; n < n1; n += kFp8Tile) {
      const int mr = imin(kFp8Tile, n1 - n);
      for (int p = 0, q0 = b0; p < passes; p++) {
        const int np = (b0 + bp - q0 + (passes - p) - 1) / (passes - p);
        const bool last_single = q0 + np == pairs && (rows & 1);
        const Fp8Micro fn = mr == 1 ? fp8_micro_for<1>(np) : fp8_micro_for<2>(np);
        fn(w.row(n), K, xq + static_cast<size_t>(q0) * 2 * K, out + static_cast<size_t>(2 * q0) * ldo + n, ldo, post + 2 * q0, last_single, p == 0 ? mr * static_cast<size_t>(K) : 0);
        q0 += np;
      }
    }
  }
}

// Output rows [n0, n1) of one 128-row scale group for `rows` >= 2 prescaled rows: 2Q weight
// rows at a time, each in balanced passes of activation rows. Only the first pass asks for the
// next rows: the later ones read these from L1/L2, and asking again there cost 10-30% from 6
// rows on. The last n1 - n0 mod 8 rows go through fp8_tiled.
template <int Q, class Groups>
void fp8_passes_of(const Matrix& w, const Groups& groups, int rows, float* out, size_t ldo, int n0, int n1, const double* post) {
  constexpr int most = Q == 2 ? kFp8WideRows : kFp8RowsMost;
  const int passes = (rows + most - 1) / most;
  const int end = n0 + (n1 - n0) / kFp8GemvRows * kFp8GemvRows;
  // Every 2Q weight rows, the first pass through `first` (which asks for the next rows), the
  // others through `later`.
  const auto run = [&](const auto& first, const auto& later) {
    for (int n = n0; n < end; n += 2 * Q)
      for (int p = 0, r0 = 0; p < passes; p++) {
        const int rb = (rows - r0 + (passes - p) - 1) / (passes - p);
        float* o = out + static_cast<size_t>(r0) * ldo + n;
        if (p == 0)
          fp8_rows_for<std::decay_t<decltype(first)>, Q>(rb)(w.row(n), w.K, first.from_row(r0), o, ldo, post + r0, true);
        else
          fp8_rows_for<std::decay_t<decltype(later)>, Q>(rb)(w.row(n), w.K, later.from_row(r0), o, ldo, post + r0, false);
        r0 += rb;
      }
  };
#ifdef DSV4_AVX512_BF16
  // With bf16 dot products and several passes, the first decodes each group of four weight
  // rows and keeps the pairs (K / 32 x 4 vectors), the later ones read them. Up to K = 2048
  // the pairs (16 KB) stay in L1 beside a pass's activations; at K = 4096 they did not, and it
  // measured the same as decoding in every pass. FP8 with the weights in cache, 2 threads,
  // alternating builds: 32768x1024 16 / 32 / 64 rows 1.06-1.07x / 1.13-1.20x / 1.16-1.21x,
  // 8192x1024 1.06-1.16x / 1.12-1.19x / 1.15-1.22x, 4096x2048 1.01-1.03x / 1.09x / 1.10-1.11x.
  // (The same over K chunks of 512, to keep 4096 in L1 too, measured 0.88-0.90x there.)
  if constexpr (Q == 2 && std::is_same_v<Groups, Fp8Bf16Groups<kFp8Decode>>) {
    if (passes > 1 && w.K <= kFp8DecodeOnceK) {
      __m512i* buffer = static_cast<__m512i*>(scratch(Scratch::Tile, static_cast<size_t>(w.K / 32) * 2 * Q * sizeof(__m512i)));
      return run(groups.template with_mode<kFp8DecodeStore>(buffer), groups.template with_mode<kFp8Load>(buffer));
    }
  }
#endif
  run(groups, groups);
}

// With bf16 dot products, from 5 rows: balanced passes of up to 6 rows over two pairs at a time
// (each weight decoded once per pass) instead of passes of up to 4 rows over four pairs; the
// sums per output are the same. FP8 wo_b/wq_b/wq_a/wkv of both flash-slice layers, 2 threads,
// best of 12 alternating in one process: 5 rows 1.12x, 6 rows 1.16x, 16 rows 1.10x (5.48 ->
// 4.88, 6.14 -> 5.29, 14.46 -> 13.14 ms), 7 rows 0.95-1.00x, 32 rows 1.06x, 64 rows 1.27x,
// 256 rows 1.02x (another run, best of 4-6). The float path keeps four-pair passes: two-pair
// ones of 6 and 16 rows measured 0.84x and 0.94x on the avx512 table.
template <class Groups>
void fp8_passes(const Matrix& w, const Groups& groups, int rows, float* out, size_t ldo, int n0, int n1, const double* post) {
  if constexpr (Groups::kWidePasses) {
    if (rows > kFp8RowsMost) return fp8_passes_of<2>(w, groups, rows, out, ldo, n0, n1, post);
  }
  fp8_passes_of<4>(w, groups, rows, out, ldo, n0, n1, post);
}

// xb, f: the rows' own bf16 pairs and this group's block factors (fp8_group_factors), for
// bf16 dot products; null: the float kernels on the prescaled rows xs. xs may be null when
// n1 - n0 is a multiple of 8 (only fp8_tiled reads it then).
void fp8_rows(const Matrix& w, const float* xs, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1, const double* post, const uint32_t* xb, size_t ldb,
              const float* f, size_t ldf) {
#ifdef DSV4_AVX512_BF16
  if (xb)
    fp8_passes(w, Fp8Bf16Groups<>{xb, ldb, f, ldf, fp8_bf16_tables()}, rows, out, ldo, n0, n1, post);
  else
#endif
    fp8_passes(w, Fp8FloatGroups{xs, ldx}, rows, out, ldo, n0, n1, post);
  const int tail = n0 + (n1 - n0) / kFp8GemvRows * kFp8GemvRows;
  if (tail < n1) fp8_tiled(w, xs, ldx, rows, out, ldo, tail, n1, post);
}
