import { X509Certificate } from 'node:crypto';
import {
  backoffDelay,
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  importKeyPairPem,
  type Log,
  requestJson,
  ServerError,
} from '@muster/host';
import type { HeartbeatAck, RenewResponse } from '@muster/proto';
import type { ChannelTls } from './channel.js';
import type { AgentConfig } from './config.js';
import { DialingAgent } from './dial.js';
import { type StoredIdentity, saveRenewedIdentity } from './identity.js';
import { refusedMessage } from './refusals.js';
import { renewalTime, type ServerTime, validityOf } from './renewal.js';
import { type ServerList, unreachable } from './servers.js';
import { signedHeaders, transportTls } from './signing.js';

/** The heartbeat check an agent reports while renewing its certificate fails. */
export const RENEWAL_CHECK = 'certificate renewal';

/** What one renewal attempt came to; `give-up` when the server refused the identity and a token can enroll again. */
export type RenewOutcome = 'renewed' | 'failed' | 'give-up' | 'aborted';

/** The channel's TLS, and with --signed-requests the signature of its upgrade. */
export function channelTls(identity: StoredIdentity, config: AgentConfig): ChannelTls {
  return {
    ...transportTls(config, identity),
    ...(config.signedRequests ? { sign: (url: URL) => signedHeaders(config, identity, 'GET', url) } : {}),
  };
}

function identityAgent(identity: StoredIdentity, config: AgentConfig): DialingAgent {
  return new DialingAgent(transportTls(config, identity), { keepAlive: true, maxSockets: 1 });
}

/** Closes an agent's connections once no request is using them. */
function retireWhenIdle(agent: DialingAgent): void {
  const busy = () => Object.values(agent.sockets).some((list) => (list?.length ?? 0) > 0);
  if (!busy()) {
    agent.destroy();
    return;
  }
  agent.on('free', () => setImmediate(() => !busy() && agent.destroy()));
}

/**
 * The node's identity over time: the connection that presents it, when it is due for renewal
 * (on schedule, asked by the operator, or moving onto a rotated CA root), and the renewal
 * itself, which swaps the new identity in without a restart.
 */
export class Renewer {
  private current: StoredIdentity;
  private agent: DialingAgent;
  /** When the next renewal is due, on the server's clock. */
  renewAt: number;
  private rekeyAsked = false;
  /** The certificate a CA rotation already asked this agent to move off. */
  private movingRootFor = '';
  private failures = 0;
  private lastError = '';

  constructor(
    start: StoredIdentity,
    private readonly config: AgentConfig,
    private readonly time: ServerTime,
    private readonly log: Log,
    /** Called with a renewed identity as soon as it is the one presented (the channel moves to it). */
    private readonly swapped: (renewed: StoredIdentity) => void,
  ) {
    this.current = start;
    this.agent = identityAgent(start, config);
    this.renewAt = renewalTime(validityOf(start.certPem), config.renewFraction);
  }

  get identity(): StoredIdentity {
    return this.current;
  }

  /** With --signed-requests, the RFC 9421 headers that sign a request with the identity held now. */
  headers(method: string, url: URL, body?: unknown): Record<string, string> {
    return signedHeaders(this.config, this.current, method, url, body);
  }

  /** The connection presenting the identity held now (swapped at each renewal). */
  get tls(): DialingAgent {
    return this.agent;
  }

  /** The failing-renewal check for the next heartbeat, while renewals fail. */
  check(): { name: string; ok: false; detail: string } | undefined {
    if (this.failures === 0) return undefined;
    return { name: RENEWAL_CHECK, ok: false, detail: this.lastError.slice(0, 512) };
  }

  /** Takes in what a heartbeat answer asks of the identity: a fresh key, or a move to a new CA root. */
  heard(ack: HeartbeatAck): void {
    if (ack.rekey && !this.rekeyAsked) {
      this.log.info('the operator asked for a fresh key; renewing now');
      this.rekeyAsked = true;
    }
    // A CA rotation: renew onto the new root at a random moment in the window the server
    // gives, so the fleet does not renew at once; asked once per certificate.
    if (ack.renewWithinSec !== undefined && this.movingRootFor !== this.current.certPem) {
      this.movingRootFor = this.current.certPem;
      this.renewAt = Math.min(this.renewAt, this.time.now() + Math.random() * ack.renewWithinSec * 1000);
      this.log.info('the fleet CA is being rotated; renewing onto the new root', {
        within: `${ack.renewWithinSec} s`,
      });
    }
  }

