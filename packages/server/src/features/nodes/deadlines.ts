/**
 * Node ids by the time something about them comes due, earliest first: a binary min-heap.
 * Setting a node again leaves its old entry in the heap, skipped when it comes up, so a move
 * costs O(log n); the heap is rebuilt when stale entries outnumber live ones.
 */
export class DeadlineQueue {
  private heap: Array<{ at: number; id: string }> = [];
  private readonly at = new Map<string, number>();

  get size(): number {
    return this.at.size;
  }

  set(id: string, at: number): void {
    if (this.at.get(id) === at) return;
    this.at.set(id, at);
    this.push({ at, id });
    if (this.heap.length > 2 * this.at.size + 1024) this.rebuild();
  }

  delete(id: string): void {
    this.at.delete(id);
  }

  /** Removes and returns the ids due at `now`, at most `max` of them, earliest first. */
  takeDue(now: number, max = Number.POSITIVE_INFINITY): string[] {
    const due: string[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now && due.length < max) {
      const top = this.pop();
      if (this.at.get(top.id) !== top.at) continue; // moved or deleted since
      this.at.delete(top.id);
      due.push(top.id);
    }
    return due;
  }

  private rebuild(): void {
    this.heap = [];
    for (const [id, at] of this.at) this.push({ at, id });
  }

  private push(entry: { at: number; id: string }): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.at <= entry.at) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): { at: number; id: string } {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
        if (heap[child]!.at >= last.at) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
