/**
 * A tool call written under the tools' JSON Schemas, in DSML (spec §C.3):
 *
 *   \n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name="NAME">\n
 *   <｜DSML｜parameter name="K" string="true|false">VALUE</｜DSML｜parameter>\n …
 *   </｜DSML｜invoke>\n</｜DSML｜tool_calls><EOS>
 *
 * Markup with one possible continuation is forced as the tokenizer's own
 * tokens; where there is a choice (which tool, which parameter next, or the
 * end of the invoke) the model picks among the continuations the schema
 * allows. A property whose values are all strings is written raw
 * (`string="true"`, no `<` inside: a raw value ends at `<`), any other as JSON
 * under its schema (schema-match.ts). Required properties must come before
 * the invoke may close; only declared properties are written (extra names
 * would be legal under additionalProperties but no model needs them).
 * One call per turn. Every choice is budget-checked, so a max_tokens that
 * allows the shortest call (`minTokens`) always ends with a complete call.
 *
 * Modes: `forced` ("required" / a named function / Anthropic any|tool): the
 * answer starts with the call at once; in thinking mode the reasoning gets at
 * most half of what max_tokens leaves after the shortest call, an EOS in the
 * reasoning becomes `</think>`, and `</think>` is forced when the share is
 * spent. Not forced (`auto` with strict tools): the model writes freely and
 * may end; when it starts DSML markup the call continues under the schema.
 */
import { DSML } from "../../text/special-tokens.js";
import type { Tokenizer } from "../../text/tokenizer.js";
import type { DecodeView, TokenConstraint } from "./constraint.js";
import { reasoningShare } from "./json-schema.js";
import { binaryUtf8, deref, isStringOnly, SchemaError, type SchemaNode } from "./schema-compile.js";
import { minBytes } from "./schema-match.js";
import { TokenJson } from "./token-json.js";
import { tokenTables, type TokenTables } from "./token-tables.js";
import { TextGuard, tokenBinary } from "./token-text.js";

export interface ToolGrammar {
  name: string;
  /** The compiled `parameters` schema. */
  schema: SchemaNode;
}

interface Param {
  name: string;
  raw: boolean;
  node: SchemaNode;
  /** `<｜DSML｜parameter name="K" string="…">` as binary UTF-8. */
  head: string;
  /** Fewest value bytes. */
  minValue: number;
}

interface Tool {
  name: string;
  params: Param[];
  required: string[];
}

const OPEN = `\n\n<${DSML}tool_calls>\n<${DSML}invoke name="`;
const PARAM_CLOSE = `</${DSML}parameter>`;
const CALL_CLOSE = `\n</${DSML}invoke>\n</${DSML}tool_calls>`;
const CLOSE_BYTES = binaryUtf8(PARAM_CLOSE);
const CALL_CLOSE_BYTES = binaryUtf8(CALL_CLOSE);
const DSML_BYTES = binaryUtf8(DSML);
/** The part of OPEN that content may already end with when the model starts the block itself (ASCII). */
const PLAIN_HEAD = "\n\n<";

interface Choice {
  text: string;
  /** Tokens needed after `text`, to the end of the call (EOS included). */
  after: number;
  then: () => void;
}

type Stage =
  | { k: "free" }
  | { k: "forced"; queue: number[]; then: () => void }
  /** `next`: the bytes that may come next (a first-byte filter). */
  | { k: "choice"; alts: Choice[]; m: string; next: Set<number> }
  | { k: "json"; value: TokenJson; param: Param; tail: number }
  /** `free`: the value is a plain string (no enum), so only its length matters and `m` is not kept. */
  | { k: "raw"; param: Param; count: number; m: string; free: boolean; tail: number; leftNow: number }
  | { k: "eos" }
  | { k: "done" };

