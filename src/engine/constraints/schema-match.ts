/**
 * A byte-level pushdown matcher for JSON text under a compiled schema
 * (schema-compile.ts): it accepts exactly the byte strings that are prefixes
 * of a JSON value the schema admits (within the whitespace, number-length and
 * key-length limits below). `anyOf` runs its branches side by side, so a state
 * is a list of alternatives, each a stack of frames. States are treated as
 * immutable: stepping copies the frames it changes, so a trial token costs a
 * few small objects and the state it started from stays valid.
 *
 * `minFinish` is the exact number of bytes the shortest completion needs; the
 * constraints keep it within max_tokens (each byte is a token of its own in
 * byte-level BPE), so a budget that allows the value at all always ends it.
 */
import { deref, type SchemaNode } from "./schema-compile.js";

/**
 * Whitespace bytes allowed in a run between JSON tokens (none before the
 * value): one space or line break, enough for `{"a": 1, "b": 2}`; longer runs
 * only cost tokens (a sampled model pads when it may).
 */
export const SCHEMA_WS_LIMIT = 1;
/** Longest number literal, in bytes (exponents are not written): keeps integers safe (< 2^53) for JSON.parse. */
export const SCHEMA_NUMBER_LIMIT = 15;
/** Longest free (additionalProperties) key, in bytes. */
export const SCHEMA_KEY_LIMIT = 64;

type ObjNode = SchemaNode & { kind: "object" };
type ArrNode = SchemaNode & { kind: "array" };

const enum P {
  KeyOrEnd,
  Key,
  Colon,
  Value,
  After,
  InKey,
}

type Frame =
  | { t: "root"; node: SchemaNode; done: boolean }
  | { t: "obj"; node: ObjNode; seen: string[]; phase: P; key: string }
  | { t: "arr"; node: ArrNode; count: number; phase: P }
  /** sub: 0 plain, 1 after `\`, 2 in \uXXXX, 3 in a UTF-8 character; `left` bytes to go; next byte in [lo, hi]. */
  | { t: "str"; min: number; max: number; count: number; sub: number; left: number; lo: number; hi: number }
  /** An object key: `m` the bytes after the opening quote; `cands` the declared names still allowed, JSON-escaped. */
  | { t: "key"; m: string; cands: string[]; free: boolean }
  | { t: "num"; integer: boolean; n: number; len: number }
  | { t: "lit"; texts: string[]; m: string };

export interface Alt {
  stack: readonly Frame[];
  ws: number;
}

export type MatchState = readonly Alt[];

export function matchStart(node: SchemaNode): MatchState {
  return [{ stack: [{ t: "root", node, done: false }], ws: 0 }];
}

// ---- minimal byte counts -------------------------------------------------

const minCache = new WeakMap<SchemaNode, number>();

const quotedLens = new Map<string, number>();
function quotedLen(name: string): number {
  let n = quotedLens.get(name);
  if (n === undefined) {
    n = new TextEncoder().encode(JSON.stringify(name)).length;
    if (quotedLens.size < 10000) quotedLens.set(name, n);
  }
  return n;
}

/** Fewest bytes of a value the node admits (Infinity for none); a fixpoint over the reachable nodes, for recursion. */
export function minBytes(node: SchemaNode): number {
  const cached = minCache.get(node);
  if (cached !== undefined) return cached;
  const nodes: SchemaNode[] = [];
  const seen = new Set<SchemaNode>();
  const visit = (n: SchemaNode) => {
    if (seen.has(n) || minCache.has(n)) return;
    seen.add(n);
    nodes.push(n);
    if (n.kind === "object") {
      for (const v of n.props.values()) visit(v);
      if (n.additional) visit(n.additional);
    } else if (n.kind === "array") visit(n.items);
    else if (n.kind === "anyOf") n.options.forEach(visit);
    else if (n.kind === "ref" && n.target) visit(n.target);
  };
  visit(node);
  const est = new Map<SchemaNode, number>(nodes.map((n) => [n, Infinity]));
  const get = (n: SchemaNode) => minCache.get(n) ?? est.get(n) ?? Infinity;
  for (let changed = true, round = 0; changed && round < 1000; round++) {
    changed = false;
    for (const n of nodes) {
      const v = direct(n, get);
      if (v < est.get(n)!) {
        est.set(n, v);
        changed = true;
      }
    }
  }
  for (const [n, v] of est) minCache.set(n, v);
  return minCache.get(node)!;
}

