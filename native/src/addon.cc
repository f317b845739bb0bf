// N-API surface of the native backend. Argument checking lives here so that a wrong call
// from JavaScript is a thrown error, never an out-of-bounds read in a kernel.
#include <napi.h>

#include <cmath>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "heap_tuning.h"
#include "kernels.h"
#include "greedy_head.h"
#include "linear.h"
#include "mapping.h"
#include "prefetch.h"
#include "sampling.h"
#include "matrix_io.h"
#include "moe.h"
#include "ops.h"
#include "scratch.h"
#include "socket_options.h"
#include "thread_pool.h"

namespace dsv4 {
namespace {

// A C++ exception from an operation, with the operation and its sizes in front of the cause:
// "linear (fp8 4096x4096, 16 rows): could not allocate 268435456 bytes of scratch".
class OpFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string cause_of(const std::exception& e) {
  // A plain std::bad_alloc (a vector, new) says nothing more than its type.
  if (dynamic_cast<const std::bad_alloc*>(&e) && !dynamic_cast<const AllocationFailure*>(&e)) return "out of memory (std::bad_alloc)";
  return e.what();
}

// Runs body (which may use the thread pool: a worker's exception is rethrown on this
// thread); a C++ exception from it becomes an OpFailure described by describe().
template <class Describe, class Body>
void described(Describe&& describe, Body&& body) {
  try {
    body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw OpFailure(describe() + ": " + cause_of(e));
  }
}

std::string sizes(std::initializer_list<int64_t> dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

template <class T>
struct Span {
  T* data;
  size_t length;
};

template <class T, napi_typedarray_type Type>
Span<T> typed(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Type) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " has the wrong array type");
  }
  auto a = v.As<Napi::TypedArrayOf<T>>();
  return {a.Data(), a.ElementLength()};
}
Span<float> f32(const Napi::Value& v, const char* what) { return typed<float, napi_float32_array>(v, what); }
Span<double> f64(const Napi::Value& v, const char* what) { return typed<double, napi_float64_array>(v, what); }
Span<int32_t> i32(const Napi::Value& v, const char* what) { return typed<int32_t, napi_int32_array>(v, what); }
Span<uint8_t> u8(const Napi::Value& v, const char* what) { return typed<uint8_t, napi_uint8_array>(v, what); }
Span<uint16_t> u16(const Napi::Value& v, const char* what) { return typed<uint16_t, napi_uint16_array>(v, what); }

int64_t integer(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) throw Napi::RangeError::New(v.Env(), std::string(what) + " must be a non-negative integer");
  return static_cast<int64_t>(d);
}

void need(const Napi::Env& env, bool ok, const char* what) {
  if (!ok) throw Napi::RangeError::New(env, what);
}

const Matrix& matrix_of(const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), "not a native matrix handle");
  return *v.As<Napi::External<Matrix>>().Data();
}

Napi::Value CreateMatrix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MatrixSource src;
  const int64_t format = integer(info[0], "format");
  need(env, format <= 3, "unknown weight format");
  src.format = static_cast<Format>(format);
  const int64_t n = integer(info[1], "outFeatures"), k = integer(info[2], "inFeatures");
  need(env, n > 0 && k > 0 && n < (1LL << 31) && k < (1LL << 31), "matrix dimensions out of range");
  src.N = static_cast<int>(n);
  src.K = static_cast<int>(k);
  if (info[3].IsString()) {
    src.file = info[3].As<Napi::String>().Utf8Value();
    src.offset = static_cast<uint64_t>(integer(info[4], "offset"));
    src.byte_length = static_cast<uint64_t>(integer(info[5], "byteLength"));
  } else {
    Span<uint8_t> bytes = u8(info[6], "weight bytes");
    src.bytes = bytes.data;
    src.bytes_length = bytes.length;
  }
  if (info[9].IsString()) {
    src.scale_file = info[9].As<Napi::String>().Utf8Value();
    src.scale_offset = static_cast<uint64_t>(integer(info[10], "scaleOffset"));
    src.scale_length = static_cast<size_t>(integer(info[11], "scaleByteLength"));
  } else if (!info[7].IsNull() && !info[7].IsUndefined()) {
    Span<uint8_t> scale = u8(info[7], "scales");
    src.scale = scale.data;
    src.scale_length = scale.length;
    src.scale_f32 = info[8].ToBoolean().Value();
  }
  src.fp4_repack = info.Length() > 12 && info[12].ToBoolean().Value();
  std::unique_ptr<Matrix> m;
  described([&] { return std::string("createMatrix (") + format_name(src.format) + " " + sizes({n, k}) + ")"; }, [&] { m = make_matrix(src); });
  // Not a repacked matrix's rows and scales, a loaded model's weights like the mapped ones:
  // V8 collects in full whenever external memory passes half its old-generation limit, and
  // counting a checkpoint's experts ran a mark-compact on every step (131 against 2 over a
  // flash-slice step benchmark, 200-400 page faults a step).
  const int64_t kept = static_cast<int64_t>(m->owned.size() + m->scales.size() * sizeof(float) + (m->fp4_packed ? 0 : m->scale_e8m0.size()));
  Napi::MemoryManagement::AdjustExternalMemory(env, kept);
  return Napi::External<Matrix>::New(env, m.release(), [kept](Napi::Env e, Matrix* p) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -kept);
    delete p;
  });
}