function toolsOf(grammars: readonly ToolGrammar[]): Tool[] {
  return grammars.map(({ name, schema }) => {
    const root = deref(schema);
    const params: Param[] = [];
    let required: string[] = [];
    if (root.kind === "object") {
      required = root.required;
      for (const [k, node] of root.props) {
        if (/["<\n]/.test(k)) {
          if (required.includes(k)) throw new SchemaError(`properties.${k}`, "properties", `parameter name ${JSON.stringify(k)} cannot be written in DSML (no ", < or line break)`);
          continue;
        }
        const raw = isStringOnly(node) && !hasAngle(node);
        params.push({ name: k, raw, node, head: binaryUtf8(`<${DSML}parameter name="${k}" string="${raw}">`), minValue: raw ? rawMin(node) : minBytes(node) });
      }
    }
    return { name, params, required };
  });
}

function hasAngle(n: SchemaNode): boolean {
  const x = deref(n);
  if (x.kind === "literal") return x.values.some((v) => typeof v === "string" && v.includes("<"));
  if (x.kind === "anyOf") return x.options.some(hasAngle);
  return false;
}

/** Raw value alternatives: a free string (min/max) or the fixed strings of enums/consts. */
interface RawForm {
  min: number;
  max: number;
  texts: string[] | null;
}

function rawForms(n: SchemaNode, out: RawForm[] = []): RawForm[] {
  const x = deref(n);
  if (x.kind === "string") out.push({ min: x.min, max: x.max, texts: null });
  else if (x.kind === "literal") out.push({ min: 0, max: Infinity, texts: x.values.map((v) => binaryUtf8(v as string)) });
  else if (x.kind === "anyOf") x.options.forEach((o) => rawForms(o, out));
  return out;
}

function rawMin(n: SchemaNode): number {
  return Math.min(...rawForms(n).map((f) => (f.texts ? Math.min(...f.texts.map((t) => t.length)) : f.min)));
}

export class ToolCallConstraint implements TokenConstraint {
  private stage: Stage;
  private readonly tools: Tool[];
  private readonly tables: TokenTables;
  private readonly guard: TextGuard;
  private readonly tokenCount = new Map<string, number>();
  private tool: Tool | null = null;
  private seen: string[] = [];
  private contentTail = "";
  private reasoningUsed = 0;
  private share = -1;
  private readonly rawForms = new Map<Param, RawForm[]>();
  private closeMax = -1;

  constructor(private readonly tok: Tokenizer, grammars: readonly ToolGrammar[], only: string | null, private readonly isForced: boolean) {
    const all = toolsOf(grammars);
    this.tools = only === null ? all : all.filter((t) => t.name === only);
    this.tables = tokenTables(tok);
    this.guard = new TextGuard(tok, [DSML]);
    this.stage = { k: "free" };
  }

  readonly complete = false;

  /** Tokens the shortest call needs from the start of the answer (`</think>` not included). */
  minTokens(): number {
    return this.tokens(OPEN) + this.nameCost();
  }

  forced(view: DecodeView): number | undefined {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (this.stage.k === "free" && this.isForced) {
      if (view.phase === "reasoning") {
        if (thinkEnd === undefined) return undefined;
        if (this.share < 0) this.share = reasoningShare(view.remaining + this.reasoningUsed, this.minTokens());
        return this.reasoningUsed >= this.share || view.remaining <= 1 + this.minTokens() ? thinkEnd : undefined;
      }
      this.begin("");
    }
    if (this.stage.k === "forced") return this.stage.queue[0];
    if (this.stage.k === "eos") return this.tok.specialIds.eos;
    return undefined;
  }

  allows(token: number, view: DecodeView): boolean {
    const st = this.stage;
    switch (st.k) {
      case "free":
        // A forced call may not start inside the reasoning.
        return !(this.isForced && view.phase === "reasoning" && this.guard.hits(token));
      case "choice":
        return this.choiceAllows(st, token, view.remaining);
      case "json": {
        if (this.guard.hits(token)) return false;
        const tail = st.tail;
        const reachable = st.value.cost + tail <= view.remaining;
        if (st.value.canEnd && this.closes(token)) return this.closeRest(token) + tail - this.closeCost() <= view.remaining - 1 || !reachable;
        const cost = st.value.costAfter(token, Math.max(0, view.remaining - 1 - tail));
        if (cost < 0) return false;
        return cost + tail <= view.remaining - 1 || !reachable;
      }
      case "raw":
        return this.rawAllows(st, token, view.remaining);
      default:
        return false;
    }
  }

  redirect(token: number, view: DecodeView): number {
    const thinkEnd = this.tok.specialIds.thinkEnd;
    if (this.isForced && view.phase === "reasoning" && token === this.tok.specialIds.eos && thinkEnd !== undefined) return thinkEnd;
    if (this.stage.k !== "free" || this.isForced || view.phase === "reasoning") return token;
    if (!this.guard.hits(token)) return token;
    // The model starts a tool block itself: the call goes on under the schema.
    let k = PLAIN_HEAD.length;
    while (k > 0 && !this.contentTail.endsWith(PLAIN_HEAD.slice(0, k))) k--;
    this.begin(PLAIN_HEAD.slice(0, k));
    const st = this.stage as Stage;
    return st.k === "forced" ? st.queue[0]! : token;
  }

  accept(token: number, view: DecodeView): void {
    const st = this.stage;
    if (view.phase === "reasoning" && st.k === "free") {
      this.reasoningUsed++;
      this.guard.push(token);
      return;
    }
    const bytes = tokenBinary(this.tok, token);
    this.guard.push(token);
    switch (st.k) {
      case "free":
        this.contentTail = (this.contentTail + bytes).slice(-PLAIN_HEAD.length);
        return;
      case "forced":
        if (st.queue[0] === token) st.queue.shift();
        if (st.queue.length === 0) st.then();
        return;
      case "choice":
        return this.choiceAccept(st, bytes);
      case "json":
        if (st.value.canEnd && this.closes(token)) return this.closeParam(bytes);
        st.value.accept(token);
        return;
      case "raw":
        if (this.closes(token) && this.rawCanEnd(st)) return this.closeParam(bytes);
        if (!st.free) st.m += bytes;
        st.count += this.tables.chars[token]!;
        st.leftNow = -1;
        return;
      case "eos":
        this.stage = { k: "done" };
        return;
      default:
        return;
    }
  }

  // ---- stages ---------------------------------------------------------------

  private begin(written: string): void {
    this.force(OPEN.slice(written.length), () => this.chooseTool());
  }

  private force(text: string, then: () => void): void {
    const queue = text === "" ? [] : this.tok.encode(text);
    if (queue.length === 0) then();
    else this.stage = { k: "forced", queue, then };
  }

  private chooseTool(): void {
    this.choose(
      this.tools.map((t) => ({
        text: binaryUtf8(`${t.name}">\n`),
        after: this.membersCost(t, [], true),
        then: () => {
          this.tool = t;
          this.seen = [];
          this.chooseMember(true);
        },
      })),
    );
  }

  /** Next parameter or the end of the invoke; `first`: right after the invoke head. */
  private chooseMember(first: boolean): void {
    const t = this.tool!;
    const nl = first ? "" : "\n";
    const alts: Choice[] = [];
    for (const p of t.params) {
      if (this.seen.includes(p.name)) continue;
      alts.push({ text: nl + p.head, after: this.valueAndRest(t, p), then: () => this.startValue(p) });
    }
    if (t.required.every((r) => this.seen.includes(r))) alts.push({ text: CALL_CLOSE_BYTES, after: 1, then: () => (this.stage = { k: "eos" }) });
    this.choose(alts);
  }

  private startValue(p: Param): void {
    this.seen.push(p.name);
    const tail = this.afterValue();
    const free = p.raw && this.forms(p).every((f) => f.texts === null);
    this.stage = p.raw ? { k: "raw", param: p, count: 0, m: "", free, tail, leftNow: -1 } : { k: "json", value: new TokenJson(this.tok, p.node), param: p, tail };
  }

  private closeParam(written: string): void {
    this.force(binaryToText(CLOSE_BYTES.slice(written.length)), () => this.chooseMember(false));
  }

  /** Whether a token starts the parameter's closing tag (a raw or JSON value ends at `<`). */
  private closes(token: number): boolean {
    if (this.tables.first[token] !== 0x3c) return false;
    const bytes = tokenBinary(this.tok, token);
    return bytes.length <= 2 && CLOSE_BYTES.startsWith(bytes);
  }

  // ---- choices ----------------------------------------------------------------

  private choose(alts: Choice[]): void {
    this.stage = choiceStage(alts, "");
    this.settleChoice();
  }

  /** Takes a finished alternative, or forces the part all remaining ones share. */
  private settleChoice(): void {
    const st = this.stage as Stage & { k: "choice" };
    const live = st.alts.filter((a) => a.text.startsWith(st.m));
    if (live.length === 0) return void (this.stage = { k: "done" });
    const done = live.find((a) => a.text === st.m);
    if (done) return done.then();
    let lcp = live[0]!.text.slice(st.m.length);
    for (const a of live) {
      const rest = a.text.slice(st.m.length);
      let i = 0;
      while (i < lcp.length && i < rest.length && lcp[i] === rest[i]) i++;
      lcp = lcp.slice(0, i);
    }
    while (lcp.length > 0 && isContinuation(live[0]!.text.charCodeAt(st.m.length + lcp.length))) lcp = lcp.slice(0, -1);
    if (lcp.length === 0) return;
    const m = st.m + lcp;
    this.force(binaryToText(lcp), () => {
      this.stage = choiceStage(live, m);
      this.settleChoice();
    });
  }

  private choiceAllows(st: Stage & { k: "choice" }, token: number, remaining: number): boolean {
    const first = this.tables.first[token]!;
    if (first < 0 || !st.next.has(first)) return false;
    const bytes = tokenBinary(this.tok, token);
    if (this.tables.special[token] === 1 && bytes !== DSML_BYTES) return false;
    const m = st.m + bytes;
    for (const a of st.alts) {
      if (!a.text.startsWith(m)) continue;
      if (m.length < a.text.length && isContinuation(a.text.charCodeAt(m.length))) continue;
      if (this.tokens(binaryToText(a.text.slice(m.length))) + a.after <= remaining - 1) return true;
    }
    return false;
  }

  private choiceAccept(st: Stage & { k: "choice" }, bytes: string): void {
    this.stage = choiceStage(st.alts, st.m + bytes);
    this.settleChoice();
  }

  // ---- raw string values -------------------------------------------------------

  private forms(p: Param): RawForm[] {
    let f = this.rawForms.get(p);
    if (!f) {
      f = rawForms(p.node);
      this.rawForms.set(p, f);
    }
    return f;
  }

  private rawCanEnd(st: Stage & { k: "raw" }): boolean {
    return this.forms(st.param).some((f) => (f.texts ? f.texts.includes(st.m) : st.count >= f.min && st.count <= f.max));
  }

  /** Fewest value bytes still needed in a raw value, over the forms `m` fits. */
  private rawLeft(m: string, count: number, p: Param): number {
    let best = Infinity;
    for (const f of this.forms(p)) {
      if (f.texts) {
        for (const t of f.texts) if (t.startsWith(m)) best = Math.min(best, t.length - m.length);
      } else if (count <= f.max) best = Math.min(best, Math.max(0, f.min - count));
    }
    return best;
  }

  private rawAllows(st: Stage & { k: "raw" }, token: number, remaining: number): boolean {
    const tail = st.tail;
    if (st.leftNow < 0) st.leftNow = this.rawLeft(st.m, st.count, st.param);
    const reachable = st.leftNow + tail <= remaining;
    if (this.closes(token)) return this.rawCanEnd(st) && (this.closeRest(token) + tail - this.closeCost() <= remaining - 1 || !reachable);
    if (this.tables.rawSafe[token] !== 1 || this.guard.hits(token)) return false;
    const count = st.count + this.tables.chars[token]!;
    const left = this.rawLeft(st.free ? "" : st.m + tokenBinary(this.tok, token), count, st.param);
    if (left === Infinity) return false;
    return left + tail <= remaining - 1 || !reachable;
  }

  // ---- costs (tokens; bytes stand for tokens where the model chooses) -----------

  private tokens(text: string): number {
    let n = this.tokenCount.get(text);
    if (n === undefined) {
      n = this.tok.encode(text).length;
      this.tokenCount.set(text, n);
    }
    return n;
  }

  private nameCost(): number {
    let best = Infinity;
    for (const t of this.tools) best = Math.min(best, this.tokens(`${t.name}">\n`) + this.membersCost(t, [], true));
    return best;
  }

  /** The remaining required parameters of `t` and the close, from a member boundary. */
  private membersCost(t: Tool, seen: readonly string[], first: boolean): number {
    let sum = 0;
    let n = 0;
    for (const p of t.params) {
      if (seen.includes(p.name) || !t.required.includes(p.name)) continue;
      sum += this.tokens((first && n === 0 ? "" : "\n") + binaryToText(p.head)) + p.minValue + this.closeCost();
      n++;
    }
    return sum + this.tokens(CALL_CLOSE) + 1;
  }

  /** Tokens after parameter `p`'s head: its value, its close and the rest of the call. */
  private valueAndRest(t: Tool, p: Param): number {
    return p.minValue + this.closeCost() + this.membersCost(t, [...this.seen, p.name], false);
  }

  /** Tokens after the current value: its close and the rest of the call (the parameter counted as seen). */
  private afterValue(): number {
    return this.closeCost() + this.membersCost(this.tool!, this.seen, false);
  }

  /** Tokens the forced rest of the parameter close takes after `token` (its first part). */
  private closeRest(token: number): number {
    const written = tokenBinary(this.tok, token);
    return this.tokens(binaryToText(CLOSE_BYTES.slice(written.length)));
  }

  /** Tokens a parameter close takes at most, whichever of its prefixes the model writes first. */
  private closeCost(): number {
    if (this.closeMax < 0) {
      const c = CLOSE_BYTES;
      this.closeMax = Math.max(this.tokens(PARAM_CLOSE), 1 + this.tokens(binaryToText(c.slice(1))), 2 + this.tokens(binaryToText(c.slice(2))));
    }
    return this.closeMax;
  }
}

function choiceStage(alts: Choice[], m: string): Stage & { k: "choice" } {
  const live = alts.filter((a) => a.text.startsWith(m));
  return { k: "choice", alts: live, m, next: new Set(live.filter((a) => a.text.length > m.length).map((a) => a.text.charCodeAt(m.length))) };
}

function isContinuation(b: number): boolean {
  return b >= 0x80 && b <= 0xbf;
}

function binaryToText(s: string): string {
  return new TextDecoder().decode(Uint8Array.from(s, (c) => c.charCodeAt(0)));
}
