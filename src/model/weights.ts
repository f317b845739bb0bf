import { decodeToFloat64, e4m3ToNumber } from "../formats/dtypes.js";
import { Checkpoint, CheckpointFormatError } from "../formats/safetensors.js";
import type { Backend, MatrixHandle, StoredMatrix, Vec, WeightFormat } from "../kernels/backend.js";
import type { LayerSchedule, ModelConfig } from "./config.js";
import { checkConfigFitsCheckpoint } from "./checkpoint-fit.js";
import { checkpointTensors } from "./schema.js";

export interface HcWeights {
  /** [mix, hc·dim] F32 projection, used as an unquantised linear. */
  fn: MatrixHandle;
  base: Float64Array;
  scale: Float64Array;
}

export interface CompressorWeights {
  wkv: MatrixHandle;
  wgate: MatrixHandle;
  /** [ratio, width] additive score bias per slot of the window. */
  ape: Float64Array;
  norm: Vec;
}

export interface IndexerWeights {
  wqB: MatrixHandle;
  weightsProj: MatrixHandle;
  compressor: CompressorWeights;
}

export interface AttentionWeights {
  wqA: MatrixHandle;
  qNorm: Vec;
  wqB: MatrixHandle;
  wkv: MatrixHandle;
  kvNorm: Vec;
  /** wo_a split by output group: group g maps heads g·H/G.. to its o_lora_rank outputs. */
  woA: MatrixHandle[];
  woB: MatrixHandle;
  sink: Vec;
  compressor: CompressorWeights | null;
  indexer: IndexerWeights | null;
}

export interface ExpertWeights {
  w1: MatrixHandle;
  w2: MatrixHandle;
  w3: MatrixHandle;
}

export interface MoeWeights {
  gate: MatrixHandle;
  bias: Float64Array | null;
  /** [vocab, topk] expert ids of hash-routed layers. */
  tid2eid: Int32Array | null;
  /** Routed experts, loaded on first use so a load does not read every expert up front. */
  expert(e: number): ExpertWeights;
  shared: ExpertWeights;
}

export interface MtpExtraWeights {
  eProj: MatrixHandle;
  hProj: MatrixHandle;
  enorm: Vec;
  hnorm: Vec;
  norm: Vec;
  hcHead: HcWeights;
}

/** The DSpark drafter's own tensors (spec §8b); its stages are ordinary blocks in `ModelWeights.mtp`. */
export interface DsparkWeights {
  /** FP8 [D, D·targets]: the concatenated taps to the draft's main input. */
  mainProj: MatrixHandle;
  mainNorm: Vec;
  /** The last stage's final norm and HCHead. */
  norm: Vec;
  hcHead: HcWeights;
  /** BF16 [V, R]: row d is the Markov embedding of token d. */
  markovW1: MatrixHandle;
  /** BF16 [V, R]: the embedding's bias over the vocabulary. */
  markovW2: MatrixHandle;
  /** BF16 [1, D + R]: one confidence logit from [H; e]. */
  confidence: MatrixHandle;
}

export interface BlockWeights {
  layer: LayerSchedule;
  attnNorm: Vec;
  ffnNorm: Vec;
  hcAttn: HcWeights;
  hcFfn: HcWeights;
  attn: AttentionWeights;
  moe: MoeWeights;
  mtp: MtpExtraWeights | null;
}

export interface ModelWeights {
  embed: MatrixHandle;
  head: MatrixHandle;
  norm: Vec;
  hcHead: HcWeights;
  blocks: BlockWeights[];
  /** The April MTP block, or the DSpark stages. */
  mtp: BlockWeights[];
  dspark: DsparkWeights | null;
}

