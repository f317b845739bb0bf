/**
 * Model output → reasoning, content and tool calls, incrementally (spec §D).
 *
 * A state machine over decoded text: REASONING → CONTENT → TOOL BLOCK → DONE,
 * the tool block itself being a small grammar of DSML invokes and parameters.
 * It never decides before it is sure: text that could still become a marker
 * is held back, so any chunking of the same output yields the same deltas
 * once concatenated. Markup, special tokens and partial markers never reach
 * a delta. Where the model breaks the DSML grammar, the text degrades to
 * visible content with a warning instead of being lost; tool calls already
 * streamed stay, with their arguments closed.
 */
import { pyJsonString } from "./pyjson.js";
import { INVOKE_CLOSE, INVOKE_OPEN, PARAMETER_CLOSE, PARAMETER_OPEN, TOOL_CALLS_CLOSE } from "./dsml.js";
import { MarkerScanner, STRAY_SPECIALS } from "./marker-scan.js";
import { StopMatcher } from "./stop-matcher.js";
import { DSML, EOS, THINK_END, THINK_START } from "./special-tokens.js";
import { createToolCallIdGenerator, type ToolCallIdGenerator } from "./tool-call-id.js";
import type { Tokenizer, TokenStreamDecoder } from "./tokenizer.js";
import type { ThinkingMode } from "./encoding.js";

export type OutputDelta =
  | { type: "reasoning"; text: string }
  | { type: "content"; text: string }
  /** First fragment of a call (its `arguments` start as ""). */
  | { type: "tool_call"; index: number; id: string; name: string }
  | { type: "tool_arguments"; index: number; text: string };

export interface ParsedToolCall {
  index: number;
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "insufficient_system_resource";
/** Why generation ended, as the engine knows it; "stop" becomes "tool_calls" when calls were made. */
export type FinishCause = Exclude<FinishReason, "tool_calls">;

export interface ParsedOutput {
  content: string;
  /** A string in thinking mode (possibly ""), null in chat mode. */
  reasoning_content: string | null;
  tool_calls: ParsedToolCall[];
  finish_reason: FinishReason;
  /** The stop string that ended the content, if one did. */
  stop_string?: string;
  warnings: string[];
}

export interface ParserOptions {
  /** Default "thinking": output starts as reasoning. */
  thinking_mode?: ThinkingMode;
  /** Start in content even in thinking mode (a prefix completion whose prompt already closed `</think>`). */
  startInContent?: boolean;
  /** Needed for pushToken. */
  tokenizer?: Tokenizer;
  /** Stop strings, matched on content only (spec §D.3). */
  stop?: readonly string[];
  /** False: no stop string ends before armStops() (vLLM's min_tokens). Default true. */
  stopsArmed?: boolean;
  /** vLLM's include_stop_str_in_output: the content ends with the stop string. */
  includeStopInOutput?: boolean;
  /** Tool-call id source; inject a seeded one for reproducible output. */
  toolCallId?: ToolCallIdGenerator;
}

export type ParserPhase = "reasoning" | "content" | "tool_calls" | "done";

type State =
  | "reasoning"
  | "content"
  | "tool_open"
  | "tool_between"
  | "invoke_head"
  | "params"
  | "param_head"
  | "param_value"
  | "tool_after"
  | "done";

const TOOL_START = `<${DSML}tool_calls`;
const TOOL_START_AFTER_BREAK = `\n\n${TOOL_START}`;
const HEAD_LIMIT = 4096;
const INVOKE_HEAD = /^\s*name\s*=\s*"([^"]*)"\s*$/;
const MARKUP_CHARS = /[<>｜\n]/;
const PARAM_HEAD = /^\s*name\s*=\s*"([^"]*)"\s+string\s*=\s*"(true|false)"\s*$/;

const textScanner = new MarkerScanner([TOOL_START_AFTER_BREAK, TOOL_START, ...STRAY_SPECIALS]);
const valueScanner = new MarkerScanner([PARAMETER_CLOSE, `<${DSML}`, `</${DSML}`, ...STRAY_SPECIALS]);
/** Removes special-token strings from markup that is shown as text. */
const specialScanner = new MarkerScanner(STRAY_SPECIALS);

const isWs = (c: string | undefined) => c === " " || c === "\n" || c === "\r" || c === "\t";

export class OutputParser {
  private state: State;
  private buf = "";
  /** DSML text consumed since the last tool delta: what a malformed block shows as content. */
  private raw = "";
  private deltas: OutputDelta[] = [];
  private readonly decoder: TokenStreamDecoder | undefined;
  private readonly stop: StopMatcher;
  private readonly newId: ToolCallIdGenerator;
  private readonly thinking: boolean;

