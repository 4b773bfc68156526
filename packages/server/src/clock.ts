import { randomBytes, randomUUID } from 'node:crypto';

/** Time comes in through a clock so tests can age nodes and expire tokens without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock a test can move by hand. */
export class ManualClock implements Clock {
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
