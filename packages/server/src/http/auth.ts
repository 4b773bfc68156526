import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../clock.js';
import { type AppError, UnauthorizedError } from '../errors.js';
import type { NodeIdentity, Principal, RefusedSerial } from '../identity.js';
import type { FleetRoots } from '../pki/fleet.js';
import type { LiveConnections } from './connections.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The node a verified client certificate belongs to (agent plane). */
    node: NodeIdentity | null;
    /** Who is acting, as recorded in decisions: `user:<name>` on the admin plane. */
    actor: string;
  }
}

/**
 * Another way to sign admin requests in (the console's session cookie): resolves true when it
 * has authenticated the request, false when the request does not use it; throws when the
 * request uses it wrongly (a stale session, a missing CSRF token).
 */
export type AlternativeCredential = (request: FastifyRequest) => Promise<boolean>;

/** Counts refused credentials per source address and per user; see FailedCredentials in rate-limit.ts. */
export interface CredentialRefusals {
  /** Returns the error to answer a refused credential from `source` (of `user`) with: itself, or a 429. */
  refuse(source: string, refusal: AppError, user?: string): AppError | Promise<AppError>;
}

/** A refused credential that names the user it belonged to, so the refusal counts against them too. */
export class RefusedCredentialError extends UnauthorizedError {
  constructor(
    message: string,
    code: string,
    readonly user?: string,
  ) {
    super(message, code);
  }
}

/**
 * A personal client certificate on the admin plane: resolves to its user's principal, to
 * undefined when the connection presented none, and throws UnauthorizedError when it is refused.
 */
export type CertificateResolver = (request: FastifyRequest) => Promise<Principal | undefined>;

/** Resolves a bearer secret to the user it belongs to; undefined for an unknown or dead one. */
export type BearerResolver = (secret: string) => Promise<Principal | undefined>;

/**
 * Checks `Authorization: Bearer <API token>` against the store on every request: only the
 * secret's hash is looked up, so neither its length nor its content leaks through timing, and a
 * revoked token or a disabled user stops at once on every replica. Without that header, the
 * alternative credential (a console session), then a personal client certificate, may
 * authenticate the request instead. A credential presented and refused counts against its source
 * address in `refusals`, and against its user when it names one (a request with none does not);
 * a valid one is accepted whatever its address or user has spent.
 */
