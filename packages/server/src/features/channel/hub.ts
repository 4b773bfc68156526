import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import {
  CHANNEL_CLOSE,
  CHANNEL_PATH,
  type ChannelDown,
  Heartbeat,
  type HeartbeatAck,
  Receipt,
} from '@muster/proto';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { AppError } from '../../errors.js';
import type { Limiter } from '../../http/rate-limit.js';
import type { NodeIdentity } from '../../identity.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, coerceTypes: false, allErrors: false }));
const validHeartbeat = ajv.compile(Heartbeat);
const validReceipt = ajv.compile(Receipt);
const COMMAND_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$/;

export interface ChannelHubDeps {
  /** Who the socket's certificate says it is, checked against the store now; throws if nobody. */
  identify(socket: TLSSocket): Promise<NodeIdentity>;
  heartbeat(node: NodeIdentity, heartbeat: Heartbeat): Promise<HeartbeatAck>;
  heartbeatIntervalSec(): number;
  /** Limits how often one node may open a channel. */
  limiter: Limiter;
  /** A second channel for one identity: the older was closed; say so where operators look. */
  onDuplicate(node: NodeIdentity): void;
  logger: Logger;
  pingIntervalMs?: number;
  /** A channel opened: send what waits for the node (policy, commands). */
  onOpen?(node: NodeIdentity): void;
  /** The agent started a command. */
  running?(node: NodeIdentity, commandId: string): Promise<void>;
  /** The agent's signed receipt; resolves once stored. */
  receipt?(node: NodeIdentity, receipt: Receipt): Promise<void>;
}

interface Held {
  ws: WebSocket;
  node: NodeIdentity;
  alive: boolean;
}

/**
 * The agent channels this server holds: one WebSocket per node, upgraded from the agent
 * plane's TLS connection after the node's identity is checked, and checked again on every
 * message. Ping/pong finds dead peers; a newer channel for the same identity replaces the older.
 */
