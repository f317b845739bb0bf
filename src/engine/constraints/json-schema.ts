/**
 * `response_format: {type: "json_schema"}` as a decoding constraint: the
 * content (after the reasoning in thinking mode) is one JSON value the schema
 * admits, with no whitespace before it, and generation ends when it is
 * complete (EOS is allowed once a top-level number or literal could end).
 *
 * Thinking: the reasoning may use at most half of what max_tokens leaves after
 * the shortest valid answer (`reasoningShare`); then `</think>` is forced. An
 * EOS while reasoning becomes `</think>`, and no tool block may start.
 */
import { STRAY_SPECIALS } from "../../text/marker-scan.js";
import { DSML } from "../../text/special-tokens.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { DecodeView, TokenConstraint } from "./constraint.js";
import type { SchemaNode } from "./schema-compile.js";
import { TokenJson } from "./token-json.js";
import { TextGuard } from "./token-text.js";

/** Reasoning tokens allowed before the answer must start: half of what the smallest answer leaves. */
export function reasoningShare(maxTokens: number, answerTokens: number): number {
  return Math.max(0, Math.floor((maxTokens - answerTokens - 1) / 2));
}

export class JsonSchemaConstraint implements TokenConstraint {
  private readonly value: TokenJson;
  private readonly reasoningGuard: TextGuard;
  private readonly contentGuard: TextGuard;
  private reasoningUsed = 0;
  private share = -1;

  constructor(private readonly tok: Tokenizer, node: SchemaNode) {
    this.value = new TokenJson(tok, node);
    this.reasoningGuard = new TextGuard(tok, [DSML]);
    this.contentGuard = new TextGuard(tok, [...STRAY_SPECIALS, DSML]);
  }

  /** Tokens the shortest valid answer needs (`</think>` not included). */
  minTokens(): number {
    return this.value.cost;
  }

  get complete(): boolean {
    return this.value.done;
  }

  forced(view: DecodeView): number | undefined {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (view.phase !== "reasoning" || thinkEnd === undefined) return undefined;
    if (this.share < 0) this.share = reasoningShare(view.remaining + this.reasoningUsed, this.value.cost);
    return this.reasoningUsed >= this.share || view.remaining <= 1 + this.value.cost ? thinkEnd : undefined;
  }

  allows(token: number, view: DecodeView): boolean {
    if (view.phase === "reasoning") return !this.reasoningGuard.hits(token);
    if (token === this.tok.specialIds.eos) return this.value.canEnd;
    const cost = this.value.costAfter(token, view.remaining - 1);
    if (cost < 0) return false;
    // Keep the value closable within max_tokens, unless that is already out of reach.
    if (cost > view.remaining - 1 && this.value.cost <= view.remaining) return false;
    return !this.contentGuard.hits(token);
  }

  redirect(token: number, view: DecodeView): number {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (view.phase === "reasoning" && token === this.tok.specialIds.eos && thinkEnd !== undefined) return thinkEnd;
    return token;
  }

  accept(token: number, view: DecodeView): void {
    if (view.phase === "reasoning") {
      this.reasoningUsed++;
      this.reasoningGuard.push(token);
      return;
    }
    this.contentGuard.push(token);
    this.value.accept(token);
  }
}
