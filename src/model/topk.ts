/**
 * Indices of the k largest scores in descending order; exact ties go to the lowest index
 * (spec §13.4: the project's defined tie rule, also used to make the goldens).
 * A bounded heap keeps this O(n log k) for long contexts.
 */
export function topkIndices(scores: ArrayLike<number>, n: number, k: number): Int32Array {
  k = Math.min(k, n);
  const better = (a: number, b: number) => scores[a]! > scores[b]! || (scores[a] === scores[b] && a < b);
  const heap = new Int32Array(k); // min-heap on `better`: heap[0] is the worst kept
  let size = 0;
  const siftUp = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!better(heap[p]!, heap[i]!)) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < size && better(heap[w]!, heap[l]!)) w = l;
      if (r < size && better(heap[w]!, heap[r]!)) w = r;
      if (w === i) return;
      [heap[w], heap[i]] = [heap[i]!, heap[w]!];
      i = w;
    }
  };
  for (let i = 0; i < n; i++) {
    if (size < k) {
      heap[size] = i;
      siftUp(size++);
    } else if (k > 0 && better(i, heap[0]!)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
}
