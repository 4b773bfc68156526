import type { Logger } from 'pino';
import { type Clock, systemClock } from './clock.js';

/** One line a minute per source at most: a failing database must not flood the log too. */
export const LOG_EVERY_MS = 60_000;

/** Says an error from one source in the log, at most once per interval. */
export type ErrorLog = (err: unknown) => void;

/**
 * An error log for one source that would otherwise drop its errors (a pool's idle connection
 * dying, a background check failing): the first error is logged at once, the ones after it
 * within the minute are only counted, and the next line logged says how many were left out
 * (`suppressed`). Nothing is lost silently, and a flapping source writes one line a minute.
 */
export function rateLimitedLog(
  logger: Pick<Logger, 'warn'>,
  source: string,
  message: string,
  clock: Clock = systemClock,
  everyMs = LOG_EVERY_MS,
): ErrorLog {
  let loggedAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (err) => {
    const now = clock.now();
    if (now - loggedAt < everyMs) {
      suppressed++;
      return;
    }
    logger.warn({ err, source, suppressed }, message);
    loggedAt = now;
    suppressed = 0;
  };
}