// matrixStorage(m): where a matrix's rows live: "mapped" (the checkpoint file's pages),
// "owned" (bytes copied at creation), "copied" (mapped rows copied to an aligned place of
// its own) or "packed" (FP4 repacked).
Napi::Value MatrixStorage(const Napi::CallbackInfo& info) {
  const Matrix& m = matrix_of(info[0]);
  const char* where = m.fp4_packed ? "packed" : m.packed ? "copied" : m.mapping ? "mapped" : "owned";
  return Napi::String::New(info.Env(), where);
}

// alignMatrix(m): align_rows (matrix_io.h); true when it copied. Called at load, before any
// product runs on m.
Napi::Value AlignMatrix(const Napi::CallbackInfo& info) {
  Matrix& m = const_cast<Matrix&>(matrix_of(info[0]));
  bool copied = false;
  described([&] { return std::string("alignMatrix (") + format_name(m.format) + " " + sizes({m.N, m.K}) + ")"; }, [&] { copied = align_rows(m); });
  return Napi::Boolean::New(info.Env(), copied);
}

Napi::Value MatrixRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Matrix& m = matrix_of(info[0]);
  const int64_t row = integer(info[1], "row");
  Span<float> out = f32(info[2], "out");
  const int64_t off = integer(info[3], "outOffset");
  need(env, row < m.N, "row outside the matrix");
  need(env, static_cast<size_t>(off) + m.K <= out.length, "output too short");
  described([&] { return std::string("matrixRow (") + format_name(m.format) + " " + sizes({m.N, m.K}) + ")"; },
            [&] { decode_row(m, static_cast<int>(row), out.data + off); });
  return env.Undefined();
}

Napi::Value Linear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> x = f32(info[0], "x");
  const int64_t rows = integer(info[1], "rows");
  const Matrix& m = matrix_of(info[2]);
  const bool act_quant = info[3].ToBoolean().Value();
  Span<float> out = f32(info[4], "out");
  need(env, rows < (1LL << 24), "too many rows");
  need(env, static_cast<size_t>(rows) * m.K <= x.length, "input shorter than rows x inFeatures");
  need(env, static_cast<size_t>(rows) * m.N <= out.length, "output shorter than rows x outFeatures");
  if (rows == 0) return env.Undefined();
  described([&] { return std::string("linear (") + format_name(m.format) + " " + sizes({m.N, m.K}) + ", " + std::to_string(rows) + " rows)"; },
            [&] { linear(m, x.data, static_cast<int>(rows), act_quant, out.data); });
  return env.Undefined();
}

