/**
 * What a decoding constraint looks like to a sequence. A constraint sees every
 * emitted token and may (1) force the next token outright, (2) restrict which
 * tokens may be sampled (the sampler renormalises over the rest), (3) replace
 * the sampled token, and (4) declare the output complete. Forced and replaced
 * tokens are ordinary completion tokens: the parser, usage and logprobs see
 * them like any other.
 */
import type { ParserPhase } from "../../text/parser.js";

/** The sequence's position as a constraint needs it, taken before the token in question. */
export interface DecodeView {
  phase: ParserPhase;
  /** Tokens max_tokens still allows, the one being chosen included. */
  remaining: number;
}

export interface TokenConstraint {
  /** A token that must come next whatever the logits say. */
  forced(view: DecodeView): number | undefined;
  /** Whether `token` may be sampled next. */
  allows(token: number, view: DecodeView): boolean;
  /** The token to emit in place of the sampled one (usually itself). */
  redirect(token: number, view: DecodeView): number;
  /** Records an emitted token, whichever way it was chosen. */
  accept(token: number, view: DecodeView): void;
  /** The output is complete: generation ends after the last accepted token. */
  readonly complete: boolean;
}
