import { UsageError } from '@muster/host';
import { formatDuration, parseDuration } from '@muster/proto';

/**
 * Request-body fields that admin verbs fill from a flag, and whether the flag takes a duration
 * where the field holds seconds: so that what the server says about a field can name the flag,
 * in the user's units.
 */
const BODY_FIELDS: Readonly<Record<string, { flag: string; seconds?: true }>> = {
  ttlSec: { flag: 'ttl', seconds: true },
  timeoutSec: { flag: 'timeout', seconds: true },
  uses: { flag: 'uses' },
  profile: { flag: 'profile' },
  profiles: { flag: 'profiles' },
  labels: { flag: 'label' },
  name: { flag: 'name' },
  target: { flag: 'target' },
  publicKey: { flag: 'pubkey' },
};

/** `at most 30 d` for `must be <= 2592000` on a seconds field; the server's words otherwise. */
function inFlagWords(words: string, seconds: boolean): string {
  const limit = /^must be ([<>]=?) (\d+(?:\.\d+)?)$/.exec(words);
  if (!limit) return words;
  const value = Number(limit[2]);
  const shown = seconds ? formatDuration(value * 1000) : String(value);
  const relation = { '<=': 'at most', '>=': 'at least', '<': 'less than', '>': 'more than' }[limit[1]!];
  return `${relation} ${shown}`;
}

/**
 * Rewrites a server's validation detail about a body field (`body.ttlSec must be <= 2592000`) in
 * terms of the flag that set it (`--ttl: at most 30 d`), when the verb has that flag; undefined
 * for anything else.
 */
export function flagProblem(detail: string, flags: readonly string[]): string | undefined {
  const match = /^body\.([A-Za-z]+)(?:\.\S+)? (.+)$/.exec(detail);
  const field = match ? BODY_FIELDS[match[1]!] : undefined;
  if (!match || !Object.hasOwn(BODY_FIELDS, match[1]!) || !field || !flags.includes(field.flag))
    return undefined;
  return `--${field.flag}: ${inFlagWords(match[2]!, field.seconds === true)}`;
}

/**
 * A duration flag as whole seconds, checked against the limits of the request schema's field
 * before anything is sent, so the refusal names the flag and speaks in its units.
 */
export function durationSeconds(
  values: Record<string, unknown>,
  flag: string,
  limits: { minimum?: number; maximum?: number },
): number | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  const ms = typeof text === 'string' ? parseDuration(text) : undefined;
  if (ms === undefined)
    throw new UsageError(`--${flag}: "${String(text)}" is not a duration such as 30m, 2h or 7d`);
  const seconds = Math.round(ms / 1000);
  if (limits.maximum !== undefined && seconds > limits.maximum)
    throw new UsageError(`--${flag}: at most ${formatDuration(limits.maximum * 1000)}`);
  if (limits.minimum !== undefined && seconds < limits.minimum)
    throw new UsageError(`--${flag}: at least ${formatDuration(limits.minimum * 1000)}`);
  return seconds;
}
