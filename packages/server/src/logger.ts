import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

/** Structured JSON lines on stderr; credentials are redacted wherever they might appear. */
export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino(
    {
      level,
      base: { svc: 'muster' },
      redact: {
        paths: ['req.headers.authorization', '*.token', '*.secret', 'token', 'secret'],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination as pino.DestinationStream,
  );
}
