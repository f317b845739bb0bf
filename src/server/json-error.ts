/**
 * Where JSON text stops being valid, for error messages that point at a line
 * and column (Node 20's JSON.parse messages often carry no position). A
 * validating scan only: JSON.parse still does the parsing.
 */

const WS = new Set([" ", "\t", "\n", "\r"]);

class Scan {
  i = 0;
  constructor(readonly s: string) {}

  ws(): void {
    while (this.i < this.s.length && WS.has(this.s[this.i]!)) this.i++;
  }

  fail(): never {
    throw this.i;
  }

  value(depth: number): void {
    if (depth > 1000) this.fail(); // far below the stack limit; the report only needs a position
    this.ws();
    const c = this.s[this.i];
    if (c === "{") return this.object(depth);
    if (c === "[") return this.array(depth);
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    for (const word of ["true", "false", "null"]) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return;
      }
    }
    this.fail();
  }

  object(depth: number): void {
    this.i++;
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail();
      this.string();
      this.ws();
      if (this.s[this.i] !== ":") this.fail();
      this.i++;
      this.value(depth + 1);
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === "}") return;
      if (c !== ",") {
        this.i--;
        this.fail();
      }
    }
  }

  array(depth: number): void {
    this.i++;
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return;
    }
    for (;;) {
      this.value(depth + 1);
      this.ws();
      const c = this.s[this.i];
      this.i++;
      if (c === "]") return;
      if (c !== ",") {
        this.i--;
        this.fail();
      }
    }
  }

  string(): void {
    this.i++;
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined || c < " ") this.fail();
      this.i++;
      if (c === '"') return;
      if (c === "\\") {
        const e = this.s[this.i];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(this.s.slice(this.i + 1, this.i + 5))) this.fail();
          this.i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) this.i++;
        else this.fail();
      }
    }
  }

  number(): void {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m) this.fail();
    this.i += m[0].length;
  }
}

/** Offset of the first invalid character (the text's length when it ends too early), or -1 when valid. */
export function jsonErrorOffset(text: string): number {
  const scan = new Scan(text);
  try {
    scan.value(0);
    scan.ws();
    return scan.i === text.length ? -1 : scan.i;
  } catch (at) {
    return typeof at === "number" ? at : -1;
  }
}

/** "line L column C" (1-based, serde style) of an offset. */
export function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return `line ${line} column ${offset - before.lastIndexOf("\n")}`;
}

/**
 * The deepest nesting of arrays and objects in JSON text (strings skipped),
 * found without recursion: bodies nested absurdly deep are refused before
 * anything walks them recursively.
 */
export function nestingDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
