/**
 * Kernel benchmark: memory bandwidth of this machine, then GEMV throughput (weight GB/s) of
 * the quantised matrix-vector products the decode step is made of, on the native and the
 * reference backends, each as a fraction of that bandwidth.
 * Run: `dsv4 bench kernels [--json]` or `node dist/bench/kernels.js [--json]`.
 *
 * `--rows`: the decode-batch products instead (runRowsBench): the real V4-Flash BF16 head,
 * FP8 and FP4 expert shapes at 1-64 activation rows, against the bandwidth and the FMA peak;
 * `--baseline PATH` times a second build of the addon alternately in the same process.
 * `--formats fp4,fp8` (with --rows): only those shapes. `--bf16-activations` (with --rows): BF16 products get bf16-valued activations (the avx512bf16
 * dot-product path; see fillActivations).
 */
import { randomFillSync } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { BlockWriter } from "../src/formats/safetensors-writer.js";
import type { Backend, MatrixHandle, StoredMatrix, WeightFormat } from "../src/kernels/backend.js";
import { nativeAddon, type NativeAddon } from "../src/kernels/native/addon.js";
import { NativeBackend } from "../src/kernels/native/backend.js";
import { RefBackend } from "../src/kernels/ref/index.js";

export interface GemvResult {
  name: string;
  backend: string;
  /** Weight bytes (data + scales) streamed per second. */
  gbs: number;
  fraction_of_bandwidth: number | null;
  ms_per_call: number;
  /** True when one matrix was reused (--quick): a cache figure, not weight streaming from memory (no fraction of bandwidth). */
  cache_resident?: boolean;
}

export interface KernelBenchResult {
  /** Best multi-threaded read bandwidth over a 1 GiB buffer, probed before and after the native GEMVs; null without the native addon. */
  bandwidth_gbs: number | null;
  threads: number | null;
  isa: string | null;
  gemv: GemvResult[];
  /**
   * Matrix-matrix products (prefill): weight GB/s and GFLOP/s, native only. fraction_of_peak:
   * of the peak of the instructions the product runs on (compute_peak's bf16 figure where the
   * table has bf16 dot products, which quantised rows then take; else its fp32 figure);
   * fraction_of_fp32_peak: of the FMA peak.
   */
  gemm: Array<{ name: string; rows: number; backend: string; gbs: number; gflops: number; fraction_of_peak?: number | null; fraction_of_fp32_peak?: number | null }>;
  /** The FMA peak of the instruction set in use at `threads` threads (the compute probe); null without the native addon. */
  compute_peak?: ComputePeak | null;
  /** Native GEMV bandwidth at 1, 2, ... threads up to nproc, each against the bandwidth probe at that thread count. */
  thread_scaling?: ThreadScalingRow[];
}

interface Shape {
  name: string;
  format: WeightFormat;
  out: number;
  in: number;
}

const SHAPES: Shape[] = [
  { name: "fp8 4096x4096", format: "fp8", out: 4096, in: 4096 },
  { name: "fp4 2048x4096 (expert w1/w3)", format: "fp4", out: 2048, in: 4096 },
  { name: "fp4 4096x2048 (expert w2)", format: "fp4", out: 4096, in: 2048 },
  { name: "bf16 4096x4096", format: "bf16", out: 4096, in: 4096 },
];

/** Copies of a matrix cycled through so the working set (>= 256 MiB) cannot sit in the last-level cache. */
const WORKING_SET = 256 * 2 ** 20;