// greedyRows(w, x, rows, masked, maskAt, out, exact|null): greedy_head.h's greedy_rows.
Napi::Value GreedyRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Matrix& m = matrix_of(info[0]);
  Span<float> x = f32(info[1], "x");
  const int64_t rows = integer(info[2], "rows");
  Span<int32_t> masked = i32(info[3], "masked ids");
  Span<int32_t> mask_at = i32(info[4], "mask offsets");
  Span<int32_t> out = i32(info[5], "out");
  int32_t* exact = nullptr;
  if (!info[6].IsNull() && !info[6].IsUndefined()) {
    Span<int32_t> e = i32(info[6], "exact counts");
    need(env, static_cast<size_t>(rows) <= e.length, "exact counts shorter than rows");
    exact = e.data;
  }
  need(env, rows < (1LL << 24), "too many rows");
  need(env, static_cast<size_t>(rows) * m.K <= x.length, "input shorter than rows x inFeatures");
  need(env, static_cast<size_t>(rows) <= out.length, "out shorter than rows");
  need(env, static_cast<size_t>(rows) + 1 <= mask_at.length, "mask offsets need rows + 1 entries");
  for (int64_t r = 0; r < rows; r++)
    need(env, mask_at.data[r] >= 0 && mask_at.data[r] <= mask_at.data[r + 1] && static_cast<size_t>(mask_at.data[r + 1]) <= masked.length, "mask offsets out of order or past the masked ids");
  if (rows == 0) return env.Undefined();
  described([&] { return std::string("greedyRows (") + format_name(m.format) + " " + sizes({m.N, m.K}) + ", " + std::to_string(rows) + " rows)"; },
            [&] { greedy_rows(m, x.data, static_cast<int>(rows), masked.data, mask_at.data, out.data, exact); });
  return env.Undefined();
}

Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> x = f32(info[0], "x");
  const int64_t rows = integer(info[1], "rows"), dim = integer(info[2], "dim");
  const float* weight = nullptr;
  if (!info[3].IsNull() && !info[3].IsUndefined()) {
    Span<float> w = f32(info[3], "weight");
    need(env, w.length >= static_cast<size_t>(dim), "weight shorter than dim");
    weight = w.data;
  }
  const float eps = static_cast<float>(info[4].As<Napi::Number>().DoubleValue());
  Span<float> out = f32(info[5], "out");
  need(env, dim > 0, "dim must be positive");
  need(env, static_cast<size_t>(rows * dim) <= x.length && static_cast<size_t>(rows * dim) <= out.length, "arrays shorter than rows x dim");
  described([&] { return "rmsNorm (" + sizes({rows, dim}) + ")"; },
            [&] { rms_norm(x.data, static_cast<int>(rows), static_cast<int>(dim), weight, eps, out.data); });
  return env.Undefined();
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> x = f32(info[0], "x");
  const int64_t start = integer(info[1], "start"), segments = integer(info[2], "segments"), stride = integer(info[3], "stride");
  Span<double> cos = f64(info[4], "cos"), sin = f64(info[5], "sin");
  const bool inverse = info[6].ToBoolean().Value();
  need(env, cos.length == sin.length, "cos and sin differ in length");
  if (segments == 0 || cos.length == 0) return env.Undefined();
  need(env, static_cast<size_t>(start + (segments - 1) * stride) + 2 * cos.length <= x.length, "rope range outside x");
  described([&] { return "rope (" + std::to_string(segments) + " segments of " + std::to_string(2 * cos.length) + ")"; }, [&] {
    rope(x.data + start, static_cast<int>(segments), static_cast<int>(stride), cos.data, sin.data, static_cast<int>(cos.length), inverse);
  });
  return env.Undefined();
}

template <bool Fp4>
Napi::Value Simulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> x = f32(info[0], "x");
  const int64_t start = integer(info[1], "start"), length = integer(info[2], "length"), block = integer(info[3], "block");
  need(env, block > 0, "block must be positive");
  need(env, static_cast<size_t>(start + length) <= x.length, "range outside x");
  const KernelTable& k = kernels();
  (Fp4 ? k.fp4_simulate : k.fp8_simulate)(x.data + start, static_cast<int>(length), static_cast<int>(block));
  return env.Undefined();
}

Napi::Value Hadamard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> x = f32(info[0], "x");
  const int64_t start = integer(info[1], "start"), length = integer(info[2], "length"), n = integer(info[3], "n");
  need(env, n > 0 && (n & (n - 1)) == 0, "n must be a power of two");
  need(env, length % n == 0, "length must be a multiple of n");
  need(env, static_cast<size_t>(start + length) <= x.length, "range outside x");
  hadamard(x.data + start, static_cast<int>(length), static_cast<int>(n));
  return env.Undefined();
}