  private reasoning = "";
  private content = "";
  private readonly calls: ParsedToolCall[] = [];
  private readonly warningSet = new Set<string>();
  private callOpen = false;
  private callsInBlock = 0;
  private paramNames = new Set<string>();
  private valueIsString = false;
  private finished: ParsedOutput | undefined;

  constructor(options: ParserOptions = {}) {
    this.thinking = (options.thinking_mode ?? "thinking") === "thinking";
    this.state = this.thinking && !options.startInContent ? "reasoning" : "content";
    this.decoder = options.tokenizer?.createStreamDecoder();
    this.stop = new StopMatcher(options.stop ?? [], options.stopsArmed ?? true, options.includeStopInOutput ?? false);
    this.newId = options.toolCallId ?? createToolCallIdGenerator();
  }

  /** From the next pushed token on, stop strings may end (content still held here counts as before). */
  armStops(): void {
    this.stop.arm(this.state === "content" ? this.buf.length : 0);
  }

  /** True once EOS or a stop string was seen: generation should end. */
  get done(): boolean {
    return this.state === "done";
  }

  get phase(): ParserPhase {
    if (this.state === "reasoning" || this.state === "content" || this.state === "done") return this.state;
    return "tool_calls";
  }

  get warnings(): string[] {
    return [...this.warningSet];
  }

  pushToken(id: number): OutputDelta[] {
    if (!this.decoder) throw new Error("OutputParser.pushToken needs the tokenizer option");
    return this.pushText(this.decoder.push(id));
  }

  pushText(text: string): OutputDelta[] {
    if (this.state !== "done" && text) {
      this.buf += text;
      this.run(false);
    }
    return this.takeDeltas();
  }

  /** Ends the stream: flushes held text, closes what is open, and returns the last deltas and the message. */
  finish(cause: FinishCause = "stop"): { deltas: OutputDelta[]; result: ParsedOutput } {
    if (this.finished) return { deltas: [], result: this.finished };
    if (this.decoder && this.state !== "done") this.buf += this.decoder.flush();
    if (this.state !== "done") this.run(true);
    this.closeDangling();
    this.emitContent(this.stop.flush(), true);
    let reason: FinishReason = cause;
    if (this.stop.hit !== undefined) reason = "stop";
    else if (cause === "stop" && this.calls.length > 0) reason = "tool_calls";
    this.finished = {
      content: this.content,
      reasoning_content: this.thinking ? this.reasoning : null,
      tool_calls: this.calls.map((c) => ({ ...c, function: { ...c.function } })),
      finish_reason: reason,
      warnings: this.warnings,
    };
    if (this.stop.hit !== undefined) this.finished.stop_string = this.stop.hit;
    this.state = "done";
    return { deltas: this.takeDeltas(), result: this.finished };
  }

  // ---- driving -------------------------------------------------------------

  private run(final: boolean): void {
    while (this.state !== "done" && this.step(final)) {
      /* each step consumes text or changes state */
    }
  }

  private step(final: boolean): boolean {
    switch (this.state) {
      case "reasoning":
      case "content":
        return this.stepText(final);
      case "tool_open":
        if (this.buf === "") return false;
        if (this.buf[0] !== ">") return this.malformed(`expected ">" after ${TOOL_START}`);
        this.consume(1);
        this.state = "tool_between";
        return true;
      case "tool_between":
        return this.stepBetweenInvokes(final);
      case "invoke_head":
        return this.stepHead(final, INVOKE_HEAD, (m) => this.startCall(m[1]!));
      case "params":
        return this.stepParams(final);
      case "param_head":
        return this.stepHead(final, PARAM_HEAD, (m) => this.startParam(m[1]!, m[2] === "true"));
      case "param_value":
        return this.stepValue(final);
      case "tool_after":
        return this.stepAfterBlock(final);
      case "done":
        return false;
    }
  }

  private stepText(final: boolean): boolean {
    const r = textScanner.scan(this.buf, final);
    if (r.kind === "text") {
      this.emitText(this.buf.slice(0, r.end));
      this.buf = this.buf.slice(r.end);
      return false;
    }
    this.emitText(this.buf.slice(0, r.index));
    const matched = this.buf.slice(r.index, r.index + r.length);
    this.buf = this.buf.slice(r.index + r.length);
    if (this.state === "done") return false; // a stop string inside the emitted text
    switch (r.marker) {
      case THINK_END:
        if (this.state === "reasoning") this.state = "content";
        else this.warn("stray </think> in content removed");
        break;
      case THINK_START:
        if (this.state === "content") this.warn("stray <think> in content removed");
        break;
      case EOS:
        this.state = "done";
        break;
      case TOOL_START:
      case TOOL_START_AFTER_BREAK:
        if (this.state === "reasoning") this.warn("tool call block inside reasoning: reasoning ended there");
        this.state = "tool_open";
        this.raw = matched;
        this.callsInBlock = 0;
        break;
      default:
        this.warn(r.marker === DSML ? "stray DSML marker removed" : `special token ${r.marker} removed from output`);
    }
    return true;
  }

