import { readFileSync } from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * The agent-plane sockets each node currently holds, so revoking a node can cut them at once
 * instead of waiting for their next request.
 */
export class LiveConnections {
  private readonly byNode = new Map<string, Set<Socket>>();
  private readonly owner = new WeakMap<Socket, string>();

  track(nodeId: string, socket: Socket): void {
    if (this.owner.get(socket) === nodeId) return;
    this.owner.set(socket, nodeId);
    let sockets = this.byNode.get(nodeId);
    if (!sockets) {
      sockets = new Set();
      this.byNode.set(nodeId, sockets);
    }
    sockets.add(socket);
    socket.once('close', () => {
      const set = this.byNode.get(nodeId);
      set?.delete(socket);
      if (set?.size === 0) this.byNode.delete(nodeId);
    });
  }

  /** Closes every connection the node holds; returns how many there were. */
  cut(nodeId: string): number {
    const sockets = this.byNode.get(nodeId);
    if (!sockets) return 0;
    this.byNode.delete(nodeId);
    for (const socket of sockets) socket.destroy();
    return sockets.size;
  }

  /** How many connections are held, across all nodes. */
  get size(): number {
    let n = 0;
    for (const set of this.byNode.values()) n += set.size;
    return n;
  }
}

/** Why a connection was refused or closed before it was served (a label of the metric). */
export type RefusedReason = 'total' | 'per_source' | 'handshake_timeout';

/** How many connections a plane holds in all and from one source address. */
export interface ConnectionBudget {
  readonly total: number;
  readonly perSource: number;
}

/**
 * A plane's connection budget, checked as each TCP connection arrives, before any TLS work: a
 * connection beyond the plane's total or its source's share is closed at once, and so is one
 * that has not finished its TLS handshake (or, on plain HTTP, sent a byte) in time. Each plane
 * has its own budget, so a flood of agent-plane sockets leaves the admin plane reachable.
 */
export class ConnectionGuard {
  private open = 0;
  private readonly bySource = new Map<string, number>();
  private readonly told = new Map<RefusedReason, { at: number; since: number }>();

  constructor(
    private readonly opts: {
      plane: 'agent' | 'admin';
      budget: ConnectionBudget;
      handshakeTimeoutMs: number;
      /** A plain HTTP listener: no TLS handshake bounds a silent client, this guard does. */
      plainHttp: boolean;
      onRefused(reason: RefusedReason): void;
      logger: Pick<Logger, 'warn'>;
      now?: () => number;
    },
  ) {}

  /** Connections held now. */
  get size(): number {
    return this.open;
  }

  attach(server: NetServer): this {
    // Ahead of the server's own listener, so a refused socket is never wrapped in TLS or HTTP.
    server.prependListener('connection', (socket: Socket) => this.admit(socket));
    server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.refused('handshake_timeout');
    });
    return this;
  }

  private admit(socket: Socket): void {
    const { budget } = this.opts;
    const source = socket.remoteAddress ?? 'unknown';
    const held = this.bySource.get(source) ?? 0;
    const reason = this.open >= budget.total ? 'total' : held >= budget.perSource ? 'per_source' : undefined;
    if (reason) {
      socket.destroy();
      this.refused(reason, source);
      return;
    }
    this.open++;
    this.bySource.set(source, held + 1);
    socket.once('close', () => {
      this.open--;
      const left = (this.bySource.get(source) ?? 1) - 1;
      if (left > 0) this.bySource.set(source, left);
      else this.bySource.delete(source);
    });
    if (this.opts.plainHttp) {
      const timer = setTimeout(() => {
        if (socket.bytesRead > 0 || socket.destroyed) return;
        socket.destroy();
        this.refused('handshake_timeout', source);
      }, this.opts.handshakeTimeoutMs);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    }
  }

  /** Counts a refusal; says so in the log at most once a minute per reason, with how many. */
  private refused(reason: RefusedReason, source?: string): void {
    this.opts.onRefused(reason);
    const now = (this.opts.now ?? Date.now)();
    const told = this.told.get(reason);
    if (told && now - told.at < 60_000) {
      told.since++;
      return;
    }
    const { plane, budget } = this.opts;
    const what = {
      total: `the ${plane} plane holds its limit of ${budget.total} connections`,
      per_source: `a source address holds its limit of ${budget.perSource} ${plane}-plane connections`,
      handshake_timeout: `connections to the ${plane} plane did not finish their TLS handshake (or send a request) in ${this.opts.handshakeTimeoutMs} ms`,
    }[reason];
    this.opts.logger.warn(
      { plane, reason, ...(source ? { source } : {}), refusedSinceLastLine: (told?.since ?? 0) + 1 },
      `connections refused: ${what}`,
    );
    this.told.set(reason, { at: now, since: 0 });
  }
}

/**
 * The agent plane's default total: 50,000 connections, or fewer when the process may open
 * fewer files, keeping a reserve for the admin plane, the store and the data dir.
 */
export function defaultAgentConnections(adminBudget: number, limit = openFileLimit()): number {
  // The admin budget is set apart, but never more than a quarter of what the process may open.
  const reserve = 256 + Math.min(adminBudget, Math.floor(limit / 4));
  return Math.max(64, Math.min(50_000, limit - reserve));
}

/** The process's soft limit on open files (Linux), or no limit where it cannot be read. */
function openFileLimit(): number {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line && line[1] !== 'unlimited') return Number(line[1]);
  } catch {
    // Not Linux: no limit known here.
  }
  return Number.POSITIVE_INFINITY;
}