function direct(n: SchemaNode, get: (n: SchemaNode) => number): number {
  switch (n.kind) {
    case "any":
    case "number":
      return 1;
    case "never":
      return Infinity;
    case "boolean":
    case "null":
      return 4;
    case "string":
      return 2 + n.min;
    case "literal":
      return Math.min(...n.texts.map((t) => t.length));
    case "anyOf":
      return Math.min(...n.options.map(get));
    case "ref":
      return n.target ? get(n.target) : 1;
    case "array":
      return 2 + n.min * get(n.items) + Math.max(0, n.min - 1);
    case "object": {
      let sum = 2;
      n.required.forEach((r, i) => (sum += (i > 0 ? 1 : 0) + quotedLen(r) + 1 + get(n.props.get(r)!)));
      return sum;
    }
  }
}

const growthCache = new WeakMap<SchemaNode, number>();

/**
 * An upper bound on how much one byte can raise `minFinish`: a byte opens at
 * most one value or key, whose completion costs at most the largest finite
 * minimum in the schema plus the longest key and its punctuation.
 */
export function costGrowth(root: SchemaNode): number {
  let g = growthCache.get(root);
  if (g !== undefined) return g;
  let most = 1;
  let key = 0;
  let objects = 0;
  const seen = new Set<SchemaNode>();
  const visit = (n: SchemaNode) => {
    if (seen.has(n)) return;
    seen.add(n);
    const m = minBytes(n);
    if (Number.isFinite(m)) most = Math.max(most, m);
    if (n.kind === "object") {
      objects++;
      let required = 0;
      for (const [k, v] of n.props) {
        key = Math.max(key, quotedLen(k));
        visit(v);
      }
      for (const r of n.required) required += quotedLen(r) + 2 + (Number.isFinite(minBytes(n.props.get(r)!)) ? minBytes(n.props.get(r)!) : 0);
      most = Math.max(most, required + 2);
      if (n.additional) visit(n.additional);
    } else if (n.kind === "array") visit(n.items);
    else if (n.kind === "anyOf") n.options.forEach(visit);
    else if (n.kind === "ref" && n.target) visit(n.target);
  };
  visit(root);
  g = 2 * most + key + SCHEMA_KEY_LIMIT + 8 + objects;
  growthCache.set(root, g);
  return g;
}

/** Bytes of `,"r":V` for every required property not yet seen. */
function requiredLeft(node: ObjNode, seen: readonly string[]): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const r of node.required) {
    if (seen.includes(r)) continue;
    sum += 1 + quotedLen(r) + 1 + minBytes(node.props.get(r)!);
    count++;
  }
  return { sum, count };
}

/** Cheapest optional member still allowed: `"k":V` bytes. */
function cheapestMember(node: ObjNode, seen: readonly string[]): number {
  let best = Infinity;
  for (const [k, v] of node.props) if (!seen.includes(k)) best = Math.min(best, quotedLen(k) + 1 + minBytes(v));
  if (node.additional) best = Math.min(best, 3 + minBytes(node.additional));
  return best;
}

function objCost(f: Frame & { t: "obj" }): number {
  const req = requiredLeft(f.node, f.seen);
  switch (f.phase) {
    case P.KeyOrEnd:
      return req.count > 0 ? req.sum - 1 + 1 : 1;
    case P.Key:
      return (req.count > 0 ? req.sum - 1 : cheapestMember(f.node, f.seen)) + 1;
    case P.Colon:
      return 1 + minBytes(valueNode(f.node, f.key)) + req.sum + 1;
    case P.Value:
      return minBytes(valueNode(f.node, f.key)) + req.sum + 1;
    case P.After:
      return req.sum + 1;
    case P.InKey:
      return 0; // the key frame on top counts the member and what follows
  }
}