  private stepBetweenInvokes(final: boolean): boolean {
    this.skipWhitespace();
    if (this.buf === "") return false;
    if (this.buf.startsWith(INVOKE_OPEN)) {
      this.consume(INVOKE_OPEN.length);
      this.state = "invoke_head";
    } else if (this.buf.startsWith(TOOL_CALLS_CLOSE)) {
      this.consume(TOOL_CALLS_CLOSE.length);
      this.raw = "";
      this.state = "tool_after";
    } else if (this.buf.startsWith(EOS)) {
      this.buf = this.buf.slice(EOS.length);
      this.unclosedBlock();
      this.stopAtEos();
    } else if (!final && couldBecome(this.buf, INVOKE_OPEN, TOOL_CALLS_CLOSE, EOS)) {
      return false;
    } else {
      return this.malformed(`expected ${INVOKE_OPEN} or ${TOOL_CALLS_CLOSE}`);
    }
    return true;
  }

  private stepHead(final: boolean, pattern: RegExp, onMatch: (m: RegExpExecArray) => void): boolean {
    const end = this.buf.indexOf(">");
    if (end < 0) {
      if (final || this.buf.length > HEAD_LIMIT) return this.malformed("unterminated DSML tag");
      return false;
    }
    const m = pattern.exec(this.buf.slice(0, end));
    // A name holding markup would leak it into the call; such a tag is broken anyway.
    if (m && MARKUP_CHARS.test(m[1]!)) return this.malformed("markup inside a DSML name");
    if (!m) return this.malformed(`malformed DSML tag ${JSON.stringify(this.buf.slice(0, end + 1))}`);
    this.buf = this.buf.slice(end + 1);
    this.raw = "";
    onMatch(m);
    return true;
  }

  private stepParams(final: boolean): boolean {
    this.skipWhitespace();
    if (this.buf === "") return false;
    if (this.buf.startsWith(PARAMETER_OPEN)) {
      this.consume(PARAMETER_OPEN.length);
      this.state = "param_head";
    } else if (this.buf.startsWith(INVOKE_CLOSE)) {
      this.buf = this.buf.slice(INVOKE_CLOSE.length);
      this.raw = "";
      this.endCall();
      this.state = "tool_between";
    } else if (this.buf.startsWith(EOS)) {
      this.buf = this.buf.slice(EOS.length);
      this.warn(`tool call not closed with ${INVOKE_CLOSE}`);
      this.endCall();
      this.stopAtEos();
    } else if (!final && couldBecome(this.buf, PARAMETER_OPEN, INVOKE_CLOSE, EOS)) {
      return false;
    } else {
      return this.malformed(`expected ${PARAMETER_OPEN} or ${INVOKE_CLOSE}`);
    }
    return true;
  }

  private stepValue(final: boolean): boolean {
    const r = valueScanner.scan(this.buf, final);
    if (r.kind === "text") {
      this.emitValue(this.buf.slice(0, r.end));
      this.buf = this.buf.slice(r.end);
      return false;
    }
    this.emitValue(this.buf.slice(0, r.index));
    this.buf = this.buf.slice(r.index);
    if (r.marker === PARAMETER_CLOSE) {
      this.buf = this.buf.slice(r.length);
      this.endParam();
      this.state = "params";
    } else if (r.marker === `<${DSML}` || r.marker === `</${DSML}`) {
      // The model moved on without closing the value: close it here and re-read the tag.
      this.warn(`parameter value not closed with ${PARAMETER_CLOSE}`);
      this.endParam();
      this.state = "params";
    } else if (r.marker === EOS) {
      this.buf = this.buf.slice(r.length);
      this.warn("output ended inside a tool call parameter");
      this.endParam();
      this.endCall();
      this.stopAtEos();
    } else {
      this.buf = this.buf.slice(r.length);
      this.warn(`special token ${r.marker} removed from tool arguments`);
    }
    return true;
  }

  private stepAfterBlock(final: boolean): boolean {
    while (isWs(this.buf[0])) this.buf = this.buf.slice(1);
    if (this.buf === "") return false;
    if (this.buf.startsWith(EOS)) {
      this.buf = this.buf.slice(EOS.length);
      this.state = "done";
    } else if (!final && EOS.startsWith(this.buf)) {
      return false;
    } else {
      this.warn("text after the tool call block kept as content");
      this.state = "content";
    }
    return true;
  }

