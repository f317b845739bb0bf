/**
 * A one-line progress bar on stderr for model loading. On a terminal it
 * redraws in place; elsewhere (logs, CI) it prints one line per phase, so
 * piped output never fills with carriage returns.
 */
export interface ProgressUpdate {
  phase: string;
  loaded: number;
  total: number;
}

const WIDTH = 28;

export class ProgressBar {
  private lastPhase = "";
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly label = "loading model",
  ) {}

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  update(p: ProgressUpdate): void {
    if (!this.tty) {
      if (p.phase !== this.lastPhase) this.stream.write(`${this.label}: ${p.phase}\n`);
      this.lastPhase = p.phase;
      return;
    }
    const now = Date.now();
    const complete = p.total > 0 && p.loaded >= p.total;
    // Redraw at most 20 times a second; always show a phase's first and last state.
    if (p.phase === this.lastPhase && !complete && now - this.lastDraw < 50) return;
    this.lastPhase = p.phase;
    this.lastDraw = now;
    const fraction = p.total > 0 ? Math.min(1, p.loaded / p.total) : 1;
    const filled = Math.round(fraction * WIDTH);
    const bar = "█".repeat(filled) + "░".repeat(WIDTH - filled);
    const pct = `${Math.floor(fraction * 100)}`.padStart(3);
    this.stream.write(`\r\x1b[2K${this.label} ${bar} ${pct}% ${p.phase}`);
    this.drawn = true;
  }

  /** Clears the bar (terminal) so the next output starts on a clean line. */
  done(): void {
    if (this.tty && this.drawn) this.stream.write("\r\x1b[2K");
    this.drawn = false;
  }
}
