/** The levels every Muster process understands, most severe first. */
export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type Level = (typeof LEVELS)[number];

export interface Log {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<Level, number> = {
  fatal: 60,
  error: 50,
  warn: 40,
  info: 30,
  debug: 20,
  trace: 10,
  silent: 100,
};

/** A small JSON-lines logger with pino's field names, for processes that do not carry pino. */
export function jsonLog(
  level: Level,
  base: Record<string, unknown>,
  out: NodeJS.WritableStream = process.stderr,
): Log {
  const threshold = RANK[level];
  const emit = (lvl: Exclude<Level, 'silent'>) => (msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < threshold) return;
    out.write(
      `${JSON.stringify({ level: RANK[lvl], time: new Date().toISOString(), ...base, ...fields, msg })}\n`,
    );
  };
  return { error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') };
}

/**
 * A warning for one source that would otherwise drop its errors (a channel that keeps failing
 * to open): the first is said at once, the ones within the next `everyMs` are only counted, and
 * the next line says how many were left out (`suppressed`). A flapping source writes one line a
 * minute, and nothing is lost silently.
 */
export function rateLimitedWarn(
  log: Pick<Log, 'warn'>,
  message: string,
  everyMs = 60_000,
  now: () => number = Date.now,
): (err: unknown) => void {
  let loggedAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (err) => {
    const at = now();
    if (at - loggedAt < everyMs) {
      suppressed++;
      return;
    }
    log.warn(message, { error: err instanceof Error ? err.message : String(err), suppressed });
    loggedAt = at;
    suppressed = 0;
  };
}
