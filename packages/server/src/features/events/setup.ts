import type { Logger } from 'pino';
import type { Clock } from '../../clock.js';
import type { Store } from '../../store/db.js';
import type { ScopeFilter } from '../access/scope.js';
import type { Feature } from '../feature.js';
import { eventRoutes } from './routes.js';
import { EVENTS_CHANNEL, EventService } from './service.js';
import { DEFAULT_STREAM_LIMITS, EventStreams, type FacetsOf, type StreamLimits } from './streams.js';

/** How often old events are removed; retention is days, so once a minute is plenty. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * Events and their live streams, started: the sweeper removes what is older than the retention,
 * and `writeWithEvents` is the store's write that tells the streams when a transaction with events commits.
 * Everything stops when `signal` aborts, except the streams themselves (`streams.stop()`).
 */
export async function setupEvents(deps: {
  store: Store;
  clock: Clock;
  retentionMs: number;
  signal: AbortSignal;
  logger: Logger;
  limits?: StreamLimits;
  /** The nodes events are about, for streams of roles narrowed to some nodes. */
  facetsOf?: FacetsOf;
  /** Filters listings down to the nodes a narrowed role reaches. */
  scope?: Pick<ScopeFilter, 'items'>;
}) {
  const { store, clock, signal, logger } = deps;
  const events = new EventService({
    db: store.db,
    write: (fn) => store.write(fn),
    clock,
    retentionMs: deps.retentionMs,
    ...(store.notifications ? { notifications: store.notifications } : {}),
  });
  events.startSweeper(SWEEP_INTERVAL_MS, signal, (err) =>
    logger.warn({ err }, 'could not remove old events'),
  );
  // With notifications from the other replicas, polling is only a safety net.
  const limits = deps.limits ?? {
    ...DEFAULT_STREAM_LIMITS,
    ...(store.notifications ? { pollMs: 30_000 } : {}),
  };
  const streams = new EventStreams(
    events,
    limits,
    (err) => logger.warn({ err }, 'could not read events for the live streams'),
    (stream) => logger.info({ path: '/v1/events/stream', ...stream }, 'event stream ended'),
    deps.facetsOf,
  );
  await streams.start();
  store.notifications?.listen(EVENTS_CHANNEL, () => void streams.nudge(), signal);
  signal.addEventListener('abort', () => streams.stop(), { once: true });
  return {
    events,
    streams,
    writeWithEvents: events.committing((fn) => store.write(fn)),
    // An open stream asks again now and then, without counting against its address.
    adminRoutes: (scope, auth) => eventRoutes(scope, events, streams, deps.scope, auth.stillSignedIn),
  } satisfies Feature & { events: EventService; streams: EventStreams; writeWithEvents: Store['write'] };
}
