/**
 * JSON that reads and writes the way the reference encoder's Python does
 * (`json.loads` / `json.dumps(..., ensure_ascii=False)`), because tool schemas,
 * non-string DSML parameters and response formats are copied into the prompt
 * byte for byte and the model was trained on Python's spelling:
 * - separators `", "` and `": "`, keys in insertion order, non-ASCII literal;
 * - floats keep their float-ness (`1.0` stays `1.0`, `1e5` becomes `100000.0`),
 *   integers keep every digit (no 2^53 rounding);
 * - integer-like keys keep their position (a plain JS object would hoist them).
 *
 * `parsePyJson` returns ordinary JS values wherever they print the same, so the
 * rest of the code can read `msg.role` as usual; only the values plain JS cannot
 * hold faithfully are wrapped (`PyFloat`, `PyInt`) or annotated (`KEY_ORDER`).
 */

/** A float whose Python spelling a JS number would lose (integral value, inf, nan). */
export class PyFloat {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
}

/** An integer beyond 2^53, kept exact. */
export class PyInt {
  constructor(readonly value: bigint) {}
  toJSON(): number {
    return Number(this.value);
  }
}

/** Key order of a parsed object, set only where JS property order would differ. */
export const KEY_ORDER: unique symbol = Symbol("pyjson.keyOrder");

export class PyJsonError extends Error {
  constructor(message: string, readonly position: number) {
    super(message);
    this.name = "PyJsonError";
  }
}

function objectKeys(obj: object): string[] {
  const order = (obj as { [KEY_ORDER]?: string[] })[KEY_ORDER];
  return order ?? Object.keys(obj);
}

/** Python's float repr: shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expStr] = Math.abs(x).toExponential().split("e");
  const digits = mant!.replace(".", "");
  const exp = Number(expStr);
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
    const intLen = exp + 1;
    if (digits.length <= intLen) return `${sign}${digits}${"0".repeat(intLen - digits.length)}.0`;
    return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
  }
  const frac = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expAbs = Math.abs(exp).toString().padStart(2, "0");
  return `${sign}${frac}e${exp < 0 ? "-" : "+"}${expAbs}`;
}

/** A JSON string literal as Python writes it with ensure_ascii=False. */
export function pyJsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += "\\\\"; break;
      case 0x0a: out += "\\n"; break;
      case 0x0d: out += "\\r"; break;
      case 0x09: out += "\\t"; break;
      case 0x08: out += "\\b"; break;
      case 0x0c: out += "\\f"; break;
      default: out += "\\u" + c.toString(16).padStart(4, "0");
    }
  }
  return out + s.slice(start) + '"';
}

/** `json.dumps(value, ensure_ascii=False)` for parsed or plain JS values. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return pyJsonString(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    // A plain JS number cannot say whether it was written as a float; integral
    // values print as Python ints, which is what a JSON.parse'd `1` was.
    if (Number.isInteger(value)) return Object.is(value, -0) ? "0" : BigInt(value).toString();
    return pyFloatRepr(value);
  }
  if (typeof value === "bigint") return value.toString();
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (value instanceof PyInt) return value.value.toString();
  if (Array.isArray(value)) return "[" + value.map(pyJsonDumps).join(", ") + "]";
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of objectKeys(obj)) {
      // Python drops nothing, but JS `undefined` has no JSON form; skipping it
      // matches what a request that never had the key would render.
      if (obj[key] === undefined) continue;
      parts.push(pyJsonString(key) + ": " + pyJsonDumps(obj[key]));
    }
    return "{" + parts.join(", ") + "}";
  }
  throw new TypeError(`value of type ${typeof value} is not JSON serialisable`);
}

const ARRAY_INDEX = /^(0|[1-9]\d{0,9})$/;

class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(what: string): never {
    throw new PyJsonError(`${what} at position ${this.pos}`, this.pos);
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  value(): unknown {
    this.ws();
    const t = this.text;
    const c = t[this.pos];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    for (const [word, v] of WORDS) {
      if (t.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    return this.fail(c === undefined ? "unexpected end of JSON" : `unexpected character ${JSON.stringify(c)}`);
  }

  object(): Record<string, unknown> {
    this.pos++;
    const obj: Record<string, unknown> = {};
    const keys: string[] = [];
    let hoisted = false;
    this.ws();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return obj;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') this.fail("expected a string key");
      const key = this.string();
      this.ws();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      const v = this.value();
      // Python keeps a repeated key at its first position with the last value.
      if (!Object.prototype.hasOwnProperty.call(obj, key)) {
        keys.push(key);
        if (ARRAY_INDEX.test(key)) hoisted = true;
      }
      Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true });
      this.ws();
      const sep = this.text[this.pos++];
      if (sep === "}") break;
      if (sep !== ",") {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
    if (hoisted) Object.defineProperty(obj, KEY_ORDER, { value: keys, enumerable: false });
    return obj;
  }

  array(): unknown[] {
    this.pos++;
    const out: unknown[] = [];
    this.ws();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const sep = this.text[this.pos++];
      if (sep === "]") return out;
      if (sep !== ",") {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  string(): string {
    const t = this.text;
    this.pos++;
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(start, this.pos++);
        return out;
      }
      if (c < 0x20) this.fail("invalid control character in string");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const e = t[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"': out += '"'; break;
        case "\\": out += "\\"; break;
        case "/": out += "/"; break;
        case "b": out += "\b"; break;
        case "f": out += "\f"; break;
        case "n": out += "\n"; break;
        case "r": out += "\r"; break;
        case "t": out += "\t"; break;
        case "u": {
          const hex = t.slice(this.pos, this.pos + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 4;
          break;
        }
        default:
          this.pos -= 2;
          this.fail("invalid escape");
      }
      start = this.pos;
    }
  }

  number(): unknown {
    const m = NUMBER.exec(this.text.slice(this.pos, this.pos + 1100));
    if (!m) return this.fail("invalid number");
    const lexeme = m[0];
    this.pos += lexeme.length;
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(lexeme);
      return Number.isSafeInteger(n) ? (n === 0 ? 0 : n) : new PyInt(BigInt(lexeme));
    }
    const f = Number(lexeme);
    return Number.isInteger(f) || !Number.isFinite(f) ? new PyFloat(f) : f;
  }
}

const NUMBER = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/;
const WORDS: Array<[string, unknown]> = [
  ["true", true],
  ["false", false],
  ["null", null],
  ["NaN", new PyFloat(NaN)],
  ["Infinity", new PyFloat(Infinity)],
  ["-Infinity", new PyFloat(-Infinity)],
];

/** `json.loads(text)`: throws PyJsonError on anything Python would reject. */
export function parsePyJson(text: string): unknown {
  const r = new Reader(text);
  const v = r.value();
  r.ws();
  if (r.pos !== text.length) r.fail("extra data");
  return v;
}

/** Keys of an object in the order Python would iterate them. */
export function pyKeys(obj: object): string[] {
  return objectKeys(obj);
}