// attention(q, qOffset, out, outOffset, rowsList, indicesList, counts, heads, headDim, sink, scale)
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> q = f32(info[0], "q");
  const int64_t qoff = integer(info[1], "qOffset");
  Span<float> out = f32(info[2], "out");
  const int64_t ooff = integer(info[3], "outOffset");
  Napi::Array rows = info[4].As<Napi::Array>(), indices = info[5].As<Napi::Array>();
  Span<int32_t> counts = i32(info[6], "counts");
  const int64_t heads = integer(info[7], "heads"), hd = integer(info[8], "headDim");
  Span<float> sink = f32(info[9], "sink");
  const float scale = static_cast<float>(info[10].As<Napi::Number>().DoubleValue());
  need(env, hd > 0, "headDim must be positive");
  need(env, static_cast<size_t>(qoff + heads * hd) <= q.length, "q too short");
  need(env, static_cast<size_t>(ooff + heads * hd) <= out.length, "out too short");
  need(env, sink.length >= static_cast<size_t>(heads), "sink shorter than heads");
  need(env, rows.Length() == counts.length && indices.Length() == counts.length, "sources do not line up");
  std::vector<AttentionSource> sources(counts.length);
  for (uint32_t s = 0; s < counts.length; s++) {
    Span<float> r = f32(rows.Get(s), "source rows");
    Span<int32_t> idx = i32(indices.Get(s), "source indices");
    const int count = counts.data[s];
    need(env, count >= 0 && static_cast<size_t>(count) <= idx.length, "source count exceeds its indices");
    const int64_t available = static_cast<int64_t>(r.length / hd);
    for (int t = 0; t < count; t++) need(env, idx.data[t] < available, "source index outside its rows");
    sources[s] = {r.data, idx.data, count};
  }
  described(
      [&] {
        int64_t total = 0;
        for (const AttentionSource& src : sources) total += src.count;
        return "attention (" + std::to_string(heads) + " heads x " + std::to_string(hd) + ", " + std::to_string(total) + " rows)";
      },
      [&] {
        attention(q.data + qoff, out.data + ooff, sources.data(), static_cast<int>(sources.size()), static_cast<int>(heads), static_cast<int>(hd),
                  sink.data, scale);
      });
  return env.Undefined();
}

Napi::Value SoftmaxPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> kv = f32(info[0], "kv"), score = f32(info[1], "score");
  Span<int32_t> slots = i32(info[2], "slots");
  const int64_t width = integer(info[3], "width"), stride = integer(info[4], "rowStride");
  Span<float> out = f32(info[5], "out");
  const int64_t ooff = integer(info[6], "outOffset");
  need(env, slots.length % 2 == 0, "slots must be (row, offset) pairs");
  need(env, static_cast<size_t>(ooff + width) <= out.length, "out too short");
  for (size_t s = 0; s < slots.length; s += 2) {
    need(env, slots.data[s] >= 0 && slots.data[s + 1] >= 0, "negative slot");
    const size_t end = static_cast<size_t>(slots.data[s]) * stride + slots.data[s + 1] + width;
    need(env, end <= kv.length && end <= score.length, "slot outside kv / score");
  }
  softmax_pool(kv.data, score.data, slots.data, static_cast<int>(slots.length / 2), static_cast<int>(width), static_cast<int>(stride), out.data + ooff);
  return env.Undefined();
}

Napi::Value IndexerScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> q = f32(info[0], "q");
  const int64_t qoff = integer(info[1], "qOffset");
  Span<float> w = f32(info[2], "weights");
  const int64_t woff = integer(info[3], "wOffset");
  const int64_t heads = integer(info[4], "heads"), hd = integer(info[5], "headDim");
  Span<float> keys = f32(info[6], "keys");
  const int64_t count = integer(info[7], "count");
  Span<double> out = f64(info[8], "out");
  need(env, static_cast<size_t>(qoff + heads * hd) <= q.length, "q too short");
  need(env, static_cast<size_t>(woff + heads) <= w.length, "weights too short");
  need(env, static_cast<size_t>(count * hd) <= keys.length, "keys too short");
  need(env, static_cast<size_t>(count) <= out.length, "out too short");
  indexer_scores(q.data + qoff, w.data + woff, static_cast<int>(heads), static_cast<int>(hd), keys.data, static_cast<int>(count), out.data);
  return env.Undefined();
}

size_t product(int64_t a, int64_t b, int64_t c = 1) { return static_cast<size_t>(a) * static_cast<size_t>(b) * static_cast<size_t>(c); }

