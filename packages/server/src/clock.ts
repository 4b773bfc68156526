import { randomBytes, randomUUID } from 'node:crypto';

/** Time comes in through a clock so tests can age nodes and expire tokens without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs `fn` once `ms` have passed on this clock; returns what cancels it. A clock without its
   * own timers (the system's) leaves this out, and real timers are used.
   */
  after?(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Runs `fn` after `ms` on the clock's timers, or on a real (unref'd) timer if it has none. */
export function after(clock: Clock, ms: number, fn: () => void): () => void {
  if (clock.after) return clock.after(ms, fn);
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * Runs `fn` every `everyMs` on the clock until the signal aborts, the next run counted from the
 * end of the one before, so a slow run never overlaps the next. `fn` says its own errors.
 */
export function every(
  clock: Clock,
  everyMs: number,
  fn: () => Promise<void> | void,
  signal: AbortSignal,
): void {
  let cancel = () => {};
  const run = async () => {
    if (signal.aborted) return;
    await fn();
    if (!signal.aborted) cancel = after(clock, everyMs, () => void run());
  };
  cancel = after(clock, everyMs, () => void run());
  signal.addEventListener('abort', () => cancel(), { once: true });
}

interface ManualTimer {
  due: number;
  fn: () => void;
  real: NodeJS.Timeout;
}

/**
 * A clock a test can move by hand. `advance` and `set` only move the time; `tick` moves it and
 * runs the timers that came due (as sinon's fake timers do), so a test runs a 5 s sweep by
 * ticking 5 s instead of waiting. Its timers also fire after the same real time, as before, so
 * a test that never ticks still sees its sweeps.
 */
export class ManualClock implements Clock {
  private readonly timers = new Set<ManualTimer>();
  constructor(private ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
  /** Moves the clock on by `ms` and runs every timer due by then, earliest first. */
  tick(ms = 0): void {
    this.ms += ms;
    const due = [...this.timers].filter((t) => t.due <= this.ms).sort((a, b) => a.due - b.due);
    for (const timer of due) this.fire(timer);
  }
  after(ms: number, fn: () => void): () => void {
    const timer: ManualTimer = { due: this.ms + ms, fn, real: setTimeout(() => this.fire(timer), ms) };
    timer.real.unref();
    this.timers.add(timer);
    return () => {
      clearTimeout(timer.real);
      this.timers.delete(timer);
    };
  }
  private fire(timer: ManualTimer): void {
    if (!this.timers.delete(timer)) return;
    clearTimeout(timer.real);
    timer.fn();
  }
}

/** Identifiers and secrets come from one source, so a test can make them predictable. */
export interface IdSource {
  nodeId(): string;
  tokenId(): string;
  /** A join token secret: 256 random bits. */
  tokenSecret(): string;
  /** A certificate serial: 158 random bits, positive, as lowercase hex. */
  serial(): string;
}

export const randomIds: IdSource = {
  nodeId: () => randomUUID(),
  tokenId: () => `tok_${randomBytes(8).toString('hex')}`,
  tokenSecret: () => `mjt_${randomBytes(32).toString('base64url')}`,
  serial: () => {
    // 20 bytes as RFC 5280 allows at most; the top bits keep it positive and exactly 20 bytes
    // long in DER, which leaves 158 random bits (the contract asks for at least 128).
    const bytes = randomBytes(20);
    bytes[0] = (bytes[0]! & 0x7f) | 0x40;
    return bytes.toString('hex');
  },
};
