import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  backoffDelay,
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  importKeyPairPem,
  type Log,
  requestJson,
  ServerError,
  sleep,
} from '@muster/host';
import type { ChannelDown, HeartbeatAck, RenewResponse } from '@muster/proto';
import { AgentChannel, type ChannelTls } from './channel.js';
import { type AgentCommands, startCommands } from './commands/index.js';
import type { AgentConfig } from './config.js';
import { DialingAgent } from './dial.js';
import { AgentFatalError, assertCanEnroll, enrollWithRetry, reenroll } from './enrollment.js';
import { installGrant } from './grant.js';
import { identityPaths, loadIdentity, type StoredIdentity, saveRenewedIdentity } from './identity.js';
import { lockDataDir } from './lock.js';
import { MetricsSampler } from './metrics.js';
import { renewalTime, ServerTime, validityOf } from './renewal.js';
import { assertCanRequest, enrollByRequest, type OnRequested } from './request.js';
import { ServerList, serverUrls, unreachable } from './servers.js';
import { signedHeaders, transportTls } from './signing.js';
import { Witness } from './witness.js';

export { AgentFatalError };

export interface AgentHooks {
  onEnrolled?(identity: StoredIdentity): void;
  /** `--request`: the request is queued; the host shows its fingerprint for the operator to compare. */
  onRequested?: OnRequested;
  onHeartbeat?(ack: HeartbeatAck): void;
  onRenewed?(identity: StoredIdentity): void;
}

export interface AgentOptions {
  /** The host's own clock; tests set it off to see the agent correct for it. */
  localClock?: () => number;
}

const DEFAULT_INTERVAL_MS = 10_000;

/** The heartbeat check an agent reports while renewing its certificate fails. */
export const RENEWAL_CHECK = 'certificate renewal';

/**
 * Runs the agent until the signal aborts: enrolls when it holds no identity, then reports
 * heartbeats over mTLS and renews its certificate on time, backing off with full jitter while
 * the server is away.
 */
export async function runAgent(
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  hooks: AgentHooks = {},
  options: AgentOptions = {},
): Promise<void> {
  // A command line that cannot enroll is refused before the data dir is made or locked.
  if (!existsSync(identityPaths(config.dataDir).meta)) {
    if (config.request) assertCanRequest(config);
    else if (!config.grant) assertCanEnroll(config);
  }
  // One agent per data dir: two would hold one identity and keep replacing each other's channel.
  const release = await lockDataDir(config.dataDir);
  try {
    await runHoldingDataDir(config, log, signal, hooks, options);
  } finally {
    await release();
  }
}

async function runHoldingDataDir(
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  hooks: AgentHooks,
  options: AgentOptions,
): Promise<void> {
  const local = options.localClock ?? Date.now;
  let token = config.token;
  let identity = config.grant
    ? await installGrant(config, config.grant, log)
    : await loadIdentity(config.dataDir);
  if (!identity && config.request) {
    identity = await enrollByRequest(config, log, signal, hooks.onRequested ?? (() => {}));
    if (!identity) return;
  } else if (identity) {
    const expired = Date.parse(identity.notAfter) <= local();
    if (expired && token) {
      log.warn('the stored identity has expired; enrolling again under the same name with the join token', {
        node: identity.name,
        notAfter: identity.notAfter,
      });
      identity = await reenroll(identity, token, config, log, signal);
      token = undefined;
      if (!identity) return;
    } else if (expired) {
      log.error(expiredMessage(identity), { node: identity.name, notAfter: identity.notAfter });
    } else if (token) {
      log.info('already enrolled; the join token is used only if the server refuses this identity', {
        node: identity.name,
        nodeId: identity.nodeId,
      });
    }
  } else {
    identity = await enrollWithRetry(config, log, signal);
    if (!identity) return;
    token = undefined;
    log.info('enrolled', { node: identity.name, nodeId: identity.nodeId, notAfter: identity.notAfter });
  }
  hooks.onEnrolled?.(identity);
  const time = new ServerTime(local);
  for (;;) {
    const refused = await heartbeatLoop(identity, config, log, signal, hooks, time, token !== undefined);
    if (!refused || signal.aborted || !token) return;
    const again = await reenroll(refused, token, config, log, signal);
    token = undefined;
    if (signal.aborted) return;
    identity = again ?? refused;
    if (again) hooks.onEnrolled?.(again);
  }
}

function expiredMessage(identity: StoredIdentity): string {
  return (
    `this node's certificate expired at ${identity.notAfter} and an expired identity cannot be renewed; ` +
    `on the server run "muster token create --name ${identity.name}", then start this agent with the line it ` +
    'prints to enroll again under the same name (retrying meanwhile)'
  );
}