function randomStored(s: Shape): StoredMatrix {
  const bytes = s.format === "fp8" ? s.out * s.in : s.format === "fp4" ? (s.out * s.in) / 2 : s.out * s.in * 2;
  const data = new Uint8Array(bytes);
  randomFillSync(data);
  if (s.format === "fp8") for (let i = 0; i < data.length; i++) if ((data[i]! & 0x7f) === 0x7f) data[i] = data[i]! - 1;
  // BF16 as trained weights are: magnitudes 2^-20 .. 2 (random bytes were mostly subnormal
  // or tiny values, which no checkpoint holds and which keep the bf16 dot-product path off).
  if (s.format === "bf16") for (let i = 1; i < data.length; i += 2) data[i] = (data[i]! & 0x80) | (0x35 + (data[i]! % 11));
  let scale: Uint8Array | undefined;
  if (s.format === "fp8") scale = new Uint8Array(Math.ceil(s.out / 128) * Math.ceil(s.in / 128)).fill(120);
  if (s.format === "fp4") scale = new Uint8Array((s.out * s.in) / 32).fill(124);
  // FP4 as the model holds its routed experts: repacked where the backend does (StoredMatrix.repack).
  return { name: s.name, format: s.format, outFeatures: s.out, inFeatures: s.in, readData: () => data, location: null, scale, scaleDtype: scale ? "F8_E8M0" : undefined, repack: s.format === "fp4" };
}

/**
 * `copies` of a random matrix of that shape written one after another at 2 MiB-aligned offsets
 * (by the checkpoint writer's 8 MiB blocks, so the page cache holds them in large folios) into
 * a file in `dir`, as matrices that map it.
 */
function mappedCopies(s: Shape, copies: number, dir: string): StoredMatrix[] {
  const stored = randomStored(s);
  const data = stored.readData();
  const stride = Math.ceil(data.byteLength / 2 ** 21) * 2 ** 21;
  const padding = new Uint8Array(stride - data.byteLength);
  const file = join(dir, `${s.format}-${s.out}x${s.in}.bin`);
  const fd = openSync(file, "w");
  try {
    const out = new BlockWriter(fd);
    for (let c = 0; c < copies; c++) {
      out.write(data);
      out.write(padding);
    }
    out.flush();
  } finally {
    closeSync(fd);
  }
  return Array.from({ length: copies }, (_, c) => ({ ...stored, location: { file, offset: c * stride, byteLength: data.byteLength } }));
}

/**
 * Activations: sin(i) * 2 (FP8 and FP4 products quantise them to E4M3). With `bf16Values`,
 * BF16 products get them rounded to bf16 values, the input the reference gives the head (its
 * final norm output is bf16) and the one the avx512bf16 dot-product path needs; dsv4's model
 * does not round there yet, so the default measures what the model runs.
 */
function fillActivations(x: Float32Array | Float64Array, s: Shape, bf16Values = false): void {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < x.length; i++) {
    f[0] = Math.sin(i) * 2;
    if (bf16Values && s.format === "bf16") u[0] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) & 0xffff0000;
    x[i] = f[0]!;
  }
}

/** ms per call: the best of five windows (other processes on a shared machine only slow a window down). */
function time(fn: () => void, minSeconds: number, minCalls: number): number {
  fn(); // warm-up: page faults, lazy allocations
  let best = Infinity;
  for (let w = 0; w < 5; w++) {
    let calls = 0;
    const t0 = performance.now();
    let elapsed = 0;
    while (calls < Math.max(1, Math.ceil(minCalls / 5)) || elapsed < (minSeconds * 1000) / 5) {
      fn();
      calls++;
      elapsed = performance.now() - t0;
    }
    best = Math.min(best, elapsed / calls);
  }
  return best;
}

function gemv(backend: Backend, s: Shape, copies: number, rows: number, minSeconds: number, minCalls: number): { ms: number; bytes: number } {
  const stored = randomStored(s);
  const handles: MatrixHandle[] = Array.from({ length: copies }, () => backend.uploadMatrix(stored));
  const x = backend.alloc(rows * s.in);
  fillActivations(x, s);
  const out = backend.alloc(rows * s.out);
  let next = 0;
  const ms = time(() => backend.linear(x, rows, handles[next++ % copies]!, s.format === "fp8" || s.format === "fp4", out), minSeconds, minCalls);
  return { ms, bytes: handles[0]!.bytes };
}

/**
 * Best fp32 GFLOP/s of `backend.linear` over the given row counts on the FP8 4096x4096 and FP4
 * expert shapes: the compute rate the model's products reach on this machine (a practical FMA
 * peak for roofline estimates; the kernels' own ceiling, not the CPU's datasheet one).
 */
