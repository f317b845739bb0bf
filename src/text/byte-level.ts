/**
 * GPT-2 style byte-level alphabet: every byte maps to one printable character,
 * so BPE vocabularies can be stored as JSON strings. Decoding a token means
 * mapping its characters back to bytes; the bytes of one character can be
 * spread over several tokens, which is why streaming needs a UTF-8 buffer.
 */

function buildByteToChar(): string[] {
  const direct: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  const table = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(direct.includes(b) ? b : 256 + shifted++);
  }
  return table;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

const CHAR_TO_BYTE = new Map<number, number>(BYTE_TO_CHAR.map((ch, b) => [ch.charCodeAt(0), b]));

/**
 * Bytes of a byte-level token string, or null when a character is outside the
 * alphabet (such a token cannot come out of byte-level BPE).
 */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token.charCodeAt(i));
    if (b === undefined) return null;
    out[i] = b;
  }
  return out;
}

/** The byte-level spelling of a UTF-8 string. */
export function textToByteLevel(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!];
  return out;
}

/**
 * Turns token bytes into text as they arrive. An incomplete UTF-8 sequence is held back
 * until its last byte comes, so a character split across tokens is never emitted as
 * U+FFFD (spec §D.4). Bytes that can never form a character (a model can sample any
 * byte token) are dropped rather than turned into U+FFFD; a real U+FFFD the model
 * spells out in valid bytes passes through.
 */
export class Utf8StreamDecoder {
  private pending: number[] = [];

  push(bytes: Uint8Array): string {
    let out = "";
    for (const b of bytes) out += this.pushByte(b);
    return out;
  }

  /** Drops a dangling partial character at the end of the stream. */
  flush(): string {
    this.pending = [];
    return "";
  }

  private pushByte(b: number): string {
    const p = this.pending;
    if (p.length === 0) {
      if (b < 0x80) return String.fromCharCode(b);
      if (sequenceLength(b) > 0) p.push(b);
      return ""; // a stray continuation or an invalid lead byte
    }
    if ((b & 0xc0) !== 0x80 || !continues(p, b)) {
      // The held sequence can never complete; drop it and start over with this byte.
      this.pending = [];
      return this.pushByte(b);
    }
    p.push(b);
    if (p.length < sequenceLength(p[0]!)) return "";
    this.pending = [];
    return Buffer.from(p).toString("utf8");
  }
}

/** Total bytes of a sequence from its lead byte; 0 for bytes that cannot lead (incl. C0, C1, F5..FF). */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Whether continuation byte `b` is allowed next (no overlongs, surrogates or code points past U+10FFFF). */
function continues(held: number[], b: number): boolean {
  if (held.length !== 1) return true;
  const lead = held[0]!;
  if (lead === 0xe0) return b >= 0xa0;
  if (lead === 0xed) return b <= 0x9f;
  if (lead === 0xf0) return b >= 0x90;
  if (lead === 0xf4) return b <= 0x8f;
  return true;
}
