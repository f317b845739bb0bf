/**
 * Stop strings on the content stream (spec §D.3, §D.4 pitfall 2): holds back
 * at most (longest stop − 1) characters so a stop string split across chunks
 * is still caught, and cuts the text right before the first stop string.
 *
 * Disarmed (vLLM's min_tokens: no stop before that many tokens), a stop string
 * may not end in the text pushed so far; once armed, it must end after the
 * point of arming, though it may begin before it.
 */
export class StopMatcher {
  private held = "";
  /** Characters released before `held`. */
  private released = 0;
  /** A match must end past this many characters of the stream (Infinity: disarmed). */
  private armedFrom: number;
  private readonly stops: string[];
  private readonly keep: number;
  /** The stop string that ended the text, once one has. */
  hit: string | undefined;

  /** vLLM's include_stop_str_in_output: the text ends with the stop string instead of before it. */
  private readonly includeStop: boolean;

  constructor(stops: readonly string[], armed = true, includeStop = false) {
    this.includeStop = includeStop;
    this.stops = stops.filter((s) => s.length > 0);
    this.keep = Math.max(0, ...this.stops.map((s) => s.length - 1));
    this.armedFrom = armed ? 0 : Infinity;
  }

  /** Lets stop strings end after the text pushed so far and `pending` characters still to come before it. */
  arm(pending = 0): void {
    if (this.armedFrom === Infinity) this.armedFrom = this.released + this.held.length + pending;
  }

  /** Text that is certainly before any stop string. */
  push(text: string): string {
    if (this.hit !== undefined) return "";
    if (this.stops.length === 0) return text;
    const all = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      let i = all.indexOf(s);
      while (i >= 0 && this.released + i + s.length <= this.armedFrom) i = all.indexOf(s, i + 1);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        this.hit = s;
      }
    }
    if (cut >= 0) {
      const end = this.includeStop ? cut + this.hit!.length : cut;
      this.held = "";
      this.released += end;
      return all.slice(0, end);
    }
    const release = Math.max(0, all.length - this.keep);
    this.held = all.slice(release);
    this.released += release;
    return all.slice(0, release);
  }

  flush(): string {
    const out = this.held;
    this.released += out.length;
    this.held = "";
    return out;
  }
}