/** The channel's TLS, and with --signed-requests the signature of its upgrade. */
function channelTls(identity: StoredIdentity, config: AgentConfig): ChannelTls {
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

/**
 * Reports heartbeats and renews the certificate on time, swapping the new identity into a
 * fresh connection without a restart. Returns the identity when the server refuses it and
 * the caller holds a join token to enroll again; otherwise runs until the signal aborts.
 */
async function heartbeatLoop(
  start: StoredIdentity,
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  hooks: AgentHooks,
  time: ServerTime,
  canEnrollAgain: boolean,
): Promise<StoredIdentity | undefined> {
  // One list for the heartbeats, the channel, renewals and everything else: they move together.
  const servers = new ServerList(serverUrls(config, start.server), log);
  let identity = start;
  let tls = identityAgent(identity, config);
  // One channel held open in the background; heartbeats fall back to HTTP while it is down.
  let intervalMs = DEFAULT_INTERVAL_MS;
  let commands: AgentCommands | undefined;
  const early: ChannelDown[] = [];
  const channel = new AgentChannel(
    servers,
    channelTls(identity, config),
    log,
    (sec) => {
      intervalMs = Math.max(1000, sec * 1000);
    },
    // Messages that come before the command runner is ready (the policy, sent first) wait for it.
    (message) => (commands ? commands.onMessage(message) : early.push(message)),
  );
  commands = await startCommands({
    identity: () => identity,
    dataDir: config.dataDir,
    log,
    signal,
    send: (message) => channel.send(message),
    request: async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => {
      const url = new URL(path, servers.current());
      return (
        await requestJson<T>(url, {
          method,
          ...(body ? { body } : {}),
          headers: signedHeaders(config, identity, method, url, body || undefined),
          agent: tls,
          signal,
        })
      ).body;
    },
  });
  for (const message of early.splice(0)) commands.onMessage(message);
  const schedule = (id: StoredIdentity) => {
    const validity = validityOf(id.certPem);
    const at = renewalTime(validity, config.renewFraction);
    // Belt and braces against a renewal loop: never sooner than half the renewal interval.
    const floor =
      time.now() + Math.max(1000, ((validity.notAfter - validity.issuedAt) * config.renewFraction) / 2);
    return Math.max(at, floor);
  };
  let renewAt = renewalTime(validityOf(identity.certPem), config.renewFraction);
  let rekeyAsked = false;
  /** The certificate a CA rotation already asked this agent to move off. */
  let movingRootFor = '';
  let renewFailures = 0;
  let renewError = '';
  const sampler = new MetricsSampler(config.services);
  const witness = start.ledgerKey
    ? new Witness(
        config.dataDir,
        start.ledgerKey,
        async (from, to) => {
          const proofUrl = new URL(`/v1/agent/ledger/consistency?from=${from}&to=${to}`, servers.current());
          // Whichever identity the agent holds now: `tls` is swapped at each renewal.
          const headers = signedHeaders(config, identity, 'GET', proofUrl);
          return (
            await requestJson<{ hashes: string[] }>(proofUrl, { method: 'GET', headers, agent: tls, signal })
          ).body.hashes;
        },
        log,
      )
    : undefined;
  let failures = 0;
  let seq = 0;
  try {
    while (!signal.aborted) {
      let wait: number;
      let refused = false;
      const target = servers.current();
      try {
        const sample = await sampler.sample(seq++, identity.notAfter);
        if (witness) sample.checks.push(await witness.check());
        // The server shows a failing renewal beside the certificate's expiry.
        if (renewFailures > 0)
          sample.checks.push({ name: RENEWAL_CHECK, ok: false, detail: renewError.slice(0, 512) });
        // The host's own clock goes out, so the server can see how far off it is.
        const sentAt = time.localNow();
        const body = { ...sample, sentAt: new Date(sentAt).toISOString() };
        let ack = await channel.heartbeat(body);
        if (!ack) {
          const url = new URL('/v1/agent/heartbeat', target);
          const headers = signedHeaders(config, identity, 'POST', url, body);
          ack = (await requestJson<HeartbeatAck>(url, { method: 'POST', body, headers, agent: tls, signal }))
            .body;
          servers.succeeded(target);
        }
        time.observe(ack.serverTime, sentAt);
        if (failures > 0) log.info('reporting again', { afterFailures: failures });
        failures = 0;
        intervalMs = Math.max(1000, ack.heartbeatIntervalSec * 1000);
        if (witness && ack.checkpoint) await witness.observe(ack.checkpoint);
        if (ack.rekey && !rekeyAsked) {
          log.info('the operator asked for a fresh key; renewing now');
          rekeyAsked = true;
        }
        // A CA rotation: renew onto the new root at a random moment in the window the server
        // gives, so the fleet does not renew at once; asked once per certificate.
        if (ack.renewWithinSec !== undefined && movingRootFor !== identity.certPem) {
          movingRootFor = identity.certPem;
          renewAt = Math.min(renewAt, time.now() + Math.random() * ack.renewWithinSec * 1000);
          log.info('the fleet CA is being rotated; renewing onto the new root', {
            within: `${ack.renewWithinSec} s`,
          });
        }
        await commands.afterHeartbeat(ack);
        hooks.onHeartbeat?.(ack);
        wait = intervalMs * (0.9 + 0.2 * Math.random());
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        wait = backoffDelay(failures, 1000, Math.max(intervalMs * 3, 60_000));
        if (unreachable(err)) {
          // The list says which server failed and where it goes next, once per backoff step.
          wait = servers.failed(target, err);
          log.debug('heartbeat failed; trying the next server', { error: (err as Error).message });
        } else if (err instanceof ServerError && err.status === 401) {
          refused = true;
          log.error(refusedMessage(identity, err), { detail: err.message, retryInMs: wait });
          if (canEnrollAgain) return identity;
        } else if (untrustedServer(err)) {
          // The server's certificate is from a root this node does not hold: after a CA rotation
          // finished while the host was away, only enrolling again (with a new pin) helps.
          refused = true;
          log.error(untrustedMessage(identity, canEnrollAgain), {
            server: target.origin,
            error: (err as Error).message,
            ...(canEnrollAgain ? {} : { retryInMs: wait }),
          });
          if (canEnrollAgain) return identity;
          // With several servers, the others may still hold this node's CA: try the next.
          if (servers.urls.length > 1) wait = servers.failed(target, err, 'not trusting the server at');
        } else {
          log.warn('heartbeat failed; retrying', { error: (err as Error).message, retryInMs: wait });
        }
      }
      // Renewal comes after a heartbeat, so the first answer has corrected the clock by then.
      if (!refused && (rekeyAsked || time.now() >= renewAt)) {
        const rekey = config.rekey || rekeyAsked;
        const renewVia = servers.current();
        try {
          const renewed = await renew(identity, tls, renewVia, rekey, signal, config);
          await saveRenewedIdentity(config.dataDir, renewed);
          const old = tls;
          tls = identityAgent(renewed, config);
          channel.useIdentity(channelTls(renewed, config));
          retireWhenIdle(old);
          identity = renewed;
          renewAt = schedule(renewed);
          log.info('renewed the node certificate', {
            notAfter: renewed.notAfter,
            rekeyed: rekey,
            nextRenewal: new Date(renewAt).toISOString(),
          });
          rekeyAsked = false;
          renewFailures = 0;
          hooks.onRenewed?.(renewed);
        } catch (err) {
          if (signal.aborted) break;
          if (err instanceof ServerError && err.status === 401) {
            log.error(refusedMessage(identity, err), { detail: err.message });
            if (canEnrollAgain) return identity;
          }
          if (err instanceof ServerError && err.problem?.code === 'rekey_required') rekeyAsked = true;
          // The next attempt goes to the next server; its own schedule below stands.
          if (unreachable(err)) servers.failed(renewVia, err);
          renewFailures++;
          renewError = (err as Error).message;
          const left = Date.parse(identity.notAfter) - time.now();
          const retryIn = Math.max(
            1000,
            backoffDelay(renewFailures, 1000, Math.max(1000, Math.min(300_000, left / 4))),
          );
          renewAt = time.now() + retryIn;
          log.warn('renewal failed; retrying', { error: (err as Error).message, retryInMs: retryIn });
        }
      }
      // A renewal due sooner than the next heartbeat shortens the wait, unless the server
      // refuses this identity: then nothing can be renewed, and the backoff stands.
      await sleep(refused ? wait : Math.max(0, Math.min(wait, renewAt - time.now())), signal);
    }
  } finally {
    await commands.close();
    await channel.close();
    tls.destroy();
  }
  return undefined;
}

/** TLS verification failures that mean the server's chain leads to no root in ca.pem. */
const UNTRUSTED_SERVER_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

function untrustedServer(err: unknown): boolean {
  return UNTRUSTED_SERVER_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

function untrustedMessage(identity: StoredIdentity, enrollingAgain: boolean): string {
  const what =
    "the server's certificate does not lead to a fleet CA this node holds (was the CA rotated while it was away?)";
  return enrollingAgain
    ? `${what}; enrolling again with the join token`
    : `${what}; on the server run "muster token create --name ${identity.name}" and start this agent with the line it prints (retrying meanwhile)`;
}

function refusedMessage(identity: StoredIdentity, err: ServerError): string {
  if (err.problem?.code === 'identity_expired') return expiredMessage(identity);
  if (err.problem?.code === 'identity_superseded')
    return 'the server says this certificate was superseded by a renewal: another host may hold this identity; retrying';
  return (
    'the server refuses this node identity (decommissioned or revoked); to bring the host back, run ' +
    `"muster token create --name ${identity.name}" on the server and start this agent with the line it prints (retrying meanwhile)`
  );
}
