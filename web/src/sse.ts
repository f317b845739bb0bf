/**
 * Server-sent events from a fetch body (the chat route's stream, spec §A.6): events end at a
 * blank line, `data:` lines of one event join with "\n", `:` lines are keep-alive comments.
 * Fed text as it arrives, in pieces cut anywhere.
 */
export interface SseEvent {
  event: string;
  data: string;
}

export class SseParser {
  private pending = "";
  private data: string[] = [];
  private event = "";

  /** The events completed by this piece of text. */
  push(text: string): SseEvent[] {
    this.pending += text;
    const out: SseEvent[] = [];
    for (;;) {
      const end = this.pending.search(/\r\n|\r|\n/);
      if (end < 0) break;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for the next piece.
      if (this.pending[end] === "\r" && end === this.pending.length - 1) break;
      const line = this.pending.slice(0, end);
      this.pending = this.pending.slice(end + (this.pending.startsWith("\r\n", end) ? 2 : 1));
      this.line(line, out);
    }
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === "") {
      if (this.data.length > 0) out.push({ event: this.event || "message", data: this.data.join("\n") });
      this.data = [];
      this.event = "";
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
  }
}