  due(): boolean {
    return this.rekeyAsked || this.time.now() >= this.renewAt;
  }

  /** Renews once over the current server; on failure schedules the retry (backing off). */
  async renew(servers: ServerList, signal: AbortSignal, canEnrollAgain: boolean): Promise<RenewOutcome> {
    const rekey = this.config.rekey || this.rekeyAsked;
    const renewVia = servers.current();
    try {
      const renewed = await renew(this.current, this.agent, renewVia, rekey, signal, this.config);
      await saveRenewedIdentity(this.config.dataDir, renewed);
      const old = this.agent;
      this.agent = identityAgent(renewed, this.config);
      this.swapped(renewed);
      retireWhenIdle(old);
      this.current = renewed;
      this.renewAt = this.schedule(renewed);
      this.log.info('renewed the node certificate', {
        notAfter: renewed.notAfter,
        rekeyed: rekey,
        nextRenewal: new Date(this.renewAt).toISOString(),
      });
      this.rekeyAsked = false;
      this.failures = 0;
      return 'renewed';
    } catch (err) {
      if (signal.aborted) return 'aborted';
      if (err instanceof ServerError && err.status === 401) {
        this.log.error(refusedMessage(this.current, err), { detail: err.message });
        if (canEnrollAgain) return 'give-up';
      }
      if (err instanceof ServerError && err.problem?.code === 'rekey_required') this.rekeyAsked = true;
      // The next attempt goes to the next server; its own schedule below stands.
      if (unreachable(err)) servers.failed(renewVia, err);
      this.failed(err as Error);
      return 'failed';
    }
  }

  private failed(err: Error): void {
    this.failures++;
    this.lastError = err.message;
    const left = Date.parse(this.current.notAfter) - this.time.now();
    const retryIn = Math.max(
      1000,
      backoffDelay(this.failures, 1000, Math.max(1000, Math.min(300_000, left / 4))),
    );
    this.renewAt = this.time.now() + retryIn;
    this.log.warn('renewal failed; retrying', { error: err.message, retryInMs: retryIn });
  }

  private schedule(id: StoredIdentity): number {
    const validity = validityOf(id.certPem);
    const at = renewalTime(validity, this.config.renewFraction);
    // Belt and braces against a renewal loop: never sooner than half the renewal interval.
    const floor =
      this.time.now() +
      Math.max(1000, ((validity.notAfter - validity.issuedAt) * this.config.renewFraction) / 2);
    return Math.max(at, floor);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Asks for a new certificate over the current identity; checks it before anything is replaced. */
async function renew(
  identity: StoredIdentity,
  tls: DialingAgent,
  server: URL,
  rekey: boolean,
  signal: AbortSignal,
  config: AgentConfig,
): Promise<StoredIdentity> {
  const keys = rekey ? await generateKeyPair() : importKeyPairPem(identity.keyPem);
  const keyPem = rekey ? exportPrivateKeyPem(keys.privateKey) : identity.keyPem;
  const url = new URL('/v1/agent/renew', server);
  const csr = { csr: await createCsrPem(keys, identity.name) };
  const { body } = await requestJson<RenewResponse>(url, {
    method: 'POST',
    body: csr,
    headers: signedHeaders(config, identity, 'POST', url, csr),
    agent: tls,
    signal,
  });
  const cert = new X509Certificate(body.certificate);
  if (!cert.checkPrivateKey(keys.privateKey)) throw new Error('the renewed certificate is not for this key');
  // During a CA rotation the bundle holds the old root and the new one that issued this certificate.
  if (!certificatesIn(body.caBundle).some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey)))
    throw new Error('the renewed certificate does not chain to the fleet CA');
  return { ...identity, keyPem, certPem: body.certificate, caPem: body.caBundle, notAfter: body.notAfter };
}

/** Every certificate in a PEM bundle. */
function certificatesIn(bundle: string): X509Certificate[] {
  return (bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  );
}
