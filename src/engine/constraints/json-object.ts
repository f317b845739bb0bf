/**
 * `response_format: {type: "json_object"}` as a decoding constraint: the
 * content (after the reasoning in thinking mode) is exactly one JSON object,
 * and generation ends with its closing brace.
 *
 * - A token is allowed when its bytes keep the content a prefix of a JSON
 *   object (json.ts) and max_tokens still leaves room to close it, so a
 *   request with enough budget never ends with broken JSON.
 * - Special tokens and special-token strings are never allowed in content:
 *   the output parser would act on them (end the output, open a tool block).
 * - While reasoning, the model may not start a tool block (the answer must be
 *   JSON), an EOS is replaced by `</think>`, and `</think>` is forced when only
 *   the tokens for `</think>{}` are left.
 */
import { STRAY_SPECIALS } from "../../text/marker-scan.js";
import { DSML } from "../../text/special-tokens.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { DecodeView, TokenConstraint } from "./constraint.js";
import { copyJsonState, isStringSafe, jsonComplete, jsonInString, jsonStart, jsonStep, minCloseBytes, type JsonState } from "./json.js";
import { TextGuard, tokenBinary } from "./token-text.js";

const stringSafeCache = new WeakMap<Tokenizer, Uint8Array>();

/** Per token: 1 when its bytes are string-safe text (json.ts isStringSafe), computed once per tokenizer. */
function stringSafeTable(tok: Tokenizer): Uint8Array {
  let t = stringSafeCache.get(tok);
  if (!t) {
    t = new Uint8Array(tok.vocabSize);
    for (let id = 0; id < tok.vocabSize; id++) t[id] = !tok.isSpecial(id) && isStringSafe(tokenBinary(tok, id)) ? 1 : 0;
    stringSafeCache.set(tok, t);
  }
  return t;
}

export class JsonObjectConstraint implements TokenConstraint {
  private state: JsonState = jsonStart();
  private readonly reasoningGuard: TextGuard;
  private readonly contentGuard: TextGuard;
  private readonly stringSafe: Uint8Array;
  /** Which first bytes the current state accepts: a whole-vocabulary scan rejects most tokens on it. */
  private firstBytes: Uint8Array | null = null;

  constructor(private readonly tok: Tokenizer) {
    this.stringSafe = stringSafeTable(tok);
    this.reasoningGuard = new TextGuard(tok, [DSML]);
    this.contentGuard = new TextGuard(tok, [...STRAY_SPECIALS, DSML]);
  }

  get complete(): boolean {
    return jsonComplete(this.state);
  }

  forced(view: DecodeView): number | undefined {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (view.phase === "reasoning" && thinkEnd !== undefined && view.remaining <= 1 + minCloseBytes(this.state)) return thinkEnd;
    return undefined;
  }

  allows(token: number, view: DecodeView): boolean {
    if (view.phase === "reasoning") return !this.reasoningGuard.hits(token);
    const bytes = tokenBinary(this.tok, token);
    if (bytes.length === 0 || !this.firstByteOk(bytes.charCodeAt(0)) || this.tok.isSpecial(token)) return false;
    // Plain text inside a string leaves the state unchanged: no need to replay it.
    const next = jsonInString(this.state) && this.stringSafe[token] === 1 ? this.state : this.after(token);
    if (next === null) return false;
    // Keep the object closable within max_tokens, unless that is already out of reach.
    if (minCloseBytes(next) > view.remaining - 1 && minCloseBytes(this.state) <= view.remaining) return false;
    return !this.contentGuard.hits(token);
  }

  redirect(token: number, view: DecodeView): number {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (view.phase === "reasoning" && token === this.tok.specialIds.eos && thinkEnd !== undefined) return thinkEnd;
    return token;
  }

  accept(token: number, view: DecodeView): void {
    if (view.phase === "reasoning") {
      this.reasoningGuard.push(token);
      return;
    }
    this.contentGuard.push(token);
    // A token the constraint did not choose (a forced `</think>` seen late, say) leaves the state as it was.
    this.state = this.after(token) ?? this.state;
    this.firstBytes = null;
  }

  private firstByteOk(b: number): boolean {
    if (!this.firstBytes) {
      this.firstBytes = new Uint8Array(256);
      for (let c = 0; c < 256; c++) this.firstBytes[c] = jsonStep(copyJsonState(this.state), c) ? 1 : 0;
    }
    return this.firstBytes[b] === 1;
  }

  /** The state after `token`'s bytes, or null when they break the JSON (or are empty). */
  private after(token: number): JsonState | null {
    const bytes = tokenBinary(this.tok, token);
    if (bytes.length === 0) return null;
    const s = copyJsonState(this.state);
    for (let i = 0; i < bytes.length; i++) if (!jsonStep(s, bytes.charCodeAt(i))) return null;
    return s;
  }
}
