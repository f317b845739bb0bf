/**
 * Per-token facts the schema constraints consult on every candidate token,
 * computed once per tokenizer (a pass over the 129k vocabulary) so that the
 * per-token mask is a table lookup in the common cases:
 *
 * - `jsonSafe`: the bytes are whole characters that may stand inside a JSON
 *   string as they are (no quote, backslash or control byte);
 * - `rawSafe`: whole characters with no `<` (a raw DSML string value ends at `<`)
 *   and not a special token;
 * - `chars`: the number of characters (UTF-8 lead bytes) in the token;
 * - `first`: the first byte (-1 for an empty token);
 * - `special`: a special token;
 * - `len`: the token's byte length.
 */
import type { Tokenizer } from "../../text/tokenizer.js";
import { isStringSafe } from "./json.js";
import { tokenBinary } from "./token-text.js";

export interface TokenTables {
  jsonSafe: Uint8Array;
  rawSafe: Uint8Array;
  chars: Uint16Array;
  first: Int16Array;
  special: Uint8Array;
  len: Uint16Array;
}

const cache = new WeakMap<Tokenizer, TokenTables>();

function completeUtf8(bytes: string): boolean {
  let left = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.charCodeAt(i);
    if (left > 0) {
      if (b < 0x80 || b > 0xbf) return false;
      left--;
    } else if (b < 0x80) continue;
    else if (b >= 0xc2 && b <= 0xdf) left = 1;
    else if (b >= 0xe0 && b <= 0xef) left = 2;
    else if (b >= 0xf0 && b <= 0xf4) left = 3;
    else return false;
  }
  return left === 0;
}

export function tokenTables(tok: Tokenizer): TokenTables {
  let t = cache.get(tok);
  if (t) return t;
  const n = tok.vocabSize;
  t = { jsonSafe: new Uint8Array(n), rawSafe: new Uint8Array(n), chars: new Uint16Array(n), first: new Int16Array(n), special: new Uint8Array(n), len: new Uint16Array(n) };
  for (let id = 0; id < n; id++) {
    const bytes = tokenBinary(tok, id);
    const special = tok.isSpecial(id);
    t.first[id] = bytes.length > 0 ? bytes.charCodeAt(0) : -1;
    t.special[id] = special ? 1 : 0;
    t.len[id] = Math.min(bytes.length, 65535);
    let chars = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes.charCodeAt(i);
      if (b < 0x80 || b >= 0xc0) chars++;
    }
    t.chars[id] = Math.min(chars, 65535);
    if (special || bytes.length === 0) continue;
    t.jsonSafe[id] = isStringSafe(bytes) ? 1 : 0;
    t.rawSafe[id] = completeUtf8(bytes) && !bytes.includes("<") && !bytes.includes("\u0000") ? 1 : 0;
  }
  cache.set(tok, t);
  return t;
}