function keyCost(f: Frame & { t: "key" }, obj: Frame & { t: "obj" }): number {
  let best = Infinity;
  const withKey = (k: string, rest: number) => {
    const seen = [...obj.seen, k];
    return rest + 1 + 1 + minBytes(valueNode(obj.node, k)) + requiredLeft(obj.node, seen).sum + 1;
  };
  for (const c of f.cands) if (c.startsWith(f.m)) best = Math.min(best, withKey(unescapeKey(c), c.length - f.m.length));
  if (f.free && obj.node.additional) best = Math.min(best, 1 + 1 + minBytes(obj.node.additional) + requiredLeft(obj.node, obj.seen).sum + 1);
  return best;
}

function arrCost(f: Frame & { t: "arr" }): number {
  const item = minBytes(f.node.items);
  const need = Math.max(0, f.node.min - f.count);
  switch (f.phase) {
    case P.KeyOrEnd: // after `[`
      return need === 0 ? 1 : need * item + (need - 1) + 1;
    case P.Value: {
      const k = Math.max(1, need);
      return k * item + (k - 1) + 1;
    }
    default: // After, or an item on top
      return need * (item + 1) + 1;
  }
}

function strCost(f: Frame & { t: "str" }): number {
  const pending = f.sub === 1 ? 1 : f.sub === 2 || f.sub === 3 ? f.left : 0;
  // `count` already includes a character in progress.
  return Math.max(0, f.min - f.count) + pending + 1;
}

/** Fewest bytes that complete the value from this state (Infinity when none can). */
export function minFinish(state: MatchState): number {
  let best = Infinity;
  for (const alt of state) best = Math.min(best, altCost(alt));
  return best;
}

function altCost(alt: Alt): number {
  let sum = 0;
  const s = alt.stack;
  for (let i = s.length - 1; i >= 0; i--) {
    const f = s[i]!;
    switch (f.t) {
      case "root":
        sum += f.done ? 0 : minBytes(f.node);
        break;
      case "obj":
        sum += objCost(f);
        break;
      case "arr":
        sum += arrCost(f);
        break;
      case "str":
        sum += strCost(f);
        break;
      case "key":
        sum += keyCost(f, s[i - 1] as Frame & { t: "obj" });
        break;
      case "num":
        sum += numComplete(f.n) ? 0 : 1;
        break;
      case "lit": {
        let m = Infinity;
        for (const t of f.texts) if (t.startsWith(f.m)) m = Math.min(m, t.length - f.m.length);
        sum += m;
        break;
      }
    }
  }
  return sum;
}

// ---- stepping -------------------------------------------------------------

const isWs = (b: number) => b === 0x20 || b === 0x0a;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

function valueNode(node: ObjNode, key: string): SchemaNode {
  return node.props.get(key) ?? node.additional ?? { kind: "never" };
}

function unescapeKey(escaped: string): string {
  // `escaped` is the binary UTF-8 of a JSON string body.
  const bytes = Uint8Array.from(escaped, (c) => c.charCodeAt(0));
  return JSON.parse(`"${new TextDecoder().decode(bytes)}"`) as string;
}

function escapeKey(name: string): string {
  const s = JSON.stringify(name).slice(1, -1);
  let out = "";
  for (const b of new TextEncoder().encode(s)) out += String.fromCharCode(b);
  return out;
}

const candCache = new WeakMap<ObjNode, Map<string, string>>();
function escapedNames(node: ObjNode): Map<string, string> {
  let m = candCache.get(node);
  if (!m) {
    m = new Map([...node.props.keys()].map((k) => [k, escapeKey(k)]));
    candCache.set(node, m);
  }
  return m;
}

function moreKeys(f: Frame & { t: "obj" }): boolean {
  if (f.node.additional) return true;
  for (const k of f.node.props.keys()) if (!f.seen.includes(k)) return true;
  return false;
}

function requiredDone(f: Frame & { t: "obj" }): boolean {
  return f.node.required.every((r) => f.seen.includes(r));
}

/** Steps every alternative by one byte; an empty result means the byte is not allowed. */
export function matchStep(state: MatchState, b: number): MatchState {
  const out: Alt[] = [];
  for (const alt of state) stepAlt(alt, b, out);
  return out;
}

