/**
 * `tool_choice` as decoding constraints (spec §C.7). The prompt cannot say
 * "none" or "required", so the decoder enforces them:
 *
 * - "none": the tools stay in the prompt, but the output may never contain
 *   `｜DSML｜` (as the special token or spelled out in ordinary byte tokens),
 *   so no `<｜DSML｜tool_calls` block can start, in reasoning or content.
 * - "required" / a named function: the model writes what it likes until it
 *   would end (EOS) or starts DSML markup itself; from there the engine writes
 *   `\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="X">\n` (after `</think>` if
 *   the model was still reasoning). For "required" it writes up to `name="`
 *   and the name is then sampled restricted to the declared tool names. The
 *   parameters are the model's own. The call is also started early enough that
 *   max_tokens cannot cut off its head, so a call is always parsed.
 */
import { DSML } from "../../text/special-tokens.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { DecodeView, TokenConstraint } from "./constraint.js";
import { TextGuard, tokenBinary, utf8Binary } from "./token-text.js";

const CALLS_OPEN = `\n\n<${DSML}tool_calls>\n<${DSML}invoke name="`;
/** The part of CALLS_OPEN the content may already end with (ASCII, so byte and char offsets agree). */
const PLAIN_HEAD = "\n\n<";

export class NoToolCalls implements TokenConstraint {
  readonly complete = false;
  private readonly guard: TextGuard;

  constructor(tok: Tokenizer) {
    this.guard = new TextGuard(tok, [DSML]);
  }

  forced(): undefined {
    return undefined;
  }

  allows(token: number): boolean {
    return !this.guard.hits(token);
  }

  redirect(token: number): number {
    return token;
  }

  accept(token: number): void {
    this.guard.push(token);
  }
}

type Stage = "free" | "forcing" | "name" | "args";

export class RequiredToolCall implements TokenConstraint {
  readonly complete = false;
  private stage: Stage = "free";
  private queue: number[] = [];
  private readonly guard: TextGuard;
  /** The last bytes of content, for a `\n\n<` the model already wrote. */
  private contentTail = "";
  private name = "";
  /** `NAME">\n` for each allowed name, as bytes. */
  private readonly heads: string[];
  /** Tokens the call's head needs at most once started from content. */
  private readonly reserve: number;

  /** `names`: the declared tools; `only`: the function tool_choice names, or null for "required". */
  constructor(private readonly tok: Tokenizer, names: readonly string[], private readonly only: string | null) {
    this.guard = new TextGuard(tok, [DSML]);
    this.heads = (only === null ? names : [only]).map((n) => utf8Binary(`${n}">\n`));
    const opening = this.openingTokens("");
    this.reserve = opening.length + (only === null ? Math.max(...this.heads.map((h) => h.length)) : 0);
  }

  forced(view: DecodeView): number | undefined {
    if (this.stage === "free" && view.remaining <= this.reserve + (view.phase === "reasoning" ? 1 : 0)) this.begin(view);
    return this.stage === "forcing" ? this.queue[0] : undefined;
  }

  allows(token: number, view: DecodeView): boolean {
    if (this.stage !== "name") return true;
    if (this.tok.isSpecial(token)) return false;
    const next = this.name + tokenBinary(this.tok, token);
    if (next.length === this.name.length) return false;
    const need = headLeft(this.heads, next);
    if (need === Infinity) return false;
    // While the budget still allows a complete head (a byte per token at worst), keep it so.
    return headLeft(this.heads, this.name) > view.remaining || need <= view.remaining - 1;
  }

  redirect(token: number, view: DecodeView): number {
    if (this.stage !== "free" || (token !== this.eos && !this.guard.hits(token))) return token;
    this.begin(view);
    return this.queue[0]!;
  }

  accept(token: number, view: DecodeView): void {
    switch (this.stage) {
      case "free":
        this.guard.push(token);
        if (view.phase === "content") this.contentTail = (this.contentTail + tokenBinary(this.tok, token)).slice(-PLAIN_HEAD.length);
        break;
      case "forcing":
        if (this.queue[0] === token) this.queue.shift();
        if (this.queue.length === 0) this.stage = this.only === null ? "name" : "args";
        break;
      case "name":
        this.name += tokenBinary(this.tok, token);
        if (this.heads.includes(this.name)) this.stage = "args";
        break;
      case "args":
        break;
    }
  }

  private get eos(): number {
    return this.tok.specialIds.eos;
  }

  private begin(view: DecodeView): void {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (view.phase === "reasoning" && thinkEnd !== undefined) {
      this.queue = [thinkEnd, ...this.openingTokens("")];
    } else {
      let k = PLAIN_HEAD.length;
      while (k > 0 && !this.contentTail.endsWith(PLAIN_HEAD.slice(0, k))) k--;
      this.queue = this.openingTokens(PLAIN_HEAD.slice(0, k));
    }
    this.stage = "forcing";
  }

  /** The forced tokens after content that already ends with `written` (a prefix of the opening). */
  private openingTokens(written: string): number[] {
    const text = CALLS_OPEN + (this.only === null ? "" : `${this.only}">\n`);
    return this.tok.encode(text.slice(written.length));
  }
}

/** Fewest bytes that complete one of `heads` from `written`; Infinity when none starts with it. */
function headLeft(heads: readonly string[], written: string): number {
  let need = Infinity;
  for (const h of heads) if (h.startsWith(written)) need = Math.min(need, h.length - written.length);
  return need;
}
