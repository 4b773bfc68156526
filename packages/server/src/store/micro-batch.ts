/**
 * Collects items handed in during one turn of the event loop (and while the previous batch is
 * being written) and hands them to `flush` together, so ten thousand receipts arriving at once
 * cost a few transactions instead of ten thousand. Every caller is answered for its own item:
 * `flush` returns, per item, undefined when it was taken or the error to answer it with.
 */
export class MicroBatch<T> {
  private queue: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly flush: (items: T[]) => Promise<Array<Error | undefined>>,
    private readonly maxBatch = 1000,
  ) {}

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) this.flushing = this.drain();
    });
  }

  /** Resolves when everything handed in so far is flushed. */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const outcomes = await this.flush(batch.map((b) => b.item));
        batch.forEach((b, i) => {
          if (outcomes[i]) b.reject(outcomes[i]);
          else b.resolve();
        });
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = undefined;
  }
}