/** Checks every tensor's presence, dtype and shape against the schema before anything is read. */
export function validateCheckpoint(ckpt: Checkpoint, cfg: ModelConfig): void {
  checkConfigFitsCheckpoint(ckpt, cfg);
  const layout = drafterLayout(cfg);
  for (const spec of checkpointTensors(cfg)) {
    if (!ckpt.has(spec.name)) {
      throw new CheckpointFormatError(`tensor missing: the config (${cfg.layers.length} layers, ${cfg.numRoutedExperts} experts, drafter: ${layout}) requires it`, ckpt.dir, spec.name);
    }
    const info = ckpt.info(spec.name);
    const scaleF32 = spec.role === "fp8-scale" && info.dtype === "F32"; // Base checkpoints carry F32 scales
    if ((info.dtype !== spec.dtype && !scaleF32) || info.shape.join(",") !== spec.shape.join(",")) {
      throw new CheckpointFormatError(`expected ${spec.dtype} ${JSON.stringify(spec.shape)}, found ${info.dtype} ${JSON.stringify(info.shape)}`, info.file, spec.name);
    }
  }
  // More drafter blocks than the config counts would be silently ignored: refuse instead.
  const extra = `mtp.${cfg.mtpLayers.length}.attn_norm.weight`;
  if (cfg.drafter !== "none" && ckpt.has(extra)) {
    throw new CheckpointFormatError(`unexpected tensor: the config gives ${cfg.mtpLayers.length} drafter block(s) (drafter: ${layout}); check compress_ratios and num_hidden_layers`, ckpt.dir, extra);
  }
}

/** The drafter layout in words, as the load line and `dsv4 info` print it. */
export function drafterLayout(cfg: ModelConfig): string {
  if (cfg.dspark) return `0731 DSpark (${cfg.dspark.stages} stage${cfg.dspark.stages === 1 ? "" : "s"}, block ${cfg.dspark.blockSize})`;
  if (cfg.drafter === "mtp") return `April MTP (${cfg.mtpLayers.length} block${cfg.mtpLayers.length === 1 ? "" : "s"})`;
  return "none";
}

class WeightLoader {
  bytes = 0;
  /** The FP8, BF16 and F32 matrices products read (not the tables looked up by row): Backend.alignRows candidates. */
  readonly dense: MatrixHandle[] = [];
  /** repack: routed experts may be kept in a layout of the backend's own (StoredMatrix.repack). */
  constructor(readonly ckpt: Checkpoint, readonly backend: Backend, private readonly repack = false) {}

  values(name: string): Float64Array {
    const info = this.ckpt.info(name);
    return decodeToFloat64(info.dtype, this.ckpt.read(name));
  }

  vec(name: string): Vec {
    return this.backend.fromValues(this.values(name));
  }

  /** How a backend gets a tensor's bytes: read on demand, or mapped from its file range. */
  private source(name: string, offset = 0, byteLength?: number): Pick<StoredMatrix, "readData" | "location"> {
    const info = this.ckpt.info(name);
    const len = byteLength ?? info.byteLength;
    return {
      readData: () => this.ckpt.readRange(name, offset, len),
      location: { file: info.file, offset: info.start + offset, byteLength: len },
    };
  }

  private matrix(name: string, format: WeightFormat, out: number, inp: number, scaled: boolean, repack = false, lookup = false): MatrixHandle {
    const s = scaled ? this.scales(`${name}.scale`) : undefined;
    const h = this.backend.uploadMatrix({
      name, format, outFeatures: out, inFeatures: inp, ...this.source(`${name}.weight`), repack,
      scaleDtype: s?.dtype,
      scaleLocation: s?.location,
      // Read only if the backend asks: the native one maps FP4 scales instead.
      get scale() {
        return s?.read();
      },
    });
    this.bytes += h.bytes;
    if (format !== "fp4" && !lookup) this.dense.push(h);
    return h;
  }

  /** A scale tensor's dtype and place, and its bytes read once on demand. */
  private scales(name: string): { dtype: "F8_E8M0" | "F32"; location: { file: string; offset: number; byteLength: number }; read(): Uint8Array } {
    const ckpt = this.ckpt;
    const info = ckpt.info(name);
    let bytes: Uint8Array | undefined;
    return {
      dtype: info.dtype === "F32" ? "F32" : "F8_E8M0",
      location: { file: info.file, offset: info.start, byteLength: info.byteLength },
      read: () => (bytes ??= ckpt.read(name)),
    };
  }

