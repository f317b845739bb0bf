/**
 * Drafters: what proposes the tokens a speculative step verifies. Two come from the
 * checkpoint: the April MTP block, chained k times on its own output streams (spec §8), and
 * the 0731 DSpark block, B drafts from one forward with a confidence per draft (spec §8b).
 * A test or benchmark hook (SpeculativeOptions.draftOverride) may replace the proposal, e.g.
 * with an oracle that proposes the main model's own continuation cut at a chosen length.
 *
 * Under sampling the runner draws each draft from its q_i with a uniform the engine drew
 * from the sequence's seeded rng, so a seed reproduces the output; the engine recomputes q_i
 * from the returned logits for rejection sampling (speculative.ts).
 */
import type { Vec } from "../kernels/backend.js";
import type { ModelConfig } from "../model/config.js";
import { EngineError } from "./errors.js";
import type { DraftOutput, DraftRequest, Runner } from "./runner/index.js";
import { isGreedy, samplingProbs, type SamplingParams } from "./sampler.js";
import type { MtpEntry, Sequence } from "./sequence.js";
import type { SpeculativeMode, SpeculativeOptions } from "./types.js";

export type DrafterKind = "mtp" | "dspark";

/** What a sequence verifies in its next step. */
export interface Proposal {
  tokens: number[];
  /** Draft distributions q_i, for rejection sampling (null under greedy). */
  q: Float64Array[] | null;
  /** Under sampling, until draftDistributions: the logits each draft was drawn from. */
  logits?: Vec[];
  /** DSpark confidence logits per draft (null for MTP and overrides). */
  confidence: number[] | null;
}

/** Replaces the drafter's proposal (EngineOptions.speculative.draftOverride): up to `k` tokens. */
export type DraftOverride = (ctx: { generated: readonly number[]; pending: number; proposed: readonly number[]; k: number }) => readonly number[];

/** The drafter the checkpoint carries (null: none). */
export function checkpointDrafter(cfg: ModelConfig): DrafterKind | null {
  return cfg.drafter === "none" ? null : cfg.drafter;
}

/** Keeps the newest entries the warm-up allows: the draft input and `warmup` before it. */
export function trimEntries(entries: MtpEntry[], warmup: number): MtpEntry[] {
  return entries.length > warmup + 1 ? entries.slice(entries.length - warmup - 1) : entries;
}

/** The speculation an engine runs: which drafter, how many drafts at most, and whether auto may choose none. */
export interface Speculation {
  mode: SpeculativeMode;
  drafter: DrafterKind | null;
  /** Most drafts a step verifies: the DSpark block or the MTP chain cap, and a step fits the window. */
  maxDrafts: number;
  forced?: number;
  /** SpeculativeOptions.draftVocab, when it restricts the vocabulary. */
  draftVocab?: number;
}

/** Resolves EngineOptions.speculative against the checkpoint; an explicit drafter it lacks is an error. */
export function resolveSpeculation(cfg: ModelConfig, option: SpeculativeMode | SpeculativeOptions | undefined): Speculation {
  const spec: SpeculativeOptions = typeof option === "string" ? { mode: option } : (option ?? {});
  const mode: SpeculativeMode = spec.mode ?? (spec.enabled === false ? "off" : "auto");
  if (!["auto", "dspark", "mtp", "off"].includes(mode)) throw new EngineError("invalid_request", `speculative: "${mode}" is not one of auto, dspark, mtp, off`);
  const has = checkpointDrafter(cfg);
  if ((mode === "mtp" || mode === "dspark") && has !== mode) {
    throw new EngineError(
      "invalid_request",
      `speculative: "${mode}" needs a checkpoint with ${mode === "mtp" ? "an MTP block (April layout, mtp.0.e_proj)" : "DSpark stages (0731 layout)"}; this one has ${has ?? "no drafter"}; use "auto" or "off"`,
    );
  }
  const drafter = mode === "off" ? null : has;
  const natural = drafter === "dspark" ? (cfg.dspark?.blockSize ?? 0) : drafter === "mtp" ? (spec.maxMtpDrafts ?? 4) : 0;
  // A verify step of k + 1 tokens must fit the window (state.ts beginTail).
  const maxDrafts = Math.max(0, Math.min(natural, cfg.window - 1));
  if (spec.drafts !== undefined && (!Number.isInteger(spec.drafts) || spec.drafts < 0)) throw new EngineError("invalid_request", `speculative.drafts: ${spec.drafts} is not a non-negative integer`);
  if (spec.draftVocab !== undefined && (!Number.isInteger(spec.draftVocab) || spec.draftVocab < 1)) {
    throw new EngineError("invalid_request", `speculative.draftVocab: ${spec.draftVocab} is not a positive integer (a count of token ids)`, { param: "draftVocab" });
  }
  if (spec.draftVocab !== undefined && drafter === null) {
    const why = mode === "off" ? "speculative decoding is off" : "this checkpoint has no drafter (no MTP block, no DSpark stages)";
    throw new EngineError("invalid_request", `speculative.draftVocab restricts what drafts propose, but ${why}; drop it or turn speculation on`, { param: "draftVocab" });
  }
  const restricts = drafter !== null && spec.draftVocab !== undefined && spec.draftVocab < cfg.vocabSize;
  return { mode, drafter, maxDrafts, ...(spec.drafts !== undefined ? { forced: Math.min(spec.drafts, maxDrafts) } : {}), ...(restricts ? { draftVocab: spec.draftVocab } : {}) };
}

