import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Clock, IdSource } from '../clock.js';
import type { ServerConfig } from '../config.js';
import type { DecisionRecorder } from '../decisions/recorder.js';
import type { LimiterFactory } from '../http/rate-limit.js';
import type { ServerIdentity } from '../pki/datadir.js';
import type { FleetRoots } from '../pki/fleet.js';
import type { Store } from '../store/db.js';

/** Registers a feature's routes in one Fastify scope. */
export type Routes = (scope: FastifyInstance) => void;

/** What the admin plane's authenticated scope offers its routes. */
export interface AdminAuth {
  /** Asks again whether a request's credential still holds (a long-lived event stream does). */
  stillSignedIn(request: FastifyRequest): Promise<boolean>;
}

/**
 * What a feature contributes to the server, returned by its `setup()`. `buildApp` mounts the
 * routes of every feature in the order the features are listed, starts the loops on one
 * `AbortSignal`, and at close calls `stop` (before the planes close) and `idle` (after),
 * in reverse order. A feature's services are the other fields of what its setup returns.
 */
export interface Feature {
  /** Agent-plane routes that need no client certificate (enrollment, the installer). */
  agentPublicRoutes?: Routes;
  /** Agent-plane routes for enrolled nodes: the client certificate is checked before them. */
  agentRoutes?: Routes;
  /** Admin-plane routes that need no credential (sign-in, the console's pages, health). */
  adminPublicRoutes?: Routes;
  /** Admin-plane routes behind a credential and the access guard (`config.access` on each). */
  adminRoutes?: (scope: FastifyInstance, auth: AdminAuth) => void;
  /** Starts the feature's background loops; they stop when `signal` aborts. */
  start?(signal: AbortSignal): void;
  /** Before the planes close: let go of what Fastify does not track (channels, deliveries). */
  stop?(): Promise<void>;
  /** After the planes closed: wait for writes still in flight, so the store outlives them. */
  idle?(): Promise<void>;
}

/**
 * What every feature may ask for, built once by `buildApp`. A setup takes a `Pick<>` of this
 * and, as arguments of its own, the narrow services of the features it depends on.
 */
export interface Core {
  config: ServerConfig;
  store: Store;
  /** The store's write, timed, telling event streams of committed events. */
  write: Store['write'];
  clock: Clock;
  ids: IdSource;
  logger: Logger;
  /** Ledger entry and event in the transaction that makes the change. */
  decisions: DecisionRecorder;
  identity: ServerIdentity;
  roots: FleetRoots;
  /** Rate limits that hold for the fleet: in PostgreSQL when replicas share it, else in memory. */
  rateLimits: LimiterFactory;
  /** The agent-plane URL join lines carry (the bound port when listening on port 0). */
  joinUrl(): string;
}
