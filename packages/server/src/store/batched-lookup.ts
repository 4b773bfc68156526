/**
 * Coalesces lookups by key made in the same turn of the event loop into one query, so a
 * thousand heartbeats arriving together cost one round trip to the store instead of a
 * thousand. Every caller still gets an answer read from the store after it asked.
 */
export class BatchedLookup<K, V> {
  private pending = new Map<
    K,
    Array<{ resolve: (v: V | undefined) => void; reject: (e: unknown) => void }>
  >();
  private scheduled = false;

  constructor(
    private readonly fetch: (keys: K[]) => Promise<Map<K, V>>,
    private readonly maxKeys = 500,
  ) {}

  get(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(key, [{ resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    this.scheduled = false;
    const keys = [...batch.keys()];
    for (let i = 0; i < keys.length; i += this.maxKeys) {
      const chunk = keys.slice(i, i + this.maxKeys);
      this.fetch(chunk).then(
        (found) => {
          for (const key of chunk) for (const w of batch.get(key)!) w.resolve(found.get(key));
        },
        (err) => {
          for (const key of chunk) for (const w of batch.get(key)!) w.reject(err);
        },
      );
    }
  }
}
