#pragma once
#include <cstddef>
#include <cstdint>

namespace dsv4 {

// The loops behind sampling one token over the vocabulary (src/engine/softmax.ts and
// sampler.ts), on the engine's thread: the same double arithmetic in the same order, so every
// weight, sum and drawn token is the JavaScript one bit for bit (the build keeps FMA
// contraction off). `tables` is softmax.ts's: 2^(j/64) for j < 64, 2^-n for n < 1075, then
// the five polynomial coefficients.
constexpr size_t kSamplingTables = 64 + 1075 + 5;
// Histogram bins per halving of a weight is 2^4; bins down to the smallest subnormal, then the zeros.
constexpr size_t kWeightBins = ((1074 * 64) >> 4) + 2;

// out[i] = exp2((x[i] - max) * scale) by softmax.ts's table form; returns their sum (in index
// order). With bin/count/mass (count and mass kWeightBins long), also the histogram.
double shifted_exp(const float* x, size_t n, double max, double scale, const double* tables, double* out, uint16_t* bin,
                   double* count, double* mass);

// The largest of x (-Infinity when none is larger; NaN never is).
double max_of(const float* x, size_t n);

// sampler.ts's argmax: the first index of the largest value (0 when none is above -Infinity).
size_t argmax_of(const float* x, size_t n);

// sampleToken's draw: the first index whose running sum of kept weights exceeds u, else the
// last kept one (0 when none). Kept: w >= lowest and (w > threshold, or w == threshold for the
// first at_threshold such weights).
size_t draw_kept(const double* w, size_t n, double threshold, double at_threshold, double lowest, double u);

// The sum of the kept weights (as draw_kept keeps them), in index order.
double kept_mass(const double* w, size_t n, double threshold, double at_threshold, double lowest);

// top-cut.ts's gather: the weights whose bin is b (above: whose bin is after b), in index
// order, into out; returns how many.
size_t gather_bin(const double* w, size_t n, const uint16_t* bin, uint16_t b, bool above, double* out);

}  // namespace dsv4
