/**
 * A schema-constrained JSON value at the token level: which tokens keep the
 * text a prefix of a value the schema admits, and what the shortest completion
 * costs afterwards. Rejections are mostly settled by the first byte (a table
 * per state); inside a plain string, string-safe tokens are counted, not replayed.
 */
import type { Tokenizer } from "../../text/tokenizer.js";
import type { SchemaNode } from "./schema-compile.js";
import { addChars, costGrowth, matchCanEnd, matchDone, matchStart, matchStep, minFinish, plainString, type MatchState } from "./schema-match.js";
import { tokenTables, type TokenTables } from "./token-tables.js";
import { tokenBinary } from "./token-text.js";

export class TokenJson {
  private state: MatchState;
  private readonly tables: TokenTables;
  private firstOk: Uint8Array | null = null;
  private costNow = -1;
  private canEndNow: boolean | null = null;
  /** Per first byte (lazily): which second bytes the state accepts after it. */
  private secondOk: Array<Uint8Array | undefined> = [];

  /** Most a single byte can add to the completion cost (it opens at most one value or key). */
  private readonly growth: number;

  constructor(private readonly tok: Tokenizer, node: SchemaNode) {
    this.tables = tokenTables(tok);
    this.state = matchStart(node);
    this.growth = costGrowth(node);
  }

  /** Fewest bytes (an upper bound on tokens) that complete the value. */
  get cost(): number {
    if (this.costNow < 0) this.costNow = minFinish(this.state);
    return this.costNow;
  }

  get done(): boolean {
    return matchDone(this.state);
  }

  get canEnd(): boolean {
    if (this.canEndNow === null) this.canEndNow = matchCanEnd(this.state);
    return this.canEndNow;
  }

  /**
   * The completion cost after `token`, or -1 when the token breaks the value.
   * `budget`: the caller only needs to know whether the cost stays within it;
   * when the token cannot push it past (a byte opens at most one value, whose
   * cost the schema bounds), the exact cost is not computed.
   */
  costAfter(token: number, budget = -1): number {
    const t = this.tables;
    const first = t.first[token]!;
    if (first < 0 || t.special[token] === 1 || !this.firstByteOk(first)) return -1;
    const str = plainString(this.state);
    if (str && t.jsonSafe[token] === 1) {
      const chars = t.chars[token]!;
      if (str.count + chars > str.max) return -1;
      return this.cost - Math.min(chars, Math.max(0, str.min - str.count));
    }
    if (t.len[token]! >= 2 && !this.secondByteOk(first, tokenBinary(this.tok, token).charCodeAt(1))) return -1;
    const next = this.after(token);
    if (next === null) return -1;
    if (budget >= 0 && this.cost + t.len[token]! * this.growth <= budget) return 0;
    return minFinish(next);
  }

  accept(token: number): boolean {
    const str = plainString(this.state);
    const next = str && this.tables.jsonSafe[token] === 1 ? addChars(this.state, this.tables.chars[token]!) : this.after(token);
    if (next === null) return false;
    this.state = next;
    this.firstOk = null;
    this.secondOk = [];
    this.costNow = -1;
    this.canEndNow = null;
    return true;
  }

  private after(token: number): MatchState | null {
    const bytes = tokenBinary(this.tok, token);
    let s = this.state;
    for (let i = 0; i < bytes.length; i++) {
      s = matchStep(s, bytes.charCodeAt(i));
      if (s.length === 0) return null;
    }
    return bytes.length > 0 ? s : null;
  }

  /** Whether `b1` may follow `b0` here: most tokens that pass the first byte (a space, say) fail the second. */
  private secondByteOk(b0: number, b1: number): boolean {
    let table = this.secondOk[b0];
    if (!table) {
      table = new Uint8Array(256);
      const after = matchStep(this.state, b0);
      for (let c = 0; c < 256; c++) table[c] = matchStep(after, c).length > 0 ? 1 : 0;
      this.secondOk[b0] = table;
    }
    return table[b1] === 1;
  }

  private firstByteOk(b: number): boolean {
    if (!this.firstOk) {
      this.firstOk = new Uint8Array(256);
      for (let c = 0; c < 256; c++) this.firstOk[c] = matchStep(this.state, c).length > 0 ? 1 : 0;
    }
    return this.firstOk[b] === 1;
  }
}
