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
 * Turns token bytes into text as they arrive, holding back an incomplete UTF-8
 * sequence until its last byte comes, so no partial character (U+FFFD) is ever
 * emitted for a character that was merely split across tokens.
 */
export class Utf8StreamDecoder {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

  push(bytes: Uint8Array): string {
    return this.decoder.decode(bytes, { stream: true });
  }

  /** Whatever is still buffered; a dangling partial character becomes U+FFFD here. */
  flush(): string {
    return this.decoder.decode();
  }
}
