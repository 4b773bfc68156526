import { randomBytes, type X509Certificate } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError, UnauthorizedError } from '../../errors.js';
import type { LiveConnections } from '../../http/connections.js';
import { MAX_BODY_BYTES } from '../../http/json.js';
import { SIGNATURE_REFUSED, type SignedRequestVerifier } from '../../http/signatures.js';
import type { TrustedProxies } from '../../http/trusted-proxies.js';
import type { NodeIdentity } from '../nodes/service.js';

export interface ProxiedPlaneDeps {
  verifier: SignedRequestVerifier;
  proxies: TrustedProxies;
  /** The agent plane's router: the proxied listener serves the same routes. */
  routing(req: IncomingMessage, res: ServerResponse): void;
  /** Where verified channel upgrades go on to (the channel hub listens there). */
  channelRelay: EventEmitter;
  connections: Pick<LiveConnections, 'track'>;
  logger: Logger;
}

/**
 * `--proxied-listen`: the agent plane as plain HTTP for a TLS-terminating proxy (CONTRACT
 * section 12). It answers only `--trusted-proxy` peers; inside the agent plane's authenticated
 * scope a request from here is identified by its RFC 9421 signature instead of a client
 * certificate, and a channel upgrade must be signed before the hub sees it. Enrollment stays
 * unsigned: its CSR is the proof of possession.
 */
export class ProxiedPlane {
  readonly server: Server;
  private readonly requests = new WeakSet<IncomingMessage>();
  private readonly channels = new WeakMap<Duplex, X509Certificate>();

  constructor(private readonly deps: ProxiedPlaneDeps) {
    this.server = createServer({ requestTimeout: 30_000, keepAliveTimeout: 75_000 }, (req, res) => {
      if (!this.fromProxy(req)) return refuseRaw(res);
      this.requests.add(req);
      deps.routing(req, res);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.upgrade(req, socket, head);
    });
  }

  /** Whether a socket is a channel this listener verified (its identity is asked of identify()). */
  holds(socket: Duplex): boolean {
    return this.channels.has(socket);
  }

  /** A held channel's node, checked against the store now, as every channel message is. */
  async identify(socket: Duplex): Promise<NodeIdentity> {
    const cert = this.channels.get(socket);
    if (!cert) throw new UnauthorizedError(SIGNATURE_REFUSED, 'signature_refused');
    try {
      return await this.deps.verifier.identify(cert);
    } catch (err) {
      if (err instanceof AppError || !(err instanceof Error)) throw err;
      throw new UnauthorizedError(
        'this identity is not current (revoked, superseded or decommissioned)',
        'identity_revoked',
      );
    }
  }

  /**
   * Wraps the agent plane's client-certificate check: requests from this listener skip it and
   * are verified by their signature in preParsing() instead, once the body is read.
   */
  orCertificate(
    mtls: (request: FastifyRequest) => Promise<void>,
  ): (request: FastifyRequest) => Promise<void> {
    return async (request) => {
      if (!this.requests.has(request.raw)) return mtls(request);
    };
  }

  /** The preParsing hook of the authenticated agent scope: reads the body, verifies, hands the body on. */
  readonly preParsing = async (request: FastifyRequest, _reply: FastifyReply, payload: Readable) => {
    if (!this.requests.has(request.raw)) return payload;
    const body = await readBody(payload);
    const identity = await this.deps.verifier.verify(facts(request.raw), body);
    request.node = identity;
    request.actor = `node:${identity.id}`;
    const again = Readable.from(body.length > 0 ? [body] : []) as Readable & {
      receivedEncodedLength?: number;
    };
    again.receivedEncodedLength = body.length;
    return again;
  };

  private fromProxy(req: IncomingMessage): boolean {
    if (this.deps.proxies.trusts(req.socket.remoteAddress)) return true;
    this.deps.logger.warn(
      { source: req.socket.remoteAddress, forwardedFor: req.headers['x-forwarded-for'] },
      'refused a request on --proxied-listen from an address that is not a --trusted-proxy',
    );
    return false;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (!this.fromProxy(req)) return refuseSocket(socket, 401, 'signature_refused', SIGNATURE_REFUSED);
    try {
      const identity = await this.deps.verifier.verify(facts(req), Buffer.alloc(0));
      this.channels.set(socket, await this.deps.verifier.certificateOf(facts(req)));
      this.deps.connections.track(identity.id, socket as never);
    } catch (err) {
      const status = err instanceof AppError ? err.status : 503;
      if (status === 503) this.deps.logger.warn({ err }, 'could not verify a signed channel upgrade');
      return refuseSocket(
        socket,
        status,
        err instanceof AppError ? err.code : 'unavailable',
        err instanceof AppError ? err.message : 'the server cannot verify the request now',
      );
    }
    this.deps.channelRelay.emit('upgrade', req, socket, head);
  }
}

function facts(req: IncomingMessage) {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
  };
}

async function readBody(payload: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new AppError(413, 'body_too_large', 'the request body is too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function problemText(status: number, code: string, detail: string, requestId: string): string {
  return JSON.stringify({
    type: `urn:muster:problem:${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    requestId,
  });
}

function refuseRaw(res: ServerResponse): void {
  const requestId = randomBytes(8).toString('hex');
  const body = problemText(401, 'signature_refused', SIGNATURE_REFUSED, requestId);
  res.writeHead(401, {
    'content-type': 'application/problem+json',
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}

function refuseSocket(socket: Duplex, status: number, code: string, detail: string): void {
  const requestId = randomBytes(8).toString('hex');
  const body = problemText(status, code, detail, requestId);
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/problem+json\r\nx-request-id: ${requestId}\r\n` +
        `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  socket.destroy();
}
