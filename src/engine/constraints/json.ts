/**
 * An incremental JSON validator over bytes, for `response_format: json_object`.
 *
 * It accepts exactly the byte strings that are prefixes of one JSON object
 * (RFC 8259, UTF-8, top level an object as json_object asks, with no
 * whitespace before it), so a token is
 * allowed when its bytes keep the output such a prefix. States are small plain
 * objects copied per trial, because the sampler tries a token by feeding its
 * bytes to a copy and keeps the copy only for the token it picks.
 *
 * Limits keep a sampled model from stalling inside valid JSON: whitespace runs,
 * number length and nesting depth are bounded; the length of strings and the
 * number of members are left to the token budget (see `minCloseBytes`).
 */

/** Longest run of whitespace bytes between tokens of the JSON text. */
export const JSON_WS_LIMIT = 24;
/** Longest number literal, in bytes. */
export const JSON_NUMBER_LIMIT = 64;
/** Deepest nesting of objects and arrays. */
export const JSON_DEPTH_LIMIT = 64;

/** Where the validator is (numbers rather than an enum so states stay plain, copyable data). */
const M = {
  /** Before the top-level `{`. */
  Top: 0,
  /** After `{`: a key or `}`. */
  KeyOrEnd: 1,
  /** After `,` in an object: a key. */
  Key: 2,
  /** After a key: `:`. */
  Colon: 3,
  /** After `:` or `,` in an array: a value. */
  Value: 4,
  /** After `[`: a value or `]`. */
  ValueOrEnd: 5,
  /** After a value: `,` or the closer of the open container. */
  After: 6,
  Str: 7,
  StrEscape: 8,
  /** In `\uXXXX`; `left` hex digits to go. */
  StrHex: 9,
  /** In a multi-byte UTF-8 character; `left` continuation bytes to go, the next in [lo, hi]. */
  StrUtf8: 10,
  Num: 11,
  /** In `true`/`false`/`null`; `left` letters to go. */
  Lit: 12,
  Done: 13,
} as const;

/** Number sub-states: which part is being read and whether it could end here. */
const N = {
  Minus: 0, // "-": needs a digit
  Zero: 1, // "0" or "-0": complete, no more integer digits
  Int: 2, // integer digits: complete
  Dot: 3, // "1.": needs a digit
  Frac: 4, // fraction digits: complete
  Exp: 5, // "1e": needs a sign or digit
  ExpSign: 6, // "1e+": needs a digit
  ExpDigits: 7, // complete
} as const;

export interface JsonState {
  mode: number;
  /** Open containers, innermost last: "{" or "[". */
  stack: string;
  /** The string being read is an object key. */
  key: boolean;
  /** Whitespace bytes in the current run. */
  ws: number;
  left: number;
  lo: number;
  hi: number;
  num: number;
  numLen: number;
  lit: string;
}

export function jsonStart(): JsonState {
  return { mode: M.Top, stack: "", key: false, ws: 0, left: 0, lo: 0, hi: 0, num: N.Int, numLen: 0, lit: "" };
}

export function jsonComplete(s: JsonState): boolean {
  return s.mode === M.Done;
}

const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

function numComplete(n: number): boolean {
  return n === N.Zero || n === N.Int || n === N.Frac || n === N.ExpDigits;
}

function space(s: JsonState): boolean {
  return ++s.ws <= JSON_WS_LIMIT;
}

function open(s: JsonState, c: "{" | "["): boolean {
  if (s.stack.length >= JSON_DEPTH_LIMIT) return false;
  s.stack += c;
  s.mode = c === "{" ? M.KeyOrEnd : M.ValueOrEnd;
  return true;
}

function close(s: JsonState): void {
  s.stack = s.stack.slice(0, -1);
  s.mode = s.stack === "" ? M.Done : M.After;
}

/** A value starts with byte `b` (whitespace already skipped). */
function startValue(s: JsonState, b: number): boolean {
  switch (b) {
    case 0x7b: // {
      return open(s, "{");
    case 0x5b: // [
      return open(s, "[");
    case 0x22: // "
      s.mode = M.Str;
      s.key = false;
      return true;
    case 0x74: // t
      return literal(s, "true");
    case 0x66: // f
      return literal(s, "false");
    case 0x6e: // n
      return literal(s, "null");
    case 0x2d: // -
      s.mode = M.Num;
      s.num = N.Minus;
      s.numLen = 1;
      return true;
    default:
      if (!isDigit(b)) return false;
      s.mode = M.Num;
      s.num = b === 0x30 ? N.Zero : N.Int;
      s.numLen = 1;
      return true;
  }
}

function literal(s: JsonState, word: string): boolean {
  s.mode = M.Lit;
  s.lit = word;
  s.left = word.length - 1;
  return true;
}

