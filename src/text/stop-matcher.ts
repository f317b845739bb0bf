/**
 * Stop strings on the content stream (spec §D.3, §D.4 pitfall 2): holds back
 * at most (longest stop − 1) characters so a stop string split across chunks
 * is still caught, and cuts the text right before the first stop string.
 */
export class StopMatcher {
  private held = "";
  private readonly stops: string[];
  private readonly keep: number;
  /** The stop string that ended the text, once one has. */
  hit: string | undefined;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.keep = Math.max(0, ...this.stops.map((s) => s.length - 1));
  }

  /** Text that is certainly before any stop string. */
  push(text: string): string {
    if (this.hit !== undefined) return "";
    if (this.stops.length === 0) return text;
    const all = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = all.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        this.hit = s;
      }
    }
    if (cut >= 0) {
      this.held = "";
      return all.slice(0, cut);
    }
    const release = Math.max(0, all.length - this.keep);
    this.held = all.slice(release);
    return all.slice(0, release);
  }

  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }
}