Napi::Value HcCollapse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> X = f32(info[0], "X");
  const int64_t rows = integer(info[1], "rows"), hc = integer(info[2], "hc"), dim = integer(info[3], "dim");
  Span<double> pre = f64(info[4], "pre");
  Span<float> out = f32(info[5], "out");
  need(env, product(rows, hc, dim) <= X.length, "X shorter than rows x hc x dim");
  need(env, product(rows, hc) <= pre.length, "pre shorter than rows x hc");
  need(env, product(rows, dim) <= out.length, "out shorter than rows x dim");
  described([&] { return "hcCollapse (" + sizes({rows, hc, dim}) + ")"; },
            [&] { hc_collapse(X.data, static_cast<int>(rows), static_cast<int>(hc), static_cast<int>(dim), pre.data, out.data); });
  return env.Undefined();
}

Napi::Value HcExpand(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> y = f32(info[0], "y"), X = f32(info[1], "X");
  const int64_t rows = integer(info[2], "rows"), hc = integer(info[3], "hc"), dim = integer(info[4], "dim");
  Span<double> post = f64(info[5], "post"), comb = f64(info[6], "comb");
  Span<float> out = f32(info[7], "out");
  need(env, product(rows, dim) <= y.length, "y shorter than rows x dim");
  need(env, product(rows, hc, dim) <= X.length && product(rows, hc, dim) <= out.length, "X or out shorter than rows x hc x dim");
  need(env, product(rows, hc) <= post.length && product(rows, hc, hc) <= comb.length, "post or comb too short");
  described([&] { return "hcExpand (" + sizes({rows, hc, dim}) + ")"; }, [&] {
    hc_expand(y.data, X.data, static_cast<int>(rows), static_cast<int>(hc), static_cast<int>(dim), post.data, comb.data, out.data);
  });
  return env.Undefined();
}

Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> g = f32(info[0], "g"), u = f32(info[1], "u");
  const int64_t rows = integer(info[2], "rows"), dim = integer(info[3], "dim");
  const double limit = info[4].As<Napi::Number>().DoubleValue();
  const double* weights = nullptr;
  if (!info[5].IsNull() && !info[5].IsUndefined()) {
    Span<double> w = f64(info[5], "rowWeights");
    need(env, w.length >= static_cast<size_t>(rows), "rowWeights shorter than rows");
    weights = w.data;
  }
  need(env, product(rows, dim) <= g.length && product(rows, dim) <= u.length, "g or u shorter than rows x dim");
  described([&] { return "swiglu (" + sizes({rows, dim}) + ")"; },
            [&] { swiglu(g.data, u.data, static_cast<int>(rows), static_cast<int>(dim), limit, weights); });
  return env.Undefined();
}

Napi::Value AddRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> y = f32(info[0], "y"), src = f32(info[1], "src");
  Span<int32_t> index = i32(info[2], "rowIndex");
  const int64_t dim = integer(info[3], "dim");
  need(env, product(index.length, dim) <= src.length, "src shorter than rowIndex x dim");
  for (size_t i = 0; i < index.length; i++)
    need(env, index.data[i] >= 0 && product(index.data[i] + 1, dim) <= y.length, "rowIndex entry outside y");
  add_rows(y.data, src.data, index.data, static_cast<int>(index.length), static_cast<int>(dim));
  return env.Undefined();
}

