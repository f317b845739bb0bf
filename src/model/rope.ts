import type { LayerSchedule, ModelConfig, YarnScaling } from "./config.js";

/**
 * Rotary frequencies of one layer kind (spec §10): base theta, plus YaRN frequency
 * interpolation without magnitude scaling for the compressed layers.
 */
export function ropeFrequencies(ropeDim: number, base: number, yarn: YarnScaling | null): Float64Array {
  const half = ropeDim / 2;
  const freqs = new Float64Array(half);
  for (let i = 0; i < half; i++) freqs[i] = 1 / base ** ((2 * i) / ropeDim);
  if (!yarn) return freqs;
  const correctionDim = (rotations: number) =>
    (ropeDim * Math.log(yarn.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.max(Math.floor(correctionDim(yarn.betaFast)), 0);
  let high = Math.min(Math.ceil(correctionDim(yarn.betaSlow)), ropeDim - 1);
  if (high === low) high += 0.001;
  for (let i = 0; i < half; i++) {
    const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1);
    const smooth = 1 - ramp;
    freqs[i] = (freqs[i]! / yarn.factor) * (1 - smooth) + freqs[i]! * smooth;
  }
  return freqs;
}

/** cos/sin of every pair's angle at one position. */
export class RopeTable {
  readonly half: number;
  constructor(readonly freqs: Float64Array) {
    this.half = freqs.length;
  }

  static forLayer(cfg: ModelConfig, layer: LayerSchedule): RopeTable {
    // Window-only layers use plain RoPE; compressed layers the compress base with YaRN.
    return layer.compressRatio === 0
      ? new RopeTable(ropeFrequencies(cfg.ropeDim, cfg.ropeTheta, null))
      : new RopeTable(ropeFrequencies(cfg.ropeDim, cfg.compressRopeTheta, cfg.yarn));
  }

  angles(pos: number, cos = new Float64Array(this.half), sin = new Float64Array(this.half)): { cos: Float64Array; sin: Float64Array } {
    for (let i = 0; i < this.half; i++) {
      const a = pos * this.freqs[i]!;
      cos[i] = Math.cos(a);
      sin[i] = Math.sin(a);
    }
    return { cos, sin };
  }
}
