/**
 * Shareable prefixes: system prompts the operator declares public
 * (`--shared-prefix FILE`, `prefixCache.sharedPrefixes`), whose cache blocks
 * every tenant may reuse. A request shares the part of its prompt that is the
 * shared system prompt as the encoder renders it first in a conversation
 * (BOS, the effort text when thinking, the system text).
 *
 * Which tokens count: the longest common prefix of the request's prompt tokens
 * and the shared text's own tokens. BPE may merge the system text's last
 * characters with what follows (tools, or text the tenant appended), so the
 * request's tokens can part from the shared tokens a little before the text
 * does; counting only tokens equal to the shared tokens means a shared block
 * never holds anything but the public text, whatever follows it.
 */
import { encodeMessages, type ThinkingMode } from "../text/encoding.js";
import type { Release } from "../text/release.js";
import type { Tokenizer } from "../text/tokenizer.js";

/** A shared system prompt as rendered for one set of encoder options, and its tokens. */
export interface RenderedPrefix {
  text: string;
  tokens: readonly number[];
}

/**
 * Pure: how many leading `promptTokens` belong to a shared prefix. A candidate counts only when
 * the prompt text starts with its rendered text; then its tokens count up to the first one that
 * differs from the prompt's. The longest over all candidates.
 */
export function sharedPrefixTokens(promptText: string, promptTokens: readonly number[], candidates: readonly RenderedPrefix[]): number {
  let best = 0;
  for (const c of candidates) {
    if (!promptText.startsWith(c.text)) continue;
    const max = Math.min(c.tokens.length, promptTokens.length);
    let n = 0;
    while (n < max && c.tokens[n] === promptTokens[n]) n++;
    if (n > best) best = n;
  }
  return best;
}

export interface PrefixEncoding {
  thinking_mode: ThinkingMode;
  reasoning_effort: string | null;
  /** The encoder in use (default "april"): its effort text leads the rendered prefix. */
  effort_prompts?: Release;
}

/** The shared prefixes of one engine, rendered and tokenised once per encoder setting. */
export class SharedPrefixes {
  readonly texts: readonly string[];
  private readonly rendered = new Map<string, RenderedPrefix[]>();

  constructor(texts: readonly string[], private readonly tokenizer: Tokenizer | null) {
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== "string")) {
      throw new TypeError("prefixCache.sharedPrefixes must be an array of strings (system prompt texts)");
    }
    this.texts = texts.filter((t) => t !== "");
  }

  get empty(): boolean {
    return this.texts.length === 0;
  }

  /** Leading tokens of a messages request's prompt that lie inside a shared system prompt. */
  tokens(promptText: string, promptTokens: readonly number[], enc: PrefixEncoding): number {
    if (this.empty || !this.tokenizer) return 0;
    return sharedPrefixTokens(promptText, promptTokens, this.candidates(enc));
  }

  private candidates(enc: PrefixEncoding): RenderedPrefix[] {
    const prompts = enc.effort_prompts ?? "april";
    const key = `${enc.thinking_mode}\0${enc.reasoning_effort ?? ""}\0${prompts}`;
    let list = this.rendered.get(key);
    if (!list) {
      const tok = this.tokenizer!;
      list = this.texts.map((content) => {
        const text = encodeMessages([{ role: "system", content }], { thinking_mode: enc.thinking_mode, reasoning_effort: enc.reasoning_effort, effort_prompts: prompts });
        return { text, tokens: tok.encode(text) };
      });
      this.rendered.set(key, list);
    }
    return list;
  }
}