// routedExperts(x, dim, rowIndex, rowWeights, counts, matrices, inter, limit, y): matrices
// holds w1, w3, w2 of each expert in turn, counts its number of picks (rows of rowIndex /
// rowWeights, in order).
Napi::Value RoutedExperts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Span<float> x = f32(info[0], "x");
  const int64_t dim = integer(info[1], "dim");
  Span<int32_t> index = i32(info[2], "rowIndex");
  Span<double> weights = f64(info[3], "rowWeights");
  Span<int32_t> counts = i32(info[4], "counts");
  if (!info[5].IsArray()) throw Napi::TypeError::New(env, "matrices must be an array of native matrix handles");
  Napi::Array mats = info[5].As<Napi::Array>();
  const int64_t inter = integer(info[6], "inter");
  const double limit = info[7].As<Napi::Number>().DoubleValue();
  Span<float> y = f32(info[8], "y");
  need(env, dim > 0 && inter > 0, "dim and inter must be positive");
  need(env, mats.Length() == 3 * counts.length, "matrices must hold w1, w3, w2 for every count");
  need(env, weights.length == index.length, "rowWeights and rowIndex differ in length");
  std::vector<RoutedExpert> experts(counts.length);
  size_t first = 0;
  for (size_t e = 0; e < counts.length; e++) {
    need(env, counts.data[e] > 0, "every count must be positive");
    const Matrix& w1 = matrix_of(mats.Get(3 * e));
    const Matrix& w3 = matrix_of(mats.Get(3 * e + 1));
    const Matrix& w2 = matrix_of(mats.Get(3 * e + 2));
    need(env, w1.N == inter && w1.K == dim && w3.N == inter && w3.K == dim, "w1 and w3 must be inter x dim");
    need(env, w2.N == dim && w2.K == inter, "w2 must be dim x inter");
    experts[e] = {&w1, &w3, &w2, static_cast<int>(first), counts.data[e]};
    first += static_cast<size_t>(counts.data[e]);
  }
  need(env, first == index.length, "counts must add up to rowIndex's length");
  for (size_t i = 0; i < index.length; i++)
    need(env, index.data[i] >= 0 && product(index.data[i] + 1, dim) <= x.length && product(index.data[i] + 1, dim) <= y.length, "rowIndex entry outside x or y");
  described([&] { return "routedExperts (" + std::to_string(counts.length) + " experts, " + std::to_string(index.length) + " picks, " + sizes({dim, inter}) + ")"; },
            [&] { routed_experts(experts.data(), static_cast<int>(experts.size()), x.data, static_cast<int>(dim), index.data, weights.data, static_cast<int>(inter), limit, y.data); });
  return env.Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", kernels().isa);
  o.Set("threads", pool().threads());
  o.Set("repacksFp4", kernels().packs_fp4);
  Napi::Array isas = Napi::Array::New(env);
  uint32_t i = 0;
  for (const char* name : {"scalar", "avx2", "avx512", "avx512bf16", "neon"})
    if (kernels_named(name)) isas.Set(i++, name);
  o.Set("isas", isas);
  return o;
}

Napi::Value SelectIsa(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(info.Env(), select_kernels(name.c_str()));
}

Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  const int64_t bytes = integer(info[0], "bytes"), reps = integer(info[1], "reps");
  double gbs = 0;
  described([&] { return "memoryBandwidth (" + std::to_string(bytes) + " bytes)"; },
            [&] { gbs = memory_bandwidth(static_cast<size_t>(bytes), static_cast<int>(reps)); });
  return Napi::Number::New(info.Env(), gbs);
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  const int64_t reps = integer(info[0], "reps");
  return Napi::Number::New(info.Env(), fma_peak(static_cast<int>(reps)));
}

// dotPeak(reps): fmaPeak for bf16 dot products (two multiply-adds per lane per instruction),
// the products the avx512bf16 table's quantised and bf16 paths run on; 0 on other tables.
Napi::Value DotPeak(const Napi::CallbackInfo& info) {
  const int64_t reps = integer(info[0], "reps");
  return Napi::Number::New(info.Env(), fma_peak(static_cast<int>(reps), true));
}

// setThreads(n): the pool's thread count from now on (benchmarks of thread scaling).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int64_t n = integer(info[0], "threads");
  need(info.Env(), n >= 1 && n <= 1024, "threads must be 1 to 1024");
  described([&] { return "setThreads (" + std::to_string(n) + ")"; }, [&] { pool().resize(static_cast<int>(n)); });
  return Napi::Number::New(info.Env(), pool().threads());
}

// keepFreedMemory(mmapThreshold, trimThreshold): see heap_tuning.h; whether it took.
Napi::Value KeepFreedMemory(const Napi::CallbackInfo& info) {
  const int64_t mmap_threshold = integer(info[0], "mmapThreshold"), trim_threshold = integer(info[1], "trimThreshold");
  need(info.Env(), mmap_threshold >= 0 && trim_threshold >= 0, "thresholds must be non-negative");
  return Napi::Boolean::New(info.Env(), keep_freed_memory(static_cast<size_t>(mmap_threshold), static_cast<size_t>(trim_threshold)));
}

