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
constexpr int kBf16TiledRows = 2;  // activation rows from which bf16_tiled is used
constexpr int kBf16Tile = 4;       // weight rows per micro-kernel
constexpr int kBf16Group = 6;      // most activation rows per micro-kernel (4 x 6 accumulators)
constexpr int kBf16Block = 16;     // most activation rows sharing one pass over a tile
constexpr size_t kBf16BlockBytes = 256 * 1024;  // their activations, to stay in L2

// Sixteen BF16 weights (32 bytes) as [even inputs | odd inputs] floats. (The zero-masked
// intrinsics: GCC 12 warns about the plain ones' undefined pass-through source.)
inline __m512 bf16_decode_even_odd(const uint8_t* p) {
  const __m512i raw = _mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  const __m512i shift = _mm512_setr_epi32(16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_maskz_sllv_epi32(0xFFFF, raw, shift), _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// MR weight rows (w: the first, row_bytes apart) x NR activation rows (x: ldx floats apart)
// over all K inputs; out[r * ldo + j] gets output (j, r). `ahead`: bytes past each weight
// row's inputs to prefetch (0: none).
template <int MR, int NR>
void bf16_micro(const uint8_t* w, size_t row_bytes, int K, const float* x, size_t ldx, float* out, size_t ldo, size_t ahead) {
  __m512 c[MR][NR];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) c[j][r] = _mm512_setzero_ps();
  for (int i = 0; i < K; i += 16) {
    if (ahead && (i & 31) == 0)
      for (int j = 0; j < MR; j++) _mm_prefetch(reinterpret_cast<const char*>(w + j * row_bytes + 2 * i + ahead), _MM_HINT_T0);
    __m512 wv[MR];
    for (int j = 0; j < MR; j++) wv[j] = bf16_decode_even_odd(w + j * row_bytes + 2 * i);
    for (int r = 0; r < NR; r++) {
      const __m512 xv = _mm512_loadu_ps(x + r * ldx + i);
      for (int j = 0; j < MR; j++) c[j][r] = _mm512_fmadd_ps(wv[j], xv, c[j][r]);
    }
  }
  alignas(64) float t[16];
  for (int j = 0; j < MR; j++)
    for (int r = 0; r < NR; r++) {
      _mm512_store_ps(t, c[j][r]);
      out[r * ldo + j] = hsum8(_mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8)));
    }
}

using Bf16Micro = void (*)(const uint8_t*, size_t, int, const float*, size_t, float*, size_t, size_t);

template <int MR>
inline Bf16Micro bf16_micro_for(int nr) {
  switch (nr) {
    case 1: return bf16_micro<MR, 1>;
    case 2: return bf16_micro<MR, 2>;
    case 3: return bf16_micro<MR, 3>;
    case 4: return bf16_micro<MR, 4>;
    case 5: return bf16_micro<MR, 5>;
    default: return bf16_micro<MR, 6>;
  }
}
inline Bf16Micro bf16_micro_for(int mr, int nr) {
  switch (mr) {
    case 1: return bf16_micro_for<1>(nr);
    case 2: return bf16_micro_for<2>(nr);
    case 3: return bf16_micro_for<3>(nr);
    default: return bf16_micro_for<4>(nr);
  }
}

// Output rows [n0, n1) of a BF16 matrix (K % 16 == 0, Bf16Group16 layout) for `rows`
// prepared activation rows ldx floats apart.
void bf16_tiled(const Matrix& w, const float* xp, size_t ldx, int rows, float* out, size_t ldo, int n0, int n1) {
  const int K = w.K;
  const size_t row_bytes = w.row_bytes();
  const int most = imax(kBf16Group, imin(kBf16Block, static_cast<int>(kBf16BlockBytes / (4 * static_cast<size_t>(K)))));
  const int blocks = (rows + most - 1) / most;
  const int block_rows = (rows + blocks - 1) / blocks;
  for (int b0 = 0; b0 < rows; b0 += block_rows) {
    const int br = imin(block_rows, rows - b0);
    const int groups = (br + kBf16Group - 1) / kBf16Group;
    for (int n = n0; n < n1; n += kBf16Tile) {
      const int mr = imin(kBf16Tile, n1 - n);
      const uint8_t* wt = w.row(n);
      for (int g = 0, r0 = b0; g < groups; g++) {
        // Balanced groups: 16 rows as 6 + 5 + 5, not 6 + 6 + 4.
        const int nr = (b0 + br - r0 + (groups - g) - 1) / (groups - g);
        bf16_micro_for(mr, nr)(wt, row_bytes, K, xp + static_cast<size_t>(r0) * ldx, ldx, out + static_cast<size_t>(r0) * ldo + n, ldo, g == 0 ? mr * row_bytes : 0);
        r0 += nr;
      }
    }
  }
}