export class ChannelHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly held = new Map<string, Held>();
  private readonly pinger: NodeJS.Timeout;
  private closing = false;
  private inflight = 0;

  constructor(private readonly deps: ChannelHubDeps) {
    this.pinger = setInterval(() => this.ping(), deps.pingIntervalMs ?? 20_000);
    this.pinger.unref();
  }

  get size(): number {
    return this.held.size;
  }

  /** Ids of the nodes holding a channel to this server. */
  heldNodeIds(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Sends to a node's channel; false when this server holds none for it. A message going to
   * many nodes can be passed serialized, so it is stringified once.
   */
  sendTo(nodeId: string, message: ChannelDown | { readonly text: string }): boolean {
    const held = this.held.get(nodeId);
    if (!held || held.ws.readyState !== held.ws.OPEN) return false;
    held.ws.send('text' in message ? message.text : JSON.stringify(message));
    return true;
  }

  /** Takes over WebSocket upgrades on the agent plane's server. */
  attach(server: HttpsServer): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.upgrade(req, socket as TLSSocket, head);
    });
  }

  private async upgrade(req: IncomingMessage, socket: TLSSocket, head: Buffer): Promise<void> {
    if (this.closing) return refuse(socket, 503, 'unavailable', 'the server is stopping');
    const path = (req.url ?? '').split('?')[0];
    if (path !== CHANNEL_PATH) return refuse(socket, 404, 'not_found', `no channel at ${path}`);
    let node: NodeIdentity;
    try {
      node = await this.deps.identify(socket);
    } catch (err) {
      const status = err instanceof AppError ? err.status : 503;
      return refuse(
        socket,
        status,
        err instanceof AppError ? err.code : 'unavailable',
        (err as Error).message,
      );
    }
    const wait = await this.deps.limiter.take(node.id);
    if (wait > 0)
      return refuse(socket, 429, 'rate_limited', `too many channels opened by this node; retry in ${wait} s`);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, node, socket));
  }

  private accept(ws: WebSocket, node: NodeIdentity, socket: TLSSocket): void {
    const before = this.held.get(node.id);
    const held: Held = { ws, node, alive: true };
    this.held.set(node.id, held);
    if (before) {
      before.ws.close(CHANNEL_CLOSE.superseded, 'superseded by a newer channel for this identity');
      this.deps.onDuplicate(node);
    }
    ws.on('pong', () => {
      held.alive = true;
    });
    ws.on('close', () => {
      if (this.held.get(node.id) === held) this.held.delete(node.id);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      if (this.closing) return;
      this.inflight++;
      void this.receive(held, socket, data as Buffer, isBinary).finally(() => this.inflight--);
    });
    this.send(ws, { type: 'settings', heartbeatIntervalSec: this.deps.heartbeatIntervalSec() });
    this.deps.onOpen?.(node);
  }

  private async receive(held: Held, socket: TLSSocket, data: Buffer, isBinary: boolean): Promise<void> {
    const { ws } = held;
    let message: { type?: unknown; heartbeat?: unknown; commandId?: unknown; receipt?: unknown };
    try {
      if (isBinary) throw new Error('binary');
      message = JSON.parse(data.toString('utf8'));
    } catch {
      return ws.close(CHANNEL_CLOSE.protocol, 'channel messages are JSON text');
    }
    const type = message?.type;
    if (type !== 'heartbeat' && type !== 'running' && type !== 'receipt')
      return ws.close(CHANNEL_CLOSE.protocol, 'unknown channel message');
    try {
      // Every message is checked against the store, as every request is.
      held.node = await this.deps.identify(socket);
    } catch (err) {
      return ws.close(CHANNEL_CLOSE.identity, (err as Error).message.slice(0, 120));
    }
    if (type === 'running') return this.running(held, message.commandId);
    if (type === 'receipt') return this.receipt(held, message.receipt);
    const seq = (message.heartbeat as { seq?: unknown } | undefined)?.seq;
    if (!validHeartbeat(message.heartbeat)) {
      const first = validHeartbeat.errors?.[0];
      const detail = `heartbeat${first?.instancePath?.replaceAll('/', '.') ?? ''} ${first?.message ?? 'is invalid'}`;
      return this.send(ws, {
        type: 'error',
        ...(typeof seq === 'number' ? { seq } : {}),
        status: 400,
        detail,
      });
    }
    try {
      const ack = await this.deps.heartbeat(held.node, message.heartbeat as Heartbeat);
      this.send(ws, { type: 'ack', seq: (message.heartbeat as Heartbeat).seq, ack });
    } catch (err) {
      const status = err instanceof AppError ? err.status : 503;
      // A throttled heartbeat is the node's doing, counted and told elsewhere: no line each.
      if (status !== 429) this.deps.logger.warn({ err, node: held.node.id }, 'channel heartbeat failed');
      this.send(ws, {
        type: 'error',
        seq: (message.heartbeat as Heartbeat).seq,
        status,
        detail: status === 429 ? (err as Error).message : 'the heartbeat was not recorded',
      });
    }
  }

  private async running(held: Held, commandId: unknown): Promise<void> {
    if (typeof commandId !== 'string' || !COMMAND_ID_RE.test(commandId))
      return held.ws.close(CHANNEL_CLOSE.protocol, 'a running message names a command id');
    await this.deps
      .running?.(held.node, commandId)
      .catch((err) =>
        this.deps.logger.warn(
          { err, node: held.node.id, commandId },
          'could not record a command as running',
        ),
      );
  }

  private async receipt(held: Held, receipt: unknown): Promise<void> {
    if (!validReceipt(receipt)) {
      const first = validReceipt.errors?.[0];
      return this.send(held.ws, {
        type: 'error',
        status: 400,
        detail: `receipt${first?.instancePath?.replaceAll('/', '.') ?? ''} ${first?.message ?? 'is invalid'}`,
      });
    }
    const commandId = (receipt as Receipt).commandId;
    try {
      await this.deps.receipt?.(held.node, receipt as Receipt);
      this.send(held.ws, { type: 'receipt_ack', commandId });
    } catch (err) {
      const status = err instanceof AppError ? err.status : 503;
      if (status >= 500) this.deps.logger.warn({ err, node: held.node.id }, 'could not store a receipt');
      const detail = err instanceof AppError ? err.message : 'the receipt was not stored; send it again';
      this.send(held.ws, { type: 'error', commandId, status, detail });
    }
  }

  private send(ws: WebSocket, message: ChannelDown): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  }

  private ping(): void {
    for (const held of this.held.values()) {
      if (!held.alive) {
        held.ws.terminate(); // no pong since the last ping: the peer is gone
        continue;
      }
      held.alive = false;
      held.ws.ping();
    }
  }

  /** Closes every channel (the server is stopping) and stops pinging. */
  /**
   * Closes every channel (the server is stopping), takes no more messages, and resolves once
   * the ones being handled are done, so the store is never closed under a heartbeat.
   */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pinger);
    for (const held of this.held.values()) held.ws.close(CHANNEL_CLOSE.shutdown, 'server stopping');
    this.wss.close();
    while (this.inflight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function refuse(socket: TLSSocket, status: number, code: string, detail: string): void {
  const body = JSON.stringify({
    type: `urn:muster:problem:${code}`,
    title: STATUS_CODES[status],
    status,
    detail,
    code,
  });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