Napi::Value PoolOverhead(const Napi::CallbackInfo& info) {
  const int64_t tasks = integer(info[0], "tasks"), calls = integer(info[1], "calls");
  need(info.Env(), tasks < (1LL << 31) && calls >= 1 && calls < (1LL << 31), "tasks or calls out of range");
  return Napi::Number::New(info.Env(), pool_overhead_us(static_cast<int>(tasks), static_cast<int>(calls)));
}

// prefetchMapping(path): touch every page of that checkpoint file's mapping (see mapping.h).
Napi::Value PrefetchMapping(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  size_t bytes = 0;
  described([&] { return "prefetchMapping (" + path + ")"; }, [&] { bytes = prefetch_mapping(path, pool()); });
  return Napi::Number::New(info.Env(), static_cast<double>(bytes));
}

// lockMapping(path): keep that checkpoint file's mapping in memory (mlock). Returns null, or
// why it failed; throws when the file is not mapped.
Napi::Value LockMapping(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::shared_ptr<Mapping> m = Mapping::find(path);
  if (!m) throw Napi::Error::New(info.Env(), "lockMapping: " + path + " is not mapped");
  const std::string error = m->lock();
  return error.empty() ? info.Env().Null() : Napi::String::New(info.Env(), error);
}

// Test-only: see fail_allocations_after (scratch.h). A negative count turns it off.
Napi::Value FailAllocationsAfter(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "count must be a number");
  fail_allocations_after(static_cast<long>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

// Caps what a streaming response's socket may hold unsent (see socket_options.h); returns
// the errno, 0 when set.
Napi::Value SetNotsentLowat(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "setNotsentLowat(fd, bytes): two numbers");
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const int bytes = info[1].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(), set_notsent_lowat(fd, bytes));
}

// A fixed receive buffer (see socket_options.h); returns the errno, 0 when set.
Napi::Value SetReceiveBuffer(const Napi::CallbackInfo& info) {
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "setReceiveBuffer(fd, bytes): two numbers");
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const int bytes = info[1].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(), set_receive_buffer(fd, bytes));
}

double real(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// shiftedExp(x, max, scale, tables, out, bin, count, mass): softmax.ts's shiftedExp (bin,
// count and mass null) or shiftedExpBinned; returns the sum.
Napi::Value ShiftedExp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Span<float> x = f32(info[0], "logits");
  const double max = real(info[1], "max"), scale = real(info[2], "scale");
  const Span<double> tables = f64(info[3], "tables");
  const Span<double> out = f64(info[4], "weights");
  need(env, tables.length == kSamplingTables, "sampling tables have the wrong length");
  need(env, out.length >= x.length, "weights array shorter than the logits");
  if (info[5].IsNull() || info[5].IsUndefined()) return Napi::Number::New(env, shifted_exp(x.data, x.length, max, scale, tables.data, out.data, nullptr, nullptr, nullptr));
  const Span<uint16_t> bin = u16(info[5], "histogram bins");
  const Span<double> count = f64(info[6], "histogram counts"), mass = f64(info[7], "histogram masses");
  need(env, bin.length >= x.length, "histogram bins shorter than the logits");
  need(env, count.length == kWeightBins && mass.length == kWeightBins, "histogram counts or masses have the wrong length");
  return Napi::Number::New(env, shifted_exp(x.data, x.length, max, scale, tables.data, out.data, bin.data, count.data, mass.data));
}

Napi::Value MaxOf(const Napi::CallbackInfo& info) {
  const Span<float> x = f32(info[0], "logits");
  return Napi::Number::New(info.Env(), max_of(x.data, x.length));
}

Napi::Value ArgmaxOf(const Napi::CallbackInfo& info) {
  const Span<float> x = f32(info[0], "logits");
  return Napi::Number::New(info.Env(), static_cast<double>(argmax_of(x.data, x.length)));
}

// drawKept(w, n, threshold, atThreshold, lowest, u): sampleToken's draw over w[0, n).
Napi::Value DrawKept(const Napi::CallbackInfo& info) {
  const Span<double> w = f64(info[0], "weights");
  const int64_t n = integer(info[1], "n");
  need(info.Env(), static_cast<size_t>(n) <= w.length, "n is past the weights");
  const size_t i = draw_kept(w.data, static_cast<size_t>(n), real(info[2], "threshold"), real(info[3], "atThreshold"), real(info[4], "lowest"), real(info[5], "u"));
  return Napi::Number::New(info.Env(), static_cast<double>(i));
}

