import { isIP } from 'node:net';
import type { Clock } from '../clock.js';
import { type AppError, RateLimitedError } from '../errors.js';

/**
 * What callers of a limit see: takes one token for `key`; 0 when allowed, otherwise the seconds
 * to wait. In memory it answers at once; shared between replicas (shared-rate-limit.ts) it asks
 * the store, so callers await it either way.
 */
export interface Limiter {
  take(key: string): number | Promise<number>;
}

/** Makes the limiter of one named limit: `scope` keeps limits that share a key (an address) apart. */
export type LimiterFactory = (scope: string, perSecond: number, burst: number) => Limiter;

/**
 * A token bucket per key (a source address). Buckets that refilled completely are forgotten,
 * so a flood from many addresses costs memory only while it lasts.
 */
export class RateLimiter implements Limiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes one token; returns 0 when allowed, otherwise the seconds to wait. */
  take(key: string): number {
    const now = this.clock.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    // A clock stepped back (NTP, a test) refills nothing, and must not drain the bucket for as long.
    const elapsed = Math.max(0, now - bucket.at);
    bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsed / 1000) * this.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.buckets.set(key, bucket);
      return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
    }
    bucket.tokens -= 1;
    this.buckets.set(key, bucket);
    if (this.buckets.size > 10_000) this.sweep(now);
    return 0;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(key);
    }
  }
}

/**
 * The source a refusal is counted against: the address, but for IPv6 its /64, which one host
 * usually holds whole and could otherwise walk through one address at a time.
 */
export function sourceOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const missing = tail === undefined ? 0 : 8 - groups(head).length - groups(tail).length;
  const full = [...groups(head), ...Array<string>(missing).fill('0'), ...groups(tail ?? '')];
  return `${full
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** How long one account of a limited source lasts: the log says so at most once per window. */
const LIMITED_WINDOW_MS = 60_000;

/**
 * Refused admin credentials (bearer tokens, console sessions, sign-in tokens and codes, login
 * codes and user certificates) per source address, and per user when the refused credential
 * names one. Once a source or a user has spent its budget its refusals are 429s instead of
 * 401s, with `retry-after`; a valid credential is still checked and accepted, as Teleport and
 * GitHub do, so an attacker sharing an address (a NAT, the proxy in front), or replaying a dead
 * credential of someone else's from many addresses, cannot lock operators out. Tokens of at
 * least 128 bits make guessing hopeless anyway: the budget turns a flood into cheap answers that
 * tell the client to stop, and tells the operator once per window.
 */
export class FailedCredentials {
  private readonly bySource: Limiter;
  private readonly byUser: Limiter;
  private readonly windows = new Map<string, { start: number; refused: number }>();

  constructor(
    private readonly deps: {
      clock: Clock;
      /** Refusals per minute a source (and a user) may have, in bursts of as many. */
      perMinute: number;
      /**
       * Called when a source (`key` an address) or a user (`key` `user:<name>`) is first
       * limited, then once per window while it stays so.
       */
      onLimited: (key: string, refusedInLastWindow: number, kind: 'source' | 'user') => void;
      /** Where the budgets are kept: in memory unless given (the fleet's, shared-rate-limit.ts). */
      limits?: LimiterFactory;
    },
  ) {
    const limits: LimiterFactory =
      deps.limits ?? ((_scope, perSecond, burst) => new RateLimiter(deps.clock, perSecond, burst));
    this.bySource = limits('refused-source', deps.perMinute / 60, deps.perMinute);
    this.byUser = limits('refused-user', deps.perMinute / 60, deps.perMinute);
  }

  /**
   * Counts one refused credential from `address`, and against `user` when the credential named
   * one (a dead token or certificate of theirs, a used code); returns `refusal`, or a 429.
   */
  async refuse(address: string, refusal: AppError, user?: string): Promise<AppError> {
    const source = sourceOf(address);
    const [sourceWait, userWait] = await Promise.all([
      this.bySource.take(source),
      user === undefined ? 0 : this.byUser.take(user),
    ]);
    if (sourceWait === 0 && userWait === 0) return refusal;
    const [key, kind, wait] =
      userWait >= sourceWait
        ? ([`user:${user}`, 'user', userWait] as const)
        : ([source, 'source', sourceWait] as const);
    const now = this.deps.clock.now();
    const window = this.windows.get(key);
    if (!window || now - window.start >= LIMITED_WINDOW_MS) {
      const continued = window !== undefined && now - window.start < 2 * LIMITED_WINDOW_MS;
      this.deps.onLimited(key, continued ? window.refused : 0, kind);
      this.windows.set(key, { start: now, refused: 1 });
      if (this.windows.size > 10_000) this.sweep(now);
    } else window.refused += 1;
    const whose = kind === 'user' ? 'for this user' : 'from this address';
    return new RateLimitedError(
      `too many refused credentials ${whose}; wait ${wait} s before trying again`,
      wait,
    );
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows)
      if (now - window.start >= LIMITED_WINDOW_MS) this.windows.delete(key);
  }
}