/** Feeds one byte; false when the text can no longer be a JSON object prefix (`s` is then garbage). */
export function jsonStep(s: JsonState, b: number): boolean {
  if (s.mode !== M.Str && s.mode !== M.StrEscape && s.mode !== M.StrHex && s.mode !== M.StrUtf8 && s.mode !== M.Num && s.mode !== M.Lit) {
    // No whitespace before the object: content that starts with a run of blanks is no use to a client.
    if (isWs(b)) return s.mode !== M.Done && s.mode !== M.Top && space(s);
    s.ws = 0;
  }
  switch (s.mode) {
    case M.Top:
      return b === 0x7b && open(s, "{");
    case M.KeyOrEnd:
    case M.Key:
      if (b === 0x7d && s.mode === M.KeyOrEnd) {
        close(s);
        return true;
      }
      if (b !== 0x22) return false;
      s.mode = M.Str;
      s.key = true;
      return true;
    case M.Colon:
      if (b !== 0x3a) return false;
      s.mode = M.Value;
      return true;
    case M.ValueOrEnd:
      if (b === 0x5d) {
        close(s);
        return true;
      }
      return startValue(s, b);
    case M.Value:
      return startValue(s, b);
    case M.After: {
      const top = s.stack[s.stack.length - 1];
      if (b === 0x2c) {
        s.mode = top === "{" ? M.Key : M.Value;
        return true;
      }
      if ((b === 0x7d && top === "{") || (b === 0x5d && top === "[")) {
        close(s);
        return true;
      }
      return false;
    }
    case M.Str:
      return stringByte(s, b);
    case M.StrEscape:
      if (b === 0x75) {
        s.mode = M.StrHex;
        s.left = 4;
        return true;
      }
      // " \ / b f n r t
      if (b === 0x22 || b === 0x5c || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74) {
        s.mode = M.Str;
        return true;
      }
      return false;
    case M.StrHex:
      if (!isHex(b)) return false;
      if (--s.left === 0) s.mode = M.Str;
      return true;
    case M.StrUtf8:
      if (b < s.lo || b > s.hi) return false;
      s.lo = 0x80;
      s.hi = 0xbf;
      if (--s.left === 0) s.mode = M.Str;
      return true;
    case M.Num:
      return numberByte(s, b);
    case M.Lit:
      if (b !== s.lit.charCodeAt(s.lit.length - s.left)) return false;
      if (--s.left === 0) s.mode = M.After;
      return true;
    default: // Done
      return false;
  }
}

function stringByte(s: JsonState, b: number): boolean {
  if (b === 0x22) {
    s.mode = s.key ? M.Colon : M.After;
    return true;
  }
  if (b === 0x5c) {
    s.mode = M.StrEscape;
    return true;
  }
  if (b < 0x20) return false;
  if (b < 0x80) return true;
  // UTF-8 lead bytes, with the ranges that exclude overlong forms, surrogates and > U+10FFFF.
  let left: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) left = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    left = 2;
    if (b === 0xe0) lo = 0xa0;
    if (b === 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    left = 3;
    if (b === 0xf0) lo = 0x90;
    if (b === 0xf4) hi = 0x8f;
  } else return false;
  s.mode = M.StrUtf8;
  s.left = left;
  s.lo = lo;
  s.hi = hi;
  return true;
}

function numberByte(s: JsonState, b: number): boolean {
  const n = s.num;
  let next = -1;
  if (isDigit(b)) {
    if (n === N.Minus) next = b === 0x30 ? N.Zero : N.Int;
    else if (n === N.Int) next = N.Int;
    else if (n === N.Dot || n === N.Frac) next = N.Frac;
    else if (n === N.Exp || n === N.ExpSign || n === N.ExpDigits) next = N.ExpDigits;
  } else if (b === 0x2e) {
    if (n === N.Zero || n === N.Int) next = N.Dot;
  } else if (b === 0x65 || b === 0x45) {
    if (n === N.Zero || n === N.Int || n === N.Frac) next = N.Exp;
  } else if (b === 0x2b || b === 0x2d) {
    if (n === N.Exp) next = N.ExpSign;
  }
  if (next !== -1) {
    s.num = next;
    return ++s.numLen <= JSON_NUMBER_LIMIT;
  }
  // Not part of the number: it ends here if it can, and the byte is read after it.
  if (!numComplete(n)) return false;
  s.mode = M.After;
  return jsonStep(s, b);
}

/** Inside a string, between characters: text that is string-safe leaves the state as it is. */
export function jsonInString(s: JsonState): boolean {
  return s.mode === M.Str;
}

/**
 * Whether bytes (a binary string) are whole characters that may stand inside
 * a JSON string as they are: no quote, backslash or control byte, complete UTF-8.
 */
export function isStringSafe(bytes: string): boolean {
  const s = jsonStart();
  s.mode = M.Str;
  for (let i = 0; i < bytes.length; i++) if (!jsonStep(s, bytes.charCodeAt(i)) || s.mode === M.After) return false;
  return bytes.length > 0 && s.mode === M.Str;
}

export function copyJsonState(s: JsonState): JsonState {
  return { ...s };
}

/**
 * Fewest bytes that complete the object from here (every byte is a token of
 * its own in byte-level BPE, so it bounds the tokens needed as well): the
 * constraint allows a token only when what is left of max_tokens still
 * covers this afterwards, so generation cannot end cut off by the budget.
 */
export function minCloseBytes(s: JsonState): number {
  const closers = s.stack.length;
  const str = (extra: number) => extra + 1 + (s.key ? 2 : 0) + closers; // `"` (+ `:0` after a key)
  switch (s.mode) {
    case M.Top:
      return 2;
    case M.KeyOrEnd:
    case M.ValueOrEnd:
    case M.After:
      return closers;
    case M.Key:
      return 4 + closers; // "":0
    case M.Colon:
      return 2 + closers;
    case M.Value:
      return 1 + closers;
    case M.Str:
      return str(0);
    case M.StrEscape:
      return str(1);
    case M.StrHex:
    case M.StrUtf8:
      return str(s.left);
    case M.Num:
      return (numComplete(s.num) ? 0 : 1) + closers;
    case M.Lit:
      return s.left + closers;
    default: // Done
      return 0;
  }
}
