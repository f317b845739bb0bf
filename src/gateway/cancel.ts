/**
 * A cancellation flag with listeners, for the gateway's per-request plumbing. Node 20 makes every
 * AbortController transferable on creation, which cost about 60 us a controller on this path,
 * and a request made two of them.
 */
export class Cancel {
  private listeners: Array<() => void> | null = [];
  get aborted(): boolean {
    return this.listeners === null;
  }

  abort(): void {
    const fns = this.listeners;
    if (fns === null) return;
    this.listeners = null;
    for (const f of fns) f();
  }

  /** Runs `f` on abort (at once if aborted already); returns what removes it. */
  onAbort(f: () => void): () => void {
    const fns = this.listeners;
    if (fns === null) {
      f();
      return () => undefined;
    }
    fns.push(f);
    return () => {
      const i = fns.indexOf(f);
      if (i >= 0) fns.splice(i, 1);
    };
  }
}
