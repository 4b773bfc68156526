import { UsageError } from '@muster/host';
import { safe } from './output.js';

/** Shorter prefixes would match too much of a fleet's history to be worth typing. */
export const MIN_PREFIX = 4;

/**
 * The one id that `given` is, or is the start of, as git resolves abbreviated hashes: an exact
 * id wins; a prefix of several is a usage error naming them; a prefix of none fails (exit 1).
 */
export function uniqueId(given: string, ids: readonly string[], noun: string): string {
  if (ids.includes(given)) return given;
  if (given.length < MIN_PREFIX)
    throw new UsageError(
      `"${safe(given)}" is too short: give at least ${MIN_PREFIX} characters of the ${noun} id`,
    );
  const matches = ids.filter((id) => id.startsWith(given)).sort();
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new Error(`no ${noun} ${safe(given)}`);
  const shown = matches.slice(0, 5).join(', ');
  throw new UsageError(
    `"${safe(given)}" is the start of several ${noun} ids: ${shown}${matches.length > 5 ? ', …' : ''}; give more of it`,
  );
}