export function measureGemmPeak(backend: Backend, rows: number[], minSeconds: number): { gflops: number; name: string; rows: number } {
  let best = { gflops: 0, name: "", rows: 0 };
  for (const r of rows) {
    for (const s of SHAPES.slice(0, 2)) {
      const t = gemv(backend, s, 1, r, minSeconds, 2);
      const gflops = (2 * r * s.out * s.in) / (t.ms / 1000) / 1e9;
      if (gflops > best.gflops) best = { gflops, name: s.name, rows: r };
    }
  }
  return best;
}

export async function runKernelBench(opts: { ref?: boolean; quick?: boolean } = {}): Promise<KernelBenchResult> {
  const loaded = nativeAddon();
  const addon = "error" in loaded ? null : loaded.addon;
  // Probed before and after the timed products; the better probe is the machine's (other
  // processes on a shared machine only ever lower one), so fractions are not flattered by a
  // probe that happened to run while the machine was busy.
  const probe = () => (addon ? addon.memoryBandwidth(opts.quick ? 256 * 2 ** 20 : 2 ** 30, opts.quick ? 3 : 8) : null);
  const probeBefore = probe();
  const info = addon?.info() ?? null;
  const result: KernelBenchResult = { bandwidth_gbs: probeBefore, threads: info?.threads ?? null, isa: info?.isa ?? null, gemv: [], gemm: [] };
  const backends: Backend[] = [];
  if (addon) backends.push(new NativeBackend(addon));
  if (opts.ref !== false) backends.push(new RefBackend());
  for (const backend of backends) {
    const native = backend.name === "native";
    for (const s of SHAPES) {
      const bytes = randomStored({ ...s }).readData().byteLength;
      const copies = native && !opts.quick ? Math.max(1, Math.ceil(WORKING_SET / bytes)) : 1;
      const r = gemv(backend, s, copies, 1, native ? (opts.quick ? 0.2 : 1) : 0, native ? 5 : opts.quick ? 1 : 2);
      const gbs = r.bytes / (r.ms / 1000) / 1e9;
      result.gemv.push({ name: s.name, backend: backend.name, gbs, fraction_of_bandwidth: null, ms_per_call: r.ms, cache_resident: native && copies * bytes < WORKING_SET });
    }
    if (native) {
      const probeAfter = probe();
      if (probeAfter !== null) result.bandwidth_gbs = Math.max(probeBefore ?? 0, probeAfter);
      const peakBefore = measureComputePeak(addon!, opts.quick);
      for (const rows of [8, 32]) {
        for (const s of SHAPES.slice(0, 2)) {
          // Cycled copies here too: one reused matrix would be timed from the cache.
          const copies = Math.max(1, Math.ceil((opts.quick ? WORKING_SET / 4 : WORKING_SET) / randomStored(s).readData().byteLength));
          const r = gemv(backend, s, copies, rows, opts.quick ? 0.2 : 1, 3);
          result.gemm.push({ name: s.name, rows, backend: backend.name, gbs: r.bytes / (r.ms / 1000) / 1e9, gflops: (2 * rows * s.out * s.in) / (r.ms / 1000) / 1e9 });
        }
      }
      result.compute_peak = betterPeak(peakBefore, measureComputePeak(addon!, opts.quick));
      const peak = result.compute_peak;
      for (const g of result.gemm) {
        g.fraction_of_peak = g.gflops / productPeak(peak, true);
        g.fraction_of_fp32_peak = g.gflops / peak.fp32_gflops;
      }
      result.thread_scaling = runThreadScaling(addon!, { quick: opts.quick });
    }
  }
  const bandwidth = result.bandwidth_gbs;
  for (const g of result.gemv) g.fraction_of_bandwidth = bandwidth && !g.cache_resident ? g.gbs / bandwidth : null;
  return result;
}