function replaceTop(alt: Alt, f: Frame, ws = 0): Alt {
  const stack = alt.stack.slice();
  stack[stack.length - 1] = f;
  return { stack, ws };
}

function stepAlt(alt: Alt, b: number, out: Alt[]): void {
  const s = alt.stack;
  const f = s[s.length - 1]!;
  switch (f.t) {
    case "str":
      return stepStr(alt, f, b, out);
    case "key":
      return stepKey(alt, f, b, out);
    case "num":
      return stepNum(alt, f, b, out);
    case "lit":
      return stepLit(alt, f, b, out);
    case "root":
      if (f.done) return;
      return startValue(replaceTop(alt, { ...f, done: true }), f.node, b, out, new Set());
    case "obj":
      return stepObj(alt, f, b, out);
    case "arr":
      return stepArr(alt, f, b, out);
  }
}

function space(alt: Alt, b: number, out: Alt[]): boolean {
  if (!isWs(b)) return false;
  if (alt.ws < SCHEMA_WS_LIMIT) out.push({ stack: alt.stack, ws: alt.ws + 1 });
  return true;
}

function pop(alt: Alt): Alt {
  return { stack: alt.stack.slice(0, -1), ws: 0 };
}

function push(alt: Alt, f: Frame): Alt {
  return { stack: [...alt.stack, f], ws: 0 };
}

/** A value of `node` starts with byte `b`; `alt`'s top is the container, already moved past the value. */
function startValue(alt: Alt, node: SchemaNode, b: number, out: Alt[], seen: Set<SchemaNode>): void {
  const n = deref(node);
  if (seen.has(n)) return;
  seen.add(n);
  switch (n.kind) {
    case "never":
      return;
    case "anyOf":
      for (const o of n.options) startValue(alt, o, b, out, seen);
      return;
    case "any":
      return startValue(alt, ANY, b, out, seen);
    case "object":
      if (b === 0x7b) out.push(push(alt, { t: "obj", node: n, seen: [], phase: P.KeyOrEnd, key: "" }));
      return;
    case "array":
      if (b === 0x5b) out.push(push(alt, { t: "arr", node: n, count: 0, phase: P.KeyOrEnd }));
      return;
    case "string":
      if (b === 0x22) out.push(push(alt, { t: "str", min: n.min, max: n.max, count: 0, sub: 0, left: 0, lo: 0, hi: 0 }));
      return;
    case "number":
      if (b === 0x2d) out.push(push(alt, { t: "num", integer: n.integer, n: N.Minus, len: 1 }));
      else if (isDigit(b)) out.push(push(alt, { t: "num", integer: n.integer, n: b === 0x30 ? N.Zero : N.Int, len: 1 }));
      return;
    case "boolean":
      return stepLit(alt, { t: "lit", texts: BOOLS, m: "" }, b, out, true);
    case "null":
      return stepLit(alt, { t: "lit", texts: NULLS, m: "" }, b, out, true);
    case "literal":
      return stepLit(alt, { t: "lit", texts: n.texts, m: "" }, b, out, true);
    case "ref":
      return;
  }
}

const BOOLS = ["true", "false"];
const NULLS = ["null"];
const ANY_OBJ: SchemaNode = { kind: "object", props: new Map(), required: [], additional: null };
const ANY_ARR: SchemaNode = { kind: "array", items: { kind: "any" }, min: 0, max: Infinity };
const ANY: SchemaNode = {
  kind: "anyOf",
  options: [ANY_OBJ, ANY_ARR, { kind: "string", min: 0, max: Infinity }, { kind: "number", integer: false }, { kind: "boolean" }, { kind: "null" }],
};
(ANY_OBJ as { additional: SchemaNode }).additional = { kind: "any" };