// keptMass(w, n, threshold, atThreshold, lowest): the kept weights' sum.
Napi::Value KeptMass(const Napi::CallbackInfo& info) {
  const Span<double> w = f64(info[0], "weights");
  const int64_t n = integer(info[1], "n");
  need(info.Env(), static_cast<size_t>(n) <= w.length, "n is past the weights");
  return Napi::Number::New(info.Env(), kept_mass(w.data, static_cast<size_t>(n), real(info[2], "threshold"), real(info[3], "atThreshold"), real(info[4], "lowest")));
}

// gatherBin(w, n, bin, b, above, out): top-cut.ts's gather; returns the count.
Napi::Value GatherBin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Span<double> w = f64(info[0], "weights");
  const int64_t n = integer(info[1], "n");
  const Span<uint16_t> bin = u16(info[2], "histogram bins");
  const int64_t b = integer(info[3], "bin");
  const Span<double> out = f64(info[5], "gathered weights");
  need(env, static_cast<size_t>(n) <= w.length && static_cast<size_t>(n) <= bin.length && static_cast<size_t>(n) <= out.length, "n is past an array");
  need(env, b < 65536, "bin out of range");
  return Napi::Number::New(env, static_cast<double>(gather_bin(w.data, static_cast<size_t>(n), bin.data, static_cast<uint16_t>(b), info[4].ToBoolean().Value(), out.data)));
}

// Every entry point runs through call_entry, so no C++ exception reaches N-API unconverted
// (NAPI_CPP_EXCEPTIONS alone converts only Napi::Error; anything else would terminate Node).
struct Entry {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
};

const Entry kEntries[] = {
    {"createMatrix", CreateMatrix},   {"matrixRow", MatrixRow},         {"matrixStorage", MatrixStorage}, {"alignMatrix", AlignMatrix},
    {"linear", Linear},               {"hcCollapse", HcCollapse},
    {"greedyRows", GreedyRows},
    {"hcExpand", HcExpand},           {"swiglu", Swiglu},
    {"addRows", AddRows},             {"rmsNorm", RmsNorm},
    {"routedExperts", RoutedExperts},
    {"rope", Rope},                   {"fp8Simulate", Simulate<false>},
    {"fp4Simulate", Simulate<true>},  {"hadamard", Hadamard},
    {"attention", Attention},         {"softmaxPool", SoftmaxPool},
    {"indexerScores", IndexerScores}, {"info", Info},
    {"selectIsa", SelectIsa},         {"memoryBandwidth", MemoryBandwidth},
    {"fmaPeak", FmaPeak},             {"dotPeak", DotPeak},             {"setThreads", SetThreads},
    {"poolOverhead", PoolOverhead},   {"failAllocationsAfter", FailAllocationsAfter},
    {"prefetchMapping", PrefetchMapping}, {"lockMapping", LockMapping}, {"setNotsentLowat", SetNotsentLowat}, {"setReceiveBuffer", SetReceiveBuffer},
    {"shiftedExp", ShiftedExp}, {"maxOf", MaxOf}, {"argmax", ArgmaxOf}, {"drawKept", DrawKept},
    {"keptMass", KeptMass}, {"gatherBin", GatherBin}, {"keepFreedMemory", KeepFreedMemory},
};

Napi::Value call_entry(const Napi::CallbackInfo& info) {
  const Entry& entry = *static_cast<const Entry*>(info.Data());
  try {
    return entry.fn(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const OpFailure& e) {
    throw Napi::Error::New(info.Env(), std::string("dsv4 native: ") + e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("dsv4 native: ") + entry.name + ": " + cause_of(e));
  } catch (...) {
    throw Napi::Error::New(info.Env(), std::string("dsv4 native: ") + entry.name + ": unknown C++ exception");
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const Entry& e : kEntries) exports.Set(e.name, Napi::Function::New(env, call_entry, e.name, const_cast<Entry*>(&e)));
  return exports;
}

}  // namespace
}  // namespace dsv4

static Napi::Object InitDsv4(Napi::Env env, Napi::Object exports) { return dsv4::Init(env, exports); }

NODE_API_MODULE(dsv4, InitDsv4)