export function printKernelTable(r: KernelBenchResult): void {
  const pct = (f: number | null) => (f === null ? "   -" : `${(100 * f).toFixed(0).padStart(3)}%`);
  console.log(`kernels: memory bandwidth ${r.bandwidth_gbs?.toFixed(1) ?? "?"} GB/s (${r.threads ?? "?"} threads, ${r.isa ?? "no native addon"})`);
  console.log("  GEMV (1 row)                    backend   weight GB/s   of bandwidth   ms/call");
  for (const g of r.gemv) {
    console.log(`  ${g.name.padEnd(31)} ${g.backend.padEnd(7)} ${g.gbs.toFixed(2).padStart(13)}   ${(g.cache_resident ? "(in cache)" : pct(g.fraction_of_bandwidth)).padStart(12)}   ${g.ms_per_call.toFixed(2).padStart(7)}`);
  }
  if (r.gemm.length) {
    console.log("  GEMM (prefill rows)             backend   rows   weight GB/s   GFLOP/s");
    for (const g of r.gemm) console.log(`  ${g.name.padEnd(31)} ${g.backend.padEnd(7)} ${String(g.rows).padStart(6)} ${g.gbs.toFixed(2).padStart(13)} ${g.gflops.toFixed(1).padStart(9)}   ${pct(g.fraction_of_peak ?? null)} of ${r.compute_peak?.bf16_gflops ? "bf16 dot-product" : "FMA"} peak (${pct(g.fraction_of_fp32_peak ?? null)} of FMA)`);
  }
  printComputeAndScaling(r);
}

// ---------------------------------------------------------------------------------------
// The compute probe and thread scaling (issue 13, items 3-4).

export interface ComputePeak {
  isa: string;
  threads: number;
  /** GFLOP/s of the kernel table's FP32 multiply-add loop, every pool thread's best window summed. */
  fp32_gflops: number;
  /** BF16 dot-product (vdpbf16ps) peak; null where the kernel table has no bf16 dot products. */
  bf16_gflops: number | null;
}

/**
 * The peak a product is measured against: the bf16 dot-product peak when the table has those
 * and the product's activations take them (quantised rows always, on avx512bf16; bf16-valued
 * rows of BF16 weights), else the FMA peak.
 */
export function productPeak(peak: { fp32_gflops: number; bf16_gflops: number | null }, dotRows: boolean): number {
  return dotRows && peak.bf16_gflops ? peak.bf16_gflops : peak.fp32_gflops;
}

export interface ThreadScalingRow {
  threads: number;
  /** The bandwidth probe at this thread count (best of before and after the GEMVs). */
  bandwidth_gbs: number;
  /** Microseconds per thread-pool run of 16 empty tasks: the per-call overhead a kernel launch pays. */
  pool_overhead_us: number;
  gemv: Array<{ name: string; gbs: number; fraction_of_bandwidth: number; ms_per_call: number }>;
}

/** The shapes timed at each thread count: one per weight format of the decode step. */
const SCALING_SHAPES = [SHAPES[0]!, SHAPES[1]!, SHAPES[3]!];

export function measureComputePeak(addon: NativeAddon, quick = false): ComputePeak {
  const info = addon.info();
  const dot = addon.dotPeak(quick ? 50 : 300);
  return { isa: info.isa, threads: info.threads, fp32_gflops: addon.fmaPeak(quick ? 50 : 300), bf16_gflops: dot > 0 ? dot : null };
}

function betterPeak(a: ComputePeak, b: ComputePeak): ComputePeak {
  const best = (x: number | null, y: number | null) => (x === null ? y : y === null ? x : Math.max(x, y));
  return { ...a, fp32_gflops: Math.max(a.fp32_gflops, b.fp32_gflops), bf16_gflops: best(a.bf16_gflops, b.bf16_gflops) };
}

/** 1, 2, 3, 4, then doubling, always ending at nproc. */
export function scalingThreadCounts(nproc: number): number[] {
  const counts: number[] = [];
  for (let t = 1; t <= nproc; t = t < 4 ? t + 1 : t * 2) counts.push(t);
  if (counts[counts.length - 1] !== nproc) counts.push(nproc);
  return counts;
}

/**
 * GEMV weight GB/s of the native kernels at each thread count (the pool resized in place),
 * each against the bandwidth probe at the same count; the pool is restored afterwards.
 */
