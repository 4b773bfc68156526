/** How the queue of enrollment requests is bounded (`--request-ttl`, `--request-rate`, `--max-pending-requests`). */
export interface RequestQueueSettings {
  /** How long a request waits for an operator before it expires. */
  readonly ttlMs: number;
  /** Requests per minute one source address may make, in bursts of as many. */
  readonly perMinute: number;
  /** Most requests pending at once, fleet-wide. */
  readonly maxPending: number;
}

/** Reads the queue's settings; every malformed value is added to `problems`, never defaulted. */
export function requestQueueSettings(
  str: (flag: string) => string | undefined,
  def: (flag: string) => string,
  duration: (flag: string, minMs: number) => number,
  problems: string[],
): RequestQueueSettings {
  const whole = (flag: string): number => {
    const text = str(flag) ?? def(flag);
    const n = Number(text);
    if (!/^\d+$/.test(text) || !(n > 0)) problems.push(`--${flag}: "${text}" is not a positive whole number`);
    return n > 0 ? n : 1;
  };
  return {
    ttlMs: duration('request-ttl', 1000),
    perMinute: whole('request-rate'),
    maxPending: whole('max-pending-requests'),
  };
}
