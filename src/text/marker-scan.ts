/**
 * Finds markup markers in streamed text without ever deciding early: text is
 * released only once no later character could turn it into (part of) a
 * marker. That is what makes the parser's output independent of how the text
 * was chunked (spec §D.4 pitfall 1).
 */
import {
  ASSISTANT,
  BOS,
  DSML,
  EOS,
  FIM_BEGIN,
  FIM_END,
  FIM_HOLE,
  IMAGE,
  LATEST_REMINDER,
  PAD,
  TASK_TOKENS,
  THINK_END,
  THINK_START,
  USER,
} from "./special-tokens.js";

const PLACEHOLDER_HEAD = "<｜place▁holder▁no▁";
const PLACEHOLDER_SOURCE = "<｜place▁holder▁no▁\\d{1,4}｜>";
const PLACEHOLDER_PARTIAL = /^<｜place▁holder▁no▁\d{1,4}｜?$/;

/** Special-token strings that never belong in visible text. */
export const STRAY_SPECIALS: readonly string[] = [
  BOS,
  PAD,
  USER,
  ASSISTANT,
  LATEST_REMINDER,
  IMAGE,
  FIM_BEGIN,
  FIM_HOLE,
  FIM_END,
  "<|EOT|>",
  ...Object.values(TASK_TOKENS),
  ...["calls▁begin", "calls▁end", "call▁begin", "call▁end", "outputs▁begin", "outputs▁end", "output▁begin", "output▁end", "sep"].map(
    (s) => `<｜tool▁${s}｜>`,
  ),
  THINK_START,
  THINK_END,
  EOS,
  DSML,
];

export const PLACEHOLDER = "<placeholder>";

export type ScanResult =
  | { kind: "marker"; index: number; marker: string; length: number }
  | { kind: "text"; end: number };

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export class MarkerScanner {
  private readonly regex: RegExp;
  private readonly prefixes = new Set<string>();
  private readonly maxLength: number;
  private readonly firstChars: Set<string>;

  /** `markers` are matched longest first where several start at the same place. */
  constructor(markers: readonly string[], withPlaceholders = true) {
    const sorted = [...new Set(markers)].sort((a, b) => b.length - a.length);
    const alternatives = sorted.map(escape);
    if (withPlaceholders) alternatives.push(PLACEHOLDER_SOURCE);
    this.regex = new RegExp(alternatives.join("|"), "g");
    for (const m of sorted) for (let i = 1; i < m.length; i++) this.prefixes.add(m.slice(0, i));
    if (withPlaceholders) for (let i = 1; i <= PLACEHOLDER_HEAD.length; i++) this.prefixes.add(PLACEHOLDER_HEAD.slice(0, i));
    this.maxLength = Math.max(...sorted.map((m) => m.length), withPlaceholders ? PLACEHOLDER_HEAD.length + 6 : 0);
    this.firstChars = new Set(sorted.map((m) => m[0]!));
    if (withPlaceholders) this.firstChars.add("<");
  }

  private couldStart(tail: string): boolean {
    return this.prefixes.has(tail) || PLACEHOLDER_PARTIAL.test(tail);
  }

  /** Start of the longest suffix of `text` that may still grow into a marker (text.length if none). */
  holdFrom(text: string): number {
    for (let i = Math.max(0, text.length - this.maxLength + 1); i < text.length; i++) {
      if (this.firstChars.has(text[i]!) && this.couldStart(text.slice(i))) return i;
    }
    return text.length;
  }

  /**
   * The first marker that is certain, or how much of `text` is certainly plain.
   * With `final` (no more text will come) nothing is held back.
   */
  scan(text: string, final: boolean): ScanResult {
    const hold = final ? text.length : this.holdFrom(text);
    this.regex.lastIndex = 0;
    const m = this.regex.exec(text);
    if (m !== null && m.index < hold) {
      const marker = m[0].startsWith(PLACEHOLDER_HEAD) ? PLACEHOLDER : m[0];
      return { kind: "marker", index: m.index, marker, length: m[0].length };
    }
    return { kind: "text", end: hold };
  }

  /** `text` with every marker removed (for text that is final). */
  strip(text: string): string {
    this.regex.lastIndex = 0;
    return text.replace(this.regex, "");
  }
}