  /** A `name.weight` matrix in whichever stored format it has; `lookup`: a table read by row (an embedding). */
  linear(name: string, repack = false, lookup = false): MatrixHandle {
    const info = this.ckpt.info(`${name}.weight`);
    const [out, stored] = info.shape as [number, number];
    switch (info.dtype) {
      case "F8_E4M3": return this.matrix(name, "fp8", out, stored, true, false, lookup);
      case "I8": return this.matrix(name, "fp4", out, stored * 2, true, repack, lookup);
      case "BF16": return this.matrix(name, "bf16", out, stored, false, false, lookup);
      case "F32": return this.matrix(name, "f32", out, stored, false, false, lookup);
      default: throw new CheckpointFormatError(`unsupported weight dtype ${info.dtype}`, info.file, `${name}.weight`);
    }
  }

  /**
   * An FP8 matrix cut into `groups` equal row ranges. Ranges aligned to the 128-row scale
   * blocks stay FP8; otherwise they are dequantised to F32, which is exact for E4M3·2^k.
   */
  rowGroups(name: string, groups: number): MatrixHandle[] {
    const info = this.ckpt.info(`${name}.weight`);
    const [out, inp] = info.shape as [number, number];
    const rows = out / groups;
    const scale = this.ckpt.read(`${name}.scale`);
    const scaleDtype = this.ckpt.info(`${name}.scale`).dtype === "F32" ? "F32" : "F8_E8M0";
    const kb = Math.ceil(inp / 128);
    const handles: MatrixHandle[] = [];
    for (let g = 0; g < groups; g++) {
      const gname = `${name}[group ${g}]`;
      let h: MatrixHandle;
      if (rows % 128 === 0 && scaleDtype === "F8_E8M0") {
        const sRows = rows / 128;
        h = this.backend.uploadMatrix({
          name: gname, format: "fp8", outFeatures: rows, inFeatures: inp,
          ...this.source(`${name}.weight`, g * rows * inp, rows * inp),
          scale: scale.subarray(g * sRows * kb, (g + 1) * sRows * kb), scaleDtype,
        });
        this.dense.push(h);
      } else {
        const data = this.ckpt.readRange(`${name}.weight`, g * rows * inp, rows * inp);
        const scales = decodeToFloat64(scaleDtype, scale);
        const values = new Float32Array(rows * inp);
        for (let i = 0; i < rows; i++) {
          const n = g * rows + i;
          for (let k = 0; k < inp; k++) values[i * inp + k] = e4m3ToNumber(data[i * inp + k]!) * scales[Math.floor(n / 128) * kb + Math.floor(k / 128)]!;
        }
        const bytes = new Uint8Array(values.buffer);
        h = this.backend.uploadMatrix({ name: gname, format: "f32", outFeatures: rows, inFeatures: inp, readData: () => bytes, location: null });
      }
      this.bytes += h.bytes;
      handles.push(h);
    }
    return handles;
  }

