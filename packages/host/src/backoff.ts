/**
 * The bound of the n-th backoff step: `base·2^n`, capped. The cap applies to this bound, never
 * to the jittered wait, so a fleet that has been failing for a while still spreads over the whole
 * window instead of piling up at the cap (fleet#53357).
 */
export function backoffWindow(attempt: number, baseMs = 1000, capMs = 60_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
}

/**
 * Exponential backoff with full jitter (a uniformly random wait in [0, window)), so a fleet
 * that lost its server does not come back in lockstep. The one backoff every retry loop in the
 * agent uses.
 */
export function backoffDelay(attempt: number, baseMs = 1000, capMs = 60_000, random = Math.random): number {
  return Math.floor(random() * backoffWindow(attempt, baseMs, capMs));
}

/** Waits, or resolves early (returning false) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