export function adminTokenCheck(
  resolve: BearerResolver,
  alternative?: AlternativeCredential,
  refusals?: CredentialRefusals,
  certificate?: CertificateResolver,
): (request: FastifyRequest) => Promise<void> {
  const refused = (request: FastifyRequest, err: AppError) =>
    refusals?.refuse(request.ip, err, err instanceof RefusedCredentialError ? err.user : undefined) ?? err;
  const refusing = async <T>(request: FastifyRequest, check: () => Promise<T>): Promise<T> => {
    try {
      return await check();
    } catch (err) {
      throw err instanceof UnauthorizedError ? await refused(request, err) : err;
    }
  };
  return async (request) => {
    const header = request.headers.authorization;
    if (header === undefined && alternative) {
      if (await refusing(request, () => alternative(request))) return;
    }
    // A personal certificate when no bearer header names another credential; without one
    // presented, the request goes on to be refused for want of a token.
    const byCertificate =
      header === undefined && certificate ? await refusing(request, () => certificate(request)) : undefined;
    if (byCertificate) {
      request.principal = byCertificate;
      request.actor = `user:${byCertificate.user}`;
      return;
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    const principal = match ? await refusing(request, () => resolve(match[1]!)) : undefined;
    if (!principal) {
      const err = new UnauthorizedError('a valid API token is required (Authorization: Bearer …)');
      throw header === undefined ? err : await refused(request, err);
    }
    request.principal = principal;
    request.actor = `user:${principal.user}`;
  };
}

/** The least entropy an admin token may carry: what a guesser faces, as for join tokens' 256. */
export const MIN_ADMIN_TOKEN_BITS = 128;

/** Alphabets a token may be drawn from, smallest first: a token is judged by the first that holds it. */
const TOKEN_ALPHABETS: ReadonlyArray<{ name: string; pattern: RegExp; size: number }> = [
  { name: 'decimal', pattern: /^[0-9]+$/, size: 10 },
  { name: 'hex', pattern: /^(?:[0-9a-f]+|[0-9A-F]+)$/, size: 16 },
  { name: 'single-case alphanumeric', pattern: /^(?:[a-z0-9]+|[A-Z0-9]+)$/, size: 36 },
  { name: 'alphanumeric', pattern: /^[A-Za-z0-9]+$/, size: 62 },
  { name: 'base64url', pattern: /^[A-Za-z0-9_-]+$/, size: 64 },
  { name: 'base64', pattern: /^[A-Za-z0-9+/]+=*$/, size: 64 },
  { name: 'printable ASCII', pattern: /^[\x21-\x7e]+$/, size: 94 },
];

/**
 * Why an admin token is too weak to accept, or undefined when it is not. Its entropy is judged
 * as a random draw from the smallest usual alphabet that holds it (length × log2 of the
 * alphabet), which is what a token from `openssl rand` or a password manager carries; one that
 * repeats a handful of characters (`aaaa…`, `abab…`) carries far less than that and is refused too.
 */
export function adminTokenWeakness(token: string): string | undefined {
  const body = token.replace(/=+$/, '');
  const alphabet = TOKEN_ALPHABETS.find((a) => a.pattern.test(token));
  if (!alphabet)
    return 'it holds spaces or characters outside printable ASCII, which a bearer header cannot carry';
  const bits = Math.floor(body.length * Math.log2(alphabet.size));
  if (bits < MIN_ADMIN_TOKEN_BITS) {
    return `a ${body.length}-character ${alphabet.name} token carries about ${bits} bits of entropy, and at least ${MIN_ADMIN_TOKEN_BITS} are needed`;
  }
  const distinct = new Set(body).size;
  if (distinct < 6)
    return `it repeats ${distinct} distinct characters, so it is far easier to guess than its length suggests`;
  return undefined;
}

/** What identifying a node from its TLS socket needs. */
export interface SocketIdentityDeps {
  identityBySerial(serial: string): Promise<NodeIdentity | undefined>;
  /** Makes a renewed certificate current at its first use. */
  promote(nodeId: string, serial: string): Promise<void>;
  /** Tells a superseded certificate from any other refusal, and records its reuse. */
  noteRefusedSerial(serial: string): Promise<RefusedSerial>;
  /**
   * Adopts a certificate whose serial the store does not know (a renewal made after the backup
   * a restored server came from), or refuses it with undefined: see features/nodes/recovery.ts.
   */
  recover?(cert: X509Certificate): Promise<NodeIdentity | undefined>;
  connections: Pick<LiveConnections, 'track'>;
  clock: Clock;
  /** The roots trusted now: a connection made before a root was retired is refused all the same. */
  roots: Pick<FleetRoots, 'trusts' | 'retiring'>;
}

/**
 * The node a TLS socket's verified client certificate belongs to, checked against the store
 * now: a certificate that is no longer current, was revoked or belongs to a decommissioned node
 * is refused even on a connection that was accepted before. Throws UnauthorizedError.
 */
export async function identifySocket(socket: TLSSocket, deps: SocketIdentityDeps): Promise<NodeIdentity> {
  if (typeof socket.getPeerX509Certificate === 'function' && expiredAtHandshake(socket)) {
    throw new UnauthorizedError('the client certificate has expired', 'identity_expired');
  }
  if (typeof socket.getPeerX509Certificate !== 'function' || !socket.authorized) {
    throw new UnauthorizedError('a client certificate issued by the fleet CA is required', 'no_identity');
  }
  const cert = peerCertificate(socket);
  if (!cert || Date.parse(cert.validTo) <= deps.clock.now()) {
    throw new UnauthorizedError('the client certificate has expired', 'identity_expired');
  }
  if (!deps.roots.trusts(cert)) {
    throw new UnauthorizedError(
      'the client certificate comes from a fleet CA that was retired; enroll this node again with a new join token',
      'identity_retired_root',
    );
  }
  const serial = cert.serialNumber.toLowerCase();
  const identity = (await deps.identityBySerial(serial)) ?? (await deps.recover?.(cert));
  if (!identity) {
    if ((await deps.noteRefusedSerial(serial)) === 'superseded') {
      throw new UnauthorizedError(
        'this certificate was superseded by a renewal; only the renewed one is accepted',
        'identity_superseded',
      );
    }
    throw new UnauthorizedError(
      'this identity is not current (revoked, superseded or decommissioned)',
      'identity_revoked',
    );
  }
  if (identity.pending) await deps.promote(identity.id, serial);
  deps.connections.track(identity.id, socket);
  return deps.roots.retiring(cert) ? { ...identity, onRetiringRoot: true } : identity;
}

/** The per-request form of identifySocket, as an onRequest hook of the agent plane. */
export function nodeIdentityCheck(deps: SocketIdentityDeps): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    const identity = await identifySocket(request.raw.socket as TLSSocket, deps);
    request.node = identity;
    request.actor = `node:${identity.id}`;
  };
}

/** A certificate the fleet CA did issue but whose time is over fails the handshake check this way. */
/**
 * The client certificate of a connection, parsed once: a channel asks on every message. What a
 * handshake proved stays the connection's identity (a later renegotiation cannot swap it).
 */
const peerCertificates = new WeakMap<TLSSocket, X509Certificate | undefined>();
function peerCertificate(socket: TLSSocket): X509Certificate | undefined {
  if (!peerCertificates.has(socket)) peerCertificates.set(socket, socket.getPeerX509Certificate());
  return peerCertificates.get(socket);
}

function expiredAtHandshake(socket: TLSSocket): boolean {
  const reason = socket.authorizationError as unknown;
  if (!reason) return false;
  const code = typeof reason === 'string' ? reason : (reason as { code?: string }).code;
  return code === 'CERT_HAS_EXPIRED';
}