export function runThreadScaling(addon: NativeAddon, opts: { quick?: boolean; threads?: number[] } = {}): ThreadScalingRow[] {
  const initial = addon.info().threads;
  const counts = opts.threads ?? scalingThreadCounts(availableParallelism());
  const probe = () => addon.memoryBandwidth(opts.quick ? 256 * 2 ** 20 : 2 ** 30, opts.quick ? 3 : 8);
  const backend = new NativeBackend(addon);
  try {
    const rows: ThreadScalingRow[] = counts.map((threads) => {
      addon.setThreads(threads);
      return { threads, bandwidth_gbs: probe(), pool_overhead_us: addon.poolOverhead(16, opts.quick ? 200 : 2000), gemv: [] };
    });
    for (const s of SCALING_SHAPES) {
      // Uploaded once for every thread count: the same working set, larger than the caches.
      const stored = randomStored(s);
      const copies = opts.quick ? 1 : Math.max(1, Math.ceil(WORKING_SET / stored.readData().byteLength));
      const handles = Array.from({ length: copies }, () => backend.uploadMatrix(stored));
      const x = new Float32Array(s.in);
      fillActivations(x, s);
      const out = new Float32Array(s.out);
      for (const row of rows) {
        addon.setThreads(row.threads);
        let next = 0;
        const ms = time(() => backend.linear(x, 1, handles[next++ % copies]!, s.format !== "bf16", out), opts.quick ? 0.2 : 1, 5);
        row.gemv.push({ name: s.name, gbs: handles[0]!.bytes / (ms / 1000) / 1e9, fraction_of_bandwidth: 0, ms_per_call: ms });
      }
    }
    for (const row of rows) {
      addon.setThreads(row.threads);
      row.bandwidth_gbs = Math.max(row.bandwidth_gbs, probe());
      for (const g of row.gemv) g.fraction_of_bandwidth = g.gbs / row.bandwidth_gbs;
    }
    return rows;
  } finally {
    addon.setThreads(initial);
  }
}

function printComputeAndScaling(r: KernelBenchResult): void {
  if (r.compute_peak) {
    const p = r.compute_peak;
    console.log(`  compute probe (${p.isa}, ${p.threads} threads): FP32 FMA peak ${p.fp32_gflops.toFixed(0)} GFLOP/s${p.bf16_gflops === null ? "" : `, BF16 ${p.bf16_gflops.toFixed(0)} GFLOP/s`}`);
  }
  if (!r.thread_scaling?.length) return;
  const names = r.thread_scaling[0]!.gemv.map((g) => g.name.split(" (")[0]!);
  console.log("  GEMV by threads: weight GB/s (of the bandwidth probe at that thread count)");
  console.log(`  threads   bandwidth GB/s   pool us/run   ${names.map((n) => n.padStart(22)).join("")}`);
  for (const row of r.thread_scaling) {
    const cells = row.gemv.map((g) => `${g.gbs.toFixed(2)} (${(100 * g.fraction_of_bandwidth).toFixed(0)}%)`.padStart(22)).join("");
    console.log(`  ${String(row.threads).padStart(7)} ${row.bandwidth_gbs.toFixed(1).padStart(16)} ${row.pool_overhead_us.toFixed(2).padStart(13)}   ${cells}`);
  }
}

// ---------------------------------------------------------------------------------------
// Decode batches: N sequences decoding together make N-row products. A kernel that decodes
// each weight once and uses it for every row costs max(weight bytes / bandwidth, FLOPs /
// FMA peak); `roofline` is that time over the measured one.

export interface RowsResult {
  name: string;
  /** "native", or "baseline" for the addon given with --baseline. */
  addon: string;
  rows: number;
  ms_per_call: number;
  gflops: number;
  /** Weight bytes (data + scales) per second. */
  gbs: number;
  fraction_of_bandwidth: number;
  /** Of the peak of the instructions this product runs on (productPeak). */
  fraction_of_peak: number;
  roofline: number;
}

export interface RowsBenchResult {
  bandwidth_gbs: number;
  /** Best multi-threaded GFLOP/s of the kernel table's FMA loop. */
  fma_peak_gflops: number;
  /** The same for its bf16 dot products; null where it has none. */
  dot_peak_gflops: number | null;
  threads: number;
  isa: string;
  results: RowsResult[];
}