function stepObj(alt: Alt, f: Frame & { t: "obj" }, b: number, out: Alt[]): void {
  if (f.phase !== P.InKey && space(alt, b, out)) return;
  switch (f.phase) {
    case P.KeyOrEnd:
    case P.Key:
      if (b === 0x7d && f.phase === P.KeyOrEnd && requiredDone(f)) out.push(pop(alt));
      else if (b === 0x22 && moreKeys(f)) {
        const cands: string[] = [];
        for (const [k, e] of escapedNames(f.node)) if (!f.seen.includes(k)) cands.push(e);
        out.push(push(replaceTop(alt, { ...f, phase: P.InKey }), { t: "key", m: "", cands, free: f.node.additional !== null }));
      }
      return;
    case P.Colon:
      if (b === 0x3a) out.push(replaceTop(alt, { ...f, phase: P.Value }));
      return;
    case P.Value:
      return startValue(replaceTop(alt, { ...f, phase: P.After }), valueNode(f.node, f.key), b, out, new Set());
    case P.After:
      if (b === 0x2c && moreKeys(f)) out.push(replaceTop(alt, { ...f, phase: P.Key }));
      else if (b === 0x7d && requiredDone(f)) out.push(pop(alt));
      return;
    default:
      return;
  }
}

function stepArr(alt: Alt, f: Frame & { t: "arr" }, b: number, out: Alt[]): void {
  if (space(alt, b, out)) return;
  const { min, max, items } = f.node;
  if (f.phase === P.After) {
    if (b === 0x2c && f.count < max) out.push(replaceTop(alt, { ...f, phase: P.Value }));
    else if (b === 0x5d && f.count >= min) out.push(pop(alt));
    return;
  }
  if (f.phase === P.KeyOrEnd && b === 0x5d && f.count >= min) {
    out.push(pop(alt));
    return;
  }
  if (f.count < max) startValue(replaceTop(alt, { ...f, count: f.count + 1, phase: P.After }), items, b, out, new Set());
}

function stepKey(alt: Alt, f: Frame & { t: "key" }, b: number, out: Alt[]): void {
  if (b === 0x22) {
    let key: string | null = null;
    if (f.cands.includes(f.m)) key = unescapeKey(f.m);
    else if (f.free) {
      const k = unescapeKey(f.m);
      const obj = alt.stack[alt.stack.length - 2] as Frame & { t: "obj" };
      if (!obj.node.props.has(k) && !obj.seen.includes(k)) key = k;
    }
    if (key === null) return;
    const below = pop(alt);
    const obj = below.stack[below.stack.length - 1] as Frame & { t: "obj" };
    out.push(replaceTop(below, { ...obj, phase: P.Colon, key, seen: [...obj.seen, key] }));
    return;
  }
  const m = f.m + String.fromCharCode(b);
  let ok = false;
  for (const c of f.cands) if (c.startsWith(m)) ok = true;
  // Free keys: printable ASCII without escapes, bounded.
  if (!ok && f.free) ok = b >= 0x20 && b < 0x7f && b !== 0x5c && m.length <= SCHEMA_KEY_LIMIT;
  if (ok) out.push(replaceTop(alt, { ...f, m }));
}

function stepStr(alt: Alt, f: Frame & { t: "str" }, b: number, out: Alt[]): void {
  switch (f.sub) {
    case 0:
      if (b === 0x22) {
        if (f.count >= f.min) out.push(pop(alt));
        return;
      }
      if (f.count >= f.max || b < 0x20) return;
      if (b === 0x5c) return void out.push(replaceTop(alt, { ...f, sub: 1, count: f.count + 1 }));
      if (b < 0x80) return void out.push(replaceTop(alt, { ...f, count: f.count + 1 }));
      {
        const u = utf8Lead(b);
        if (u) out.push(replaceTop(alt, { ...f, sub: 3, count: f.count + 1, left: u[0], lo: u[1], hi: u[2] }));
      }
      return;
    case 1:
      if (b === 0x75) out.push(replaceTop(alt, { ...f, sub: 2, left: 4 }));
      else if (b === 0x22 || b === 0x5c || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74) out.push(replaceTop(alt, { ...f, sub: 0 }));
      return;
    case 2:
      if (isHex(b)) out.push(replaceTop(alt, { ...f, sub: f.left === 1 ? 0 : 2, left: f.left - 1 }));
      return;
    default:
      if (b >= f.lo && b <= f.hi) out.push(replaceTop(alt, { ...f, sub: f.left === 1 ? 0 : 3, left: f.left - 1, lo: 0x80, hi: 0xbf }));
      return;
  }
}