  /**
   * Rows [start, end) of an unquantised `name.weight` matrix (BF16 or F32) as a matrix of
   * their own: the same bytes, mapped from the same file range, nothing copied.
   */
  rowRange(name: string, start: number, end: number): MatrixHandle {
    const info = this.ckpt.info(`${name}.weight`);
    const [out, inp] = info.shape as [number, number];
    if (info.dtype !== "BF16" && info.dtype !== "F32") throw new CheckpointFormatError(`row ranges need an unquantised matrix, not ${info.dtype}`, info.file, `${name}.weight`);
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= out)) throw new RangeError(`${name}: rows [${start}, ${end}) are not a range of its ${out} rows`);
    const rowBytes = (info.byteLength / out) | 0;
    const h = this.backend.uploadMatrix({
      name: `${name}[rows ${start}..${end})`, format: info.dtype === "BF16" ? "bf16" : "f32", outFeatures: end - start, inFeatures: inp,
      ...this.source(`${name}.weight`, start * rowBytes, (end - start) * rowBytes),
    });
    this.bytes += h.bytes;
    return h;
  }

  /** A bare tensor (no `.weight` suffix) used as a matrix, e.g. the F32 `hc_*_fn`. */
  bareMatrix(name: string): MatrixHandle {
    const info = this.ckpt.info(name);
    const [out, inp] = info.shape as [number, number];
    const h = this.backend.uploadMatrix({ name, format: info.dtype === "BF16" ? "bf16" : "f32", outFeatures: out, inFeatures: inp, ...this.source(name) });
    this.bytes += h.bytes;
    this.dense.push(h);
    return h;
  }

  dspark(cfg: ModelConfig): DsparkWeights {
    const first = cfg.mtpLayers[0]!.prefix;
    const last = cfg.mtpLayers[cfg.mtpLayers.length - 1]!.prefix;
    return {
      mainProj: this.linear(`${first}.main_proj`),
      mainNorm: this.vec(`${first}.main_norm.weight`),
      norm: this.vec(`${last}.norm.weight`),
      hcHead: this.hc(`${last}.`, "head"),
      markovW1: this.linear(`${last}.markov_head.markov_w1`, false, true),
      markovW2: this.linear(`${last}.markov_head.markov_w2`),
      confidence: this.linear(`${last}.confidence_head.proj`),
    };
  }

  hc(prefix: string, tag: string): HcWeights {
    return { fn: this.bareMatrix(`${prefix}hc_${tag}_fn`), base: this.values(`${prefix}hc_${tag}_base`), scale: this.values(`${prefix}hc_${tag}_scale`) };
  }

  compressor(prefix: string): CompressorWeights {
    return { wkv: this.linear(`${prefix}.wkv`), wgate: this.linear(`${prefix}.wgate`), ape: this.values(`${prefix}.ape`), norm: this.vec(`${prefix}.norm.weight`) };
  }

  /** routed: one of the routed experts, which the backend may repack (the shared ones are FP8, read in place). */
  expert(prefix: string, routed = false): ExpertWeights {
    const r = routed && this.repack;
    return { w1: this.linear(`${prefix}.w1`, r), w2: this.linear(`${prefix}.w2`, r), w3: this.linear(`${prefix}.w3`, r) };
  }

  block(cfg: ModelConfig, layer: LayerSchedule): BlockWeights {
    const p = layer.prefix;
    const a = `${p}.attn`;
    const attn: AttentionWeights = {
      wqA: this.linear(`${a}.wq_a`),
      qNorm: this.vec(`${a}.q_norm.weight`),
      wqB: this.linear(`${a}.wq_b`),
      wkv: this.linear(`${a}.wkv`),
      kvNorm: this.vec(`${a}.kv_norm.weight`),
      woA: this.rowGroups(`${a}.wo_a`, cfg.oGroups),
      woB: this.linear(`${a}.wo_b`),
      sink: this.vec(`${a}.attn_sink`),
      compressor: layer.compressRatio > 0 ? this.compressor(`${a}.compressor`) : null,
      indexer: layer.kind === "csa"
        ? { wqB: this.linear(`${a}.indexer.wq_b`), weightsProj: this.linear(`${a}.indexer.weights_proj`), compressor: this.compressor(`${a}.indexer.compressor`) }
        : null,
    };
    const experts: Array<ExpertWeights | undefined> = new Array(cfg.numRoutedExperts);
    const moe: MoeWeights = {
      gate: this.linear(`${p}.ffn.gate`),
      bias: layer.hashRouted ? null : this.values(`${p}.ffn.gate.bias`),
      tid2eid: layer.hashRouted ? Int32Array.from(this.values(`${p}.ffn.gate.tid2eid`)) : null,
      expert: (e) => (experts[e] ??= this.expert(`${p}.ffn.experts.${e}`, true)),
      shared: this.expert(`${p}.ffn.shared_experts`),
    };
    if (moe.tid2eid) {
      const bad = moe.tid2eid.findIndex((e) => e < 0 || e >= cfg.numRoutedExperts);
      if (bad >= 0) throw new CheckpointFormatError(`expert id ${moe.tid2eid[bad]} at flat index ${bad} is outside [0, ${cfg.numRoutedExperts})`, this.ckpt.info(`${p}.ffn.gate.tid2eid`).file, `${p}.ffn.gate.tid2eid`);
    }
    const mtp: MtpExtraWeights | null = p.startsWith("mtp.") && cfg.drafter === "mtp"
      ? {
          eProj: this.linear(`${p}.e_proj`),
          hProj: this.linear(`${p}.h_proj`),
          enorm: this.vec(`${p}.enorm.weight`),
          hnorm: this.vec(`${p}.hnorm.weight`),
          norm: this.vec(`${p}.norm.weight`),
          hcHead: { fn: this.bareMatrix(`${p}.hc_head_fn`), base: this.values(`${p}.hc_head_base`), scale: this.values(`${p}.hc_head_scale`) },
        }
      : null;
    return {
      layer,
      attnNorm: this.vec(`${p}.attn_norm.weight`),
      ffnNorm: this.vec(`${p}.ffn_norm.weight`),
      hcAttn: this.hc(`${p}.`, "attn"),
      hcFfn: this.hc(`${p}.`, "ffn"),
      attn,
      moe,
      mtp,
    };
  }
}

