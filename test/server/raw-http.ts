/**
 * HTTP/1.1 over a bare socket: the bytes a test writes go out exactly as given (broken
 * framing, bad headers, odd request lines), and the answer is read until the server
 * closes, then split into status, headers and the (de-chunked) body.
 */
import { connect } from "node:net";

export interface RawAnswer {
  /** 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json: any;
  /** True when no answer came within the time limit. */
  timedOut: boolean;
}

/**
 * Sends `payload` on a fresh connection and reads until the server closes it (or `timeoutMs`
 * passes). With `halfClose` the client ends its side after writing, so a server waiting for
 * more body sees the end; without it a generation is not taken for a client that left.
 */
export function rawRequest(port: number, payload: string | Buffer, timeoutMs = 15_000, halfClose = false): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => undefined); // a reset after the answer is still an answer
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ ...parseAnswer(Buffer.concat(chunks)), timedOut });
    });
    socket.write(payload, () => {
      if (halfClose) socket.end();
    });
  });
}

function parseAnswer(bytes: Buffer): Omit<RawAnswer, "timedOut"> {
  const text = bytes.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: {}, body: "", json: undefined };
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = bytes.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1"));
  if (headers["transfer-encoding"] === "chunked") body = dechunk(body);
  const s = body.toString("utf8");
  let json: any;
  try {
    json = JSON.parse(s);
  } catch {
    json = undefined;
  }
  return { status, headers, body: s, json };
}

function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at);
    if (lineEnd < 0) break;
    const size = parseInt(body.subarray(at, lineEnd).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** A request's bytes: request line, headers (Host and Connection: close unless given), body with its Content-Length. */
export function httpRequest(method: string, path: string, body?: string, headers: Record<string, string> = {}): string {
  const h: Record<string, string> = { host: "127.0.0.1", connection: "close", ...headers };
  if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === "content-length" || k.toLowerCase() === "transfer-encoding")) {
    h["content-length"] = String(Buffer.byteLength(body));
  }
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${body ?? ""}`;
}

/** The envelope a path's errors come in: Anthropic's under /anthropic/, DeepSeek's elsewhere. */
export function envelopeProblem(path: string, answer: RawAnswer): string | null {
  const j = answer.json;
  if (path.startsWith("/anthropic/")) {
    if (j?.type !== "error" || typeof j.error?.type !== "string" || typeof j.error?.message !== "string" || j.error.message === "") return "not in Anthropic's envelope";
    return null;
  }
  const e = j?.error;
  if (typeof e !== "object" || e === null || typeof e.message !== "string" || e.message === "" || typeof e.type !== "string" || !("param" in e) || !("code" in e)) {
    return "not in DeepSeek's envelope";
  }
  return null;
}
