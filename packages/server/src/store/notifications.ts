import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { rateLimitedLog } from '../rate-limited-log.js';
import type { StoreLog } from './db.js';
import type { Schema } from './schema.js';

/**
 * Signals between replicas that share one database, delivered only once the sending transaction
 * has committed: PostgreSQL's LISTEN/NOTIFY. SQLite has none: there one process is the whole
 * control plane, and it tells itself.
 */
export interface Notifications {
  /** Inside a transaction: every listener hears `channel` when (and only if) it commits. */
  notify(trx: Kysely<Schema>, channel: string): Promise<void>;
  /**
   * Calls `onNotify` for each notification on `channel`, and once after every (re)connection,
   * since notifications sent while disconnected are lost. Holds one connection of its own and
   * reconnects with full-jitter backoff until `signal` aborts.
   */
  listen(channel: string, onNotify: () => void, signal: AbortSignal): void;
}

const CHANNEL_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export function postgresNotifications(url: string, log?: StoreLog): Notifications {
  return {
    async notify(trx, channel) {
      await sql`select pg_notify(${channel}, '')`.execute(trx);
    },
    listen(channel, onNotify, signal) {
      if (!CHANNEL_RE.test(channel)) throw new Error(`not a channel name: ${channel}`);
      let failures = 0;
      const failed = log
        ? rateLimitedLog(
            log.logger,
            `postgres-listen:${channel}`,
            'the PostgreSQL LISTEN connection failed; reconnecting',
            log.clock,
          )
        : () => {};
      const connect = async () => {
        if (signal.aborted) return;
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
        // Ending a client that already failed may fail too: that failure was already said.
        const stop = () => void client.end().catch(() => {});
        let retried = false;
        const retry = (err?: unknown) => {
          if (retried) return;
          retried = true;
          if (!signal.aborted) failed(err ?? new Error('the connection ended'));
          signal.removeEventListener('abort', stop);
          stop();
          if (signal.aborted) return;
          failures++;
          const cap = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
          setTimeout(() => void connect(), Math.random() * cap).unref();
        };
        client.on('error', retry);
        client.on('end', retry);
        client.on('notification', (message) => {
          if (message.channel === channel) onNotify();
        });
        signal.addEventListener('abort', stop, { once: true });
        try {
          await client.connect();
          await client.query(`LISTEN ${channel}`);
          failures = 0;
          onNotify();
        } catch (err) {
          retry(err);
        }
      };
      void connect();
    },
  };
}