export interface LoadProgress {
  /**
   * "weights" (default): blocks loaded, of `total` (main layers + MTP + the top level);
   * "prefetch": shards touched (prefetch.ts); "repack": blocks whose routed experts are loaded
   * (loadRoutedExperts).
   */
  phase?: "weights" | "prefetch" | "repack";
  done: number;
  total: number;
  bytes: number;
}

/**
 * One id range of a draft vocabulary (DraftVocab): the rows of the shared head and of the last
 * DSpark stage's Markov bias matrix for token ids [start, end), mapped, not copied.
 */
export interface DraftVocabPart {
  start: number;
  end: number;
  head: MatrixHandle;
  /** DSpark checkpoints only. */
  markovW2: MatrixHandle | null;
}

/** The parts of a draft vocabulary of sorted, disjoint id ranges (checked by the caller). */
export function loadDraftVocabParts(ckpt: Checkpoint, cfg: ModelConfig, backend: Backend, ranges: ReadonlyArray<readonly [number, number]>, markov: boolean): DraftVocabPart[] {
  const l = new WeightLoader(ckpt, backend);
  const w2 = `${cfg.mtpLayers[cfg.mtpLayers.length - 1]!.prefix}.markov_head.markov_w2`;
  return ranges.map(([start, end]) => ({ start, end, head: l.rowRange("head", start, end), markovW2: markov ? l.rowRange(w2, start, end) : null }));
}

export function loadWeights(ckpt: Checkpoint, cfg: ModelConfig, backend: Backend, onProgress?: (p: LoadProgress) => void, opts: { repack?: boolean } = {}): { weights: ModelWeights; loader: { bytes: number; dense: MatrixHandle[] } } {
  validateCheckpoint(ckpt, cfg);
  const l = new WeightLoader(ckpt, backend, opts.repack ?? true);
  const total = cfg.layers.length + cfg.mtpLayers.length + 1;
  let done = 0;
  const tick = () => onProgress?.({ done: ++done, total, bytes: l.bytes });
  const embed = l.linear("embed", false, true);
  const head = l.linear("head");
  const norm = l.vec("norm.weight");
  const hcHead: HcWeights = { fn: l.bareMatrix("hc_head_fn"), base: l.values("hc_head_base"), scale: l.values("hc_head_scale") };
  tick();
  const blocks = cfg.layers.map((layer) => {
    const b = l.block(cfg, layer);
    tick();
    return b;
  });
  const mtp = cfg.mtpLayers.map((layer) => {
    const b = l.block(cfg, layer);
    tick();
    return b;
  });
  const dspark = cfg.dspark ? l.dspark(cfg) : null;
  return { weights: { embed, head, norm, hcHead, blocks, mtp, dspark }, loader: l };
}

/**
 * Every routed expert of every block (main and drafter) now, rather than on its first use:
 * with repacking on, each is a copy the backend makes (StoredMatrix.repack), which a step
 * should not wait for.
 */
export function loadRoutedExperts(cfg: ModelConfig, weights: ModelWeights, onProgress?: (p: LoadProgress) => void): void {
  const blocks = [...weights.blocks, ...weights.mtp];
  blocks.forEach((block, i) => {
    for (let e = 0; e < cfg.numRoutedExperts; e++) block.moe.expert(e);
    onProgress?.({ phase: "repack", done: i + 1, total: blocks.length, bytes: 0 });
  });
}
