import { type Expression, type SqlBool, sql } from 'kysely';
import { ConflictError, NotFoundError } from '../errors.js';

/** A shorter prefix would match half the history; it is taken as a whole id. */
export const MIN_ID_PREFIX = 4;
/** How many ids an ambiguous prefix names. */
export const MAX_PREFIX_CANDIDATES = 5;

/**
 * The condition "`id` starts with `prefix`", exactly: LIKE can use the primary key's index, and
 * the substr makes it exact, since SQLite's LIKE ignores case and `_`/`%` are wildcards to it.
 */
export function idStartsWith(prefix: string): Expression<SqlBool> {
  const pattern = `${prefix.replace(/[\\%_]/g, '\\$&')}%`;
  return sql<SqlBool>`(id like ${pattern} escape '\\' and substr(id, 1, ${prefix.length}) = ${prefix})`;
}

/**
 * The one row whose id `prefix` starts, as git resolves abbreviated hashes. `rows` are the
 * matches, at most MAX_PREFIX_CANDIDATES + 1 of them; none is 404, several is 409 naming them.
 */
export function onlyMatch<T extends { id: string }>(rows: readonly T[], prefix: string, noun: string): T {
  if (rows.length === 0) throw new NotFoundError(`no ${noun} ${prefix}`);
  if (rows.length > 1) {
    const more = rows.length > MAX_PREFIX_CANDIDATES ? ', …' : '';
    const shown = rows
      .slice(0, MAX_PREFIX_CANDIDATES)
      .map((r) => r.id)
      .join(', ');
    throw new ConflictError(
      `"${prefix}" is the start of several ${noun} ids: ${shown}${more}; give more of it`,
      'ambiguous_id',
    );
  }
  return rows[0]!;
}
