/**
 * Runs every routed expert of every layer once (one activation row), untimed. The VMs these
 * benchmarks run on page out memory that has not been read for about a minute (the kernel's
 * DAMON `pageout` scheme, /sys/kernel/mm/damon/admin/kdamonds/0: age >= 12 intervals of 5 s),
 * page cache included, so an expert not used since the load may be read back from disk on its
 * next use: the same 256 experts' w1 product took 0.32, 0.20, 0.16, 0.14 ms per call over
 * four passes (an owned copy: 0.14 from the first). A timed step that routes to experts not
 * used for a minute then measures disk reads, and an A/B that runs one addon first on each
 * new expert set favours the other.
 */
import type { Dsv4Model } from "../src/model/transformer.js";

export function warmExperts(model: Dsv4Model): void {
  const { cfg, backend } = model;
  const x = new Float32Array(cfg.dim).fill(0.01);
  for (const block of [...model.weights.blocks, ...model.weights.mtp]) {
    for (let e = 0; e < cfg.numRoutedExperts; e++) {
      const w = block.moe.expert(e);
      const g = backend.linear(x, 1, w.w1, true);
      backend.linear(x, 1, w.w3, true);
      backend.linear(g, 1, w.w2, true);
    }
  }
}