const ROW_SHAPES: Shape[] = [
  { name: "bf16 129280x4096 (head)", format: "bf16", out: 129280, in: 4096 },
  { name: "fp8 1024x4096", format: "fp8", out: 1024, in: 4096 },
  { name: "fp8 32768x1024", format: "fp8", out: 32768, in: 1024 },
  // A routed expert's matrices: in a decode batch each gets 1-8 rows (16 sequences x 6 of 256
  // experts: mostly 1-2), in prefill many.
  { name: "fp4 2048x4096 (expert w1/w3)", format: "fp4", out: 2048, in: 4096 },
  { name: "fp4 4096x2048 (expert w2)", format: "fp4", out: 4096, in: 2048 },
];
const ROW_COUNTS = [1, 2, 4, 8, 16, 32, 64];

function loadAddon(path: string): NativeAddon {
  return createRequire(import.meta.url)(resolve(path)) as NativeAddon;
}

/**
 * Every shape at every row count; with a baseline addon the two are timed alternately,
 * `rounds` times each, and each keeps its best (a shared machine only slows a window down).
 * `smallHead` uses 32768 output rows for the head (a quarter of the memory and time).
 */
export async function runRowsBench(opts: { baseline?: string; smallHead?: boolean; rows?: number[]; rounds?: number; quick?: boolean; bf16Activations?: boolean; formats?: string[] } = {}): Promise<RowsBenchResult> {
  const loaded = nativeAddon();
  if ("error" in loaded) throw new Error(`bench kernels --rows needs the native addon: ${loaded.error}`);
  const addon = loaded.addon;
  const variants: Array<{ name: string; backend: NativeBackend }> = [{ name: "native", backend: new NativeBackend(addon) }];
  if (opts.baseline) variants.push({ name: "baseline", backend: new NativeBackend(loadAddon(opts.baseline)) });
  const probe = () => ({ bw: addon.memoryBandwidth(opts.quick ? 256 * 2 ** 20 : 2 ** 30, opts.quick ? 3 : 8), peak: addon.fmaPeak(opts.quick ? 50 : 300), dot: addon.dotPeak(opts.quick ? 50 : 300) });
  const before = probe();
  const info = addon.info();
  const results: RowsResult[] = [];
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const shapes = ROW_SHAPES.filter((s) => !opts.formats || opts.formats.includes(s.format)).map((s) =>
    opts.smallHead && s.format === "bf16" ? { ...s, name: "bf16 32768x4096 (head slice)", out: 32768 } : s,
  );
  const timings: Array<{ shape: Shape; rows: number; variant: string; ms: number; bytes: number }> = [];
  const dir = mkdtempSync(join(tmpdir(), "dsv4-bench-rows-"));
  try {
  for (const s of shapes) {
    const bytes = randomStored(s).readData().byteLength;
    const copies = Math.max(1, Math.ceil((opts.quick ? WORKING_SET / 4 : WORKING_SET) / bytes));
    // The copies live in one file that every variant maps: the same page-cache pages, so an A/B
    // compares kernels, not how each variant's own gigabyte copy happened to be backed (owned
    // copies of the head measured 19-26 ms a call from run to run with 2 MiB pages or not).
    const stored = mappedCopies(s, copies, dir);
    const handles = variants.map((v) => stored.map((m) => v.backend.uploadMatrix(m)));
    for (const v of variants) v.backend.prefetchFile?.(stored[0]!.location!.file);
    for (const rows of opts.rows ?? ROW_COUNTS) {
      const x = new Float32Array(rows * s.in);
      fillActivations(x, s, opts.bf16Activations);
      const out = new Float32Array(rows * s.out);
      const best = variants.map(() => Infinity);
      // Enough calls for ~1 s of work per variant and round (at least the copies once).
      const flops = 2 * rows * s.out * s.in;
      const estimateMs = Math.max(bytes / (before.bw * 1e6), flops / (before.peak * 1e6));
      const minSeconds = opts.quick ? 0.1 : Math.min(1, Math.max(0.25, (10 * estimateMs) / 1000));
      for (let r = 0; r < rounds; r++) {
        variants.forEach((v, i) => {
          let next = 0;
          const hs = handles[i]!;
          const ms = time(() => v.backend.linear(x, rows, hs[next++ % copies]!, s.format !== "bf16", out), minSeconds, Math.min(copies, 20));
          best[i] = Math.min(best[i]!, ms);
        });
      }
      variants.forEach((v, i) => timings.push({ shape: s, rows, variant: v.name, ms: best[i]!, bytes: handles[i]![0]!.bytes }));
    }
  }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const after = probe();
  const bw = Math.max(before.bw, after.bw), fma = Math.max(before.peak, after.peak), dot = Math.max(before.dot, after.dot);
  const peaks = { fp32_gflops: fma, bf16_gflops: dot > 0 ? dot : null };
  for (const t of timings) {
    const flops = 2 * t.rows * t.shape.out * t.shape.in;
    const gflops = flops / (t.ms / 1000) / 1e9, gbs = t.bytes / (t.ms / 1000) / 1e9;
    const peak = productPeak(peaks, t.shape.format !== "bf16" || !!opts.bf16Activations);
    const floorMs = Math.max(t.bytes / (bw * 1e6), flops / (peak * 1e6));
    results.push({ name: t.shape.name, addon: t.variant, rows: t.rows, ms_per_call: t.ms, gflops, gbs, fraction_of_bandwidth: gbs / bw, fraction_of_peak: gflops / peak, roofline: floorMs / t.ms });
  }
  return { bandwidth_gbs: bw, fma_peak_gflops: fma, dot_peak_gflops: peaks.bf16_gflops, threads: info.threads, isa: info.isa, results };
}

export function printRowsTable(r: RowsBenchResult): void {
  const pct = (f: number) => `${(100 * f).toFixed(0).padStart(3)}%`;
  const baseline = r.results.some((x) => x.addon === "baseline");
  const dot = r.dot_peak_gflops === null ? "" : `, bf16 dot-product peak ${r.dot_peak_gflops.toFixed(0)}`;
  console.log(`kernels by rows: memory bandwidth ${r.bandwidth_gbs.toFixed(1)} GB/s, FMA peak ${r.fma_peak_gflops.toFixed(0)}${dot} GFLOP/s (${r.threads} threads, ${r.isa}; of peak: of the instructions each product runs on)`);
  console.log(`  shape                          addon     rows   ms/call   GFLOP/s  weight GB/s  of bw  of peak  roofline${baseline ? "  speedup" : ""}`);
  for (const x of r.results) {
    const base = r.results.find((b) => b.addon === "baseline" && b.name === x.name && b.rows === x.rows);
    const speedup = baseline && x.addon !== "baseline" && base ? `  ${(base.ms_per_call / x.ms_per_call).toFixed(2).padStart(6)}x` : "";
    console.log(
      `  ${x.name.padEnd(30)} ${x.addon.padEnd(8)} ${String(x.rows).padStart(5)} ${x.ms_per_call.toFixed(2).padStart(9)} ${x.gflops.toFixed(1).padStart(9)} ${x.gbs.toFixed(2).padStart(12)}  ${pct(x.fraction_of_bandwidth)}   ${pct(x.fraction_of_peak)}     ${pct(x.roofline)}${speedup}`,
    );
  }
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv.includes("--json");
  if (process.argv.includes("--rows")) {
    const rows = argValue("--row-counts")?.split(",").map(Number);
    const result = await runRowsBench({ baseline: argValue("--baseline"), smallHead: process.argv.includes("--small-head"), bf16Activations: process.argv.includes("--bf16-activations"), rows, quick: process.argv.includes("--quick"), formats: argValue("--formats")?.split(",") });
    if (json) console.log(JSON.stringify(result));
    else printRowsTable(result);
  } else {
    const result = await runKernelBench({ quick: process.argv.includes("--quick"), ref: !process.argv.includes("--no-ref") });
    if (json) console.log(JSON.stringify(result));
    else printKernelTable(result);
  }
}