/** [continuation bytes, lo, hi] for a UTF-8 lead byte, excluding overlongs, surrogates and > U+10FFFF; null when invalid. */
export function utf8Lead(b: number): [number, number, number] | null {
  if (b >= 0xc2 && b <= 0xdf) return [1, 0x80, 0xbf];
  if (b >= 0xe0 && b <= 0xef) return [2, b === 0xe0 ? 0xa0 : 0x80, b === 0xed ? 0x9f : 0xbf];
  if (b >= 0xf0 && b <= 0xf4) return [3, b === 0xf0 ? 0x90 : 0x80, b === 0xf4 ? 0x8f : 0xbf];
  return null;
}

const N = { Minus: 0, Zero: 1, Int: 2, Dot: 3, Frac: 4, Exp: 5, ExpSign: 6, ExpDigits: 7 } as const;
const numComplete = (n: number) => n === N.Zero || n === N.Int || n === N.Frac || n === N.ExpDigits;

function stepNum(alt: Alt, f: Frame & { t: "num" }, b: number, out: Alt[]): void {
  const n = f.n;
  let next = -1;
  if (isDigit(b)) {
    if (n === N.Minus) next = b === 0x30 ? N.Zero : N.Int;
    else if (n === N.Int) next = N.Int;
    else if (n === N.Dot || n === N.Frac) next = N.Frac;
    else if (n === N.Exp || n === N.ExpSign || n === N.ExpDigits) next = N.ExpDigits;
  } else if (!f.integer && b === 0x2e) {
    if (n === N.Zero || n === N.Int) next = N.Dot;
  }
  // No exponents: with the length limit they could only overflow to Infinity, and a value never needs one.
  if (next !== -1) {
    if (f.len < SCHEMA_NUMBER_LIMIT) out.push(replaceTop(alt, { ...f, n: next, len: f.len + 1 }));
    return;
  }
  if (numComplete(n)) stepAlt(pop(alt), b, out);
}

function stepLit(alt: Alt, f: Frame & { t: "lit" }, b: number, out: Alt[], fresh = false): void {
  const m = f.m + String.fromCharCode(b);
  let extends_ = false;
  for (const t of f.texts) if (t.startsWith(m)) extends_ = true;
  if (extends_) {
    const g: Frame = { t: "lit", texts: f.texts, m };
    out.push(fresh ? push(alt, g) : replaceTop(alt, g));
  } else if (!fresh && f.texts.includes(f.m)) stepAlt(pop(alt), b, out);
}

// ---- queries --------------------------------------------------------------

/** The value is complete and nothing may follow: the root frame is done and alone. */
export function matchDone(state: MatchState): boolean {
  return state.some((a) => a.stack.length === 1 && (a.stack[0] as Frame & { t: "root" }).done);
}

/** The value could end here (a number or literal at the top may still go on). */
export function matchCanEnd(state: MatchState): boolean {
  for (const a of state) {
    let k = a.stack.length - 1;
    const top = a.stack[k]!;
    if ((top.t === "num" && numComplete(top.n)) || (top.t === "lit" && top.texts.includes(top.m))) k--;
    const root = a.stack[k]!;
    if (k === 0 && root.t === "root" && root.done) return true;
  }
  return false;
}

/** Inside a plain string with no pending escape or character: string-safe text only adds characters. */
export function plainString(state: MatchState): (Frame & { t: "str" }) | null {
  if (state.length !== 1) return null;
  const s = state[0]!.stack;
  const f = s[s.length - 1]!;
  return f.t === "str" && f.sub === 0 ? f : null;
}

/** `state` after `chars` string-safe characters in the plain string on top (see plainString). */
export function addChars(state: MatchState, chars: number): MatchState {
  const alt = state[0]!;
  const f = alt.stack[alt.stack.length - 1] as Frame & { t: "str" };
  return [replaceTop(alt, { ...f, count: f.count + chars })];
}

/** Minimal bytes after adding `chars` string-safe characters to the plain string on top. */
export function minFinishAfterChars(state: MatchState, chars: number): number {
  return minFinish(addChars(state, chars));
}
