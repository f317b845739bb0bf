/**
 * `tool_choice: "none"` as a decoding constraint (spec §C.7): the tools stay
 * in the prompt, but the output may never contain `｜DSML｜` (as the special
 * token or spelled out in ordinary byte tokens), so no `<｜DSML｜tool_calls`
 * block can start, in reasoning or content. "required" and named functions
 * are tool-call.ts.
 */
import { DSML } from "../../text/special-tokens.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { TokenConstraint } from "./constraint.js";
import { TextGuard } from "./token-text.js";

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
