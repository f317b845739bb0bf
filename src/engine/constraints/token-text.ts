/**
 * Token bytes as "binary strings" (one char per byte, code 0–255), so that
 * byte-level checks across token boundaries are plain string operations and
 * a UTF-8 character split between tokens is handled without decoding.
 */
import type { Tokenizer } from "../../text/tokenizer.js";

const cache = new WeakMap<Tokenizer, Array<string | undefined>>();

export function tokenBinary(tok: Tokenizer, id: number): string {
  let table = cache.get(tok);
  if (!table) {
    table = new Array<string | undefined>(tok.vocabSize);
    cache.set(tok, table);
  }
  let s = table[id];
  if (s === undefined) {
    s = toBinary(tok.tokenBytes(id));
    table[id] = s;
  }
  return s;
}

export function toBinary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

export function utf8Binary(text: string): string {
  return toBinary(new TextEncoder().encode(text));
}

/**
 * Watches the emitted bytes for forbidden strings (e.g. `｜DSML｜`, whether it
 * comes as its special token or spelled out by ordinary byte tokens): `hits`
 * tells whether a token would complete one, given the bytes emitted so far.
 */
export class TextGuard {
  private tail = "";
  private readonly keep: number;
  private readonly patterns: string[];
  /** A token can only complete a pattern if it holds the pattern's last byte. */
  private readonly lastBytes: Uint8Array;

  constructor(private readonly tok: Tokenizer, patterns: readonly string[]) {
    this.patterns = patterns.map(utf8Binary);
    this.keep = Math.max(0, ...this.patterns.map((p) => p.length - 1));
    this.lastBytes = new Uint8Array(256);
    for (const p of this.patterns) this.lastBytes[p.charCodeAt(p.length - 1)] = 1;
  }

  hits(token: number): boolean {
    const bytes = tokenBinary(this.tok, token);
    let possible = false;
    for (let i = 0; i < bytes.length && !possible; i++) possible = this.lastBytes[bytes.charCodeAt(i)] === 1;
    if (!possible) return false;
    const text = this.tail + bytes;
    for (const p of this.patterns) if (text.includes(p)) return true;
    return false;
  }

  push(token: number): void {
    const text = this.tail + tokenBinary(this.tok, token);
    this.tail = text.length > this.keep ? text.slice(text.length - this.keep) : text;
  }
}