  /** Broken DSML: close any open call, show the consumed markup as text, and read on as content. */
  private malformed(reason: string): boolean {
    this.warn(`malformed tool call block (${reason}); shown as content`);
    if (this.callOpen) this.endCall();
    this.state = "content";
    this.emitContent(specialScanner.strip(this.raw), false);
    this.raw = "";
    return true;
  }

  /** At the end of the stream, whatever is still open is closed. */
  private closeDangling(): void {
    switch (this.state) {
      case "param_value":
        this.warn("output ended inside a tool call parameter");
        this.endParam();
        this.endCall();
        break;
      case "params":
        this.warn(`tool call not closed with ${INVOKE_CLOSE}`);
        this.endCall();
        break;
      case "tool_open":
      case "tool_between":
        this.raw += this.buf;
        this.unclosedBlock();
        break;
      default:
        break;
    }
    this.buf = "";
    this.raw = "";
  }

  /** A block that ends without its closing tag: its calls stand; a block without any is shown as text. */
  private unclosedBlock(): void {
    if (this.callsInBlock === 0) {
      this.warn("tool call block without any call; shown as content");
      this.emitContent(specialScanner.strip(this.raw), false);
    } else {
      this.warn(`tool call block not closed with ${TOOL_CALLS_CLOSE}`);
    }
    this.raw = "";
  }

  // ---- emitting ------------------------------------------------------------

  private emitText(text: string): void {
    if (this.state === "reasoning") {
      if (text) {
        this.reasoning += text;
        this.push({ type: "reasoning", text });
      }
    } else {
      this.emitContent(text, false);
    }
  }

  private emitContent(text: string, flushing: boolean): void {
    const out = flushing ? text : this.stop.push(text);
    if (out) {
      this.content += out;
      this.push({ type: "content", text: out });
    }
    if (!flushing && this.stop.hit !== undefined) this.state = "done";
  }

  private startCall(name: string): void {
    const index = this.calls.length;
    const id = this.newId(index);
    this.calls.push({ index, id, type: "function", function: { name, arguments: "" } });
    this.push({ type: "tool_call", index, id, name });
    this.callOpen = true;
    this.callsInBlock++;
    this.paramNames = new Set();
    this.state = "params";
  }

  private startParam(name: string, isString: boolean): void {
    if (this.paramNames.has(name)) this.warn(`duplicate parameter ${JSON.stringify(name)} in a tool call`);
    const sep = this.hasArgs() ? ", " : "{";
    this.paramNames.add(name);
    this.valueIsString = isString;
    this.args(`${sep}${pyJsonString(name)}: ${isString ? '"' : ""}`);
    this.state = "param_value";
  }

  private emitValue(text: string): void {
    if (!text) return;
    this.args(this.valueIsString ? pyJsonString(text).slice(1, -1) : text);
  }

  private endParam(): void {
    if (this.valueIsString) this.args('"');
  }

  private endCall(): void {
    if (!this.callOpen) return;
    this.args(this.hasArgs() ? "}" : "{}");
    this.callOpen = false;
  }

  /** EOS arrived inside the tool block: generation is over. */
  private stopAtEos(): void {
    this.raw = "";
    this.state = "done";
  }

  private hasArgs(): boolean {
    return this.calls[this.calls.length - 1]!.function.arguments !== "";
  }

  private args(text: string): void {
    const call = this.calls[this.calls.length - 1]!;
    call.function.arguments += text;
    this.push({ type: "tool_arguments", index: call.index, text });
  }

  private push(d: OutputDelta): void {
    const last = this.deltas[this.deltas.length - 1];
    if (last && last.type === d.type && last.type !== "tool_call") {
      if (last.type === "tool_arguments" && d.type === "tool_arguments" && last.index !== d.index) {
        this.deltas.push(d);
        return;
      }
      (last as { text: string }).text += (d as { text: string }).text;
      return;
    }
    this.deltas.push(d);
  }

  private takeDeltas(): OutputDelta[] {
    const out = this.deltas;
    this.deltas = [];
    return out;
  }

  private consume(n: number): void {
    this.raw += this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
  }

  private skipWhitespace(): void {
    let i = 0;
    while (isWs(this.buf[i])) i++;
    if (i > 0) this.consume(i);
  }

  private warn(message: string): void {
    this.warningSet.add(message);
  }
}

function couldBecome(text: string, ...markers: string[]): boolean {
  return markers.some((m) => m.startsWith(text));
}

/** Parses a whole completion at once (the same machine, one chunk). */
export function parseCompletion(text: string, options: ParserOptions = {}, cause: FinishCause = "stop"): ParsedOutput {
  const parser = new OutputParser(options);
  parser.pushText(text);
  return parser.finish(cause).result;
}
