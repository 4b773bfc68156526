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