/**
 * The id ranges of a draft vocabulary of the `n` lowest ids plus every added token of the
 * tokenizer above them (V4's thinking, DSML and chat markers): what Dsv4Model.setDraftVocab takes.
 */
export function draftVocabRanges(vocabSize: number, n: number, isAdded: ((id: number) => boolean) | null): Array<[number, number]> {
  const ranges: Array<[number, number]> = [[0, Math.min(n, vocabSize)]];
  if (isAdded) {
    for (let id = n; id < vocabSize; id++) {
      if (!isAdded(id)) continue;
      const last = ranges[ranges.length - 1]!;
      if (last[1] === id) last[1] = id + 1;
      else ranges.push([id, id + 1]);
    }
  }
  return ranges;
}

export interface DraftPlan {
  seq: Sequence;
  /** Drafts wanted (MTP chains exactly this many; DSpark drafts its block, later trimmed). */
  k: number;
}

/**
 * Drafts for every planned sequence in one runner call, consuming their drafter inputs.
 * `skipModel` (an override-only run) asks the runner for nothing.
 */
export async function draftTokens(
  runner: Runner, kind: DrafterKind, plans: readonly DraftPlan[], opts: { vocab: number; warmup: number; override?: DraftOverride; skipModel?: boolean },
): Promise<Map<Sequence, Proposal>> {
  const wantLogits = (s: Sequence) => !isGreedy(s.req.sampling) && !opts.override;
  const sampling = (s: Sequence, n: number) =>
    isGreedy(s.req.sampling) ? undefined : { params: s.req.sampling, uniforms: Array.from({ length: n }, () => s.rng.next()) };
  const requests: DraftRequest[] = opts.skipModel ? [] : plans.map(({ seq: s, k }) => {
    if (kind === "mtp") {
      const entries = trimEntries(s.mtpEntries, opts.warmup);
      s.mtpEntries = [];
      // The MTP position jumps to the oldest entry kept: positions skipped are outside what it will attend to soon.
      return { kind, id: s.state!.id, mtpLength: entries[0]!.pos, entries: entries.map((e) => ({ hidden: e.hidden, token: e.token })), count: k, sampling: sampling(s, k), wantLogits: wantLogits(s) };
    }
    const mainX = s.dsparkMainX!;
    return { kind, id: s.state!.id, mainX, anchor: s.pending!, count: k, sampling: sampling(s, k), wantLogits: wantLogits(s) };
  });
  if (opts.skipModel && kind === "mtp") for (const { seq } of plans) seq.mtpEntries = trimEntries(seq.mtpEntries, opts.warmup);
  const outs: DraftOutput[] = requests.length > 0 ? await runner.draft(requests) : [];
  const proposals = new Map<Sequence, Proposal>();
  plans.forEach(({ seq: s, k }, i) => {
    const out = outs[i] ?? { tokens: [], logits: [], confidence: null };
    if (opts.override) {
      const tokens = opts.override({ generated: s.generated, pending: s.pending!, proposed: out.tokens.slice(0, k), k }).slice(0, k);
      // A fixed proposal is a one-hot draft distribution: rejection sampling stays exact.
      const q = isGreedy(s.req.sampling) ? null : tokens.map((t) => oneHot(t, opts.vocab));
      proposals.set(s, { tokens: [...tokens], q, confidence: null });
      return;
    }
    // q_i is computed once the engine knows how many drafts it verifies (draftDistributions).
    proposals.set(s, { tokens: out.tokens, q: null, logits: isGreedy(s.req.sampling) ? undefined : out.logits, confidence: out.confidence });
  });
  return proposals;
}

/** Fills in q_i for the drafts a proposal kept (sampling only): each a full-vocabulary pass, so only those. */
export function draftDistributions(p: Proposal, sampling: SamplingParams): void {
  if (!p.logits) return;
  p.q = p.logits.slice(0, p.tokens.length).map((l) => samplingProbs(l, sampling));
  p.logits = undefined;
}

function oneHot(token: number, vocab: number): Float64Array {
  const q = new Float64Array(vocab);
  q[token] = 1;
  return q;
}
