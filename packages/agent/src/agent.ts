import { Agent as HttpsAgent } from 'node:https';
import {
  backoffDelay,
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  type Log,
  requestJson,
  ServerError,
  sleep,
} from '@muster/host';
import type { EnrollRequest, EnrollResponse, HeartbeatAck } from '@muster/proto';
import type { AgentConfig } from './config.js';
import { loadIdentity, type StoredIdentity, saveIdentity } from './identity.js';
import { hostFacts, MetricsSampler } from './metrics.js';
import { fetchPinnedCa } from './pinning.js';
import { Witness } from './witness.js';

/** The agent cannot go on without an operator: a bad token, a taken name, a wrong pin. */
export class AgentFatalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentFatalError';
  }
}

export interface AgentHooks {
  onEnrolled?(identity: StoredIdentity): void;
  onHeartbeat?(ack: HeartbeatAck): void;
}

const DEFAULT_INTERVAL_MS = 10_000;

/**
 * Runs the agent until the signal aborts: enrolls when it holds no identity, then reports
 * heartbeats over mTLS, backing off with full jitter while the server is away.
 */
export async function runAgent(
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  hooks: AgentHooks = {},
): Promise<void> {
  let identity = await loadIdentity(config.dataDir);
  if (identity) {
    if (config.token)
      log.info('already enrolled; ignoring the join token', { node: identity.name, nodeId: identity.nodeId });
  } else {
    identity = await enrollWithRetry(config, log, signal);
    if (!identity) return;
    log.info('enrolled', { node: identity.name, nodeId: identity.nodeId, notAfter: identity.notAfter });
  }
  hooks.onEnrolled?.(identity);
  await heartbeatLoop(identity, config, log, signal, hooks);
}

async function enrollWithRetry(
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
): Promise<StoredIdentity | undefined> {
  const { server, token, caPin } = config;
  if (!server || !token || !caPin) {
    const missing = [!server && '--server', !caPin && '--ca-pin', !token && '--token']
      .filter(Boolean)
      .join(', ');
    throw new AgentFatalError(
      `this agent has no identity in ${config.dataDir} yet; to enroll it needs ${missing} (run "muster token create" on the server for the exact line)`,
    );
  }
  const keys = await generateKeyPair();
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const caPem = await fetchPinnedCa(server, caPin);
      const name = config.name;
      const body: EnrollRequest = {
        token,
        csr: await createCsrPem(keys, name ?? 'muster-node'),
        facts: hostFacts(),
        ...(name ? { name } : {}),
        ...(config.profile ? { profile: config.profile } : {}),
        ...(Object.keys(config.labels).length > 0 ? { labels: { ...config.labels } } : {}),
      };
      const { body: enrolled } = await requestJson<EnrollResponse>(new URL('/v1/enroll', server), {
        method: 'POST',
        body,
        ca: caPem,
        signal,
      });
      if (enrolled.trust.caPin !== caPin)
        throw new AgentFatalError('the server answered with a different CA than pinned');
      const identity: StoredIdentity = {
        nodeId: enrolled.nodeId,
        name: enrolled.name,
        server: server.origin,
        caPin,
        keyPem,
        certPem: enrolled.certificate,
        caPem: enrolled.caBundle,
        notAfter: enrolled.notAfter,
        ...(enrolled.trust.ledgerKey ? { ledgerKey: enrolled.trust.ledgerKey } : {}),
      };
      await saveIdentity(config.dataDir, identity);
      return identity;
    } catch (err) {
      if (err instanceof AgentFatalError || (err as Error).name === 'PinMismatchError')
        throw new AgentFatalError((err as Error).message);
      if (err instanceof ServerError && err.status !== 429 && err.status < 500) {
        throw new AgentFatalError(`enrollment refused (${err.status}): ${err.message}`);
      }
      const wait =
        err instanceof ServerError && err.retryAfterSec
          ? err.retryAfterSec * 1000
          : backoffDelay(attempt, 1000, 60_000);
      log.warn('enrollment failed; retrying', { error: (err as Error).message, retryInMs: wait });
      await sleep(wait, signal);
    }
  }
  return undefined;
}

async function heartbeatLoop(
  identity: StoredIdentity,
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  hooks: AgentHooks,
): Promise<void> {
  const server = config.server ?? new URL(identity.server);
  // One kept-alive mTLS connection carries every heartbeat; the fleet CA is the only root trusted.
  const tls = new HttpsAgent({
    keepAlive: true,
    maxSockets: 1,
    key: identity.keyPem,
    cert: identity.certPem,
    ca: identity.caPem,
  });
  const sampler = new MetricsSampler(config.services);
  const url = new URL('/v1/agent/heartbeat', server);
  const witness = identity.ledgerKey
    ? new Witness(
        config.dataDir,
        identity.ledgerKey,
        async (from, to) => {
          const proofUrl = new URL(`/v1/agent/ledger/consistency?from=${from}&to=${to}`, server);
          return (await requestJson<{ hashes: string[] }>(proofUrl, { method: 'GET', agent: tls, signal }))
            .body.hashes;
        },
        log,
      )
    : undefined;
  let intervalMs = DEFAULT_INTERVAL_MS;
  let failures = 0;
  let seq = 0;
  try {
    while (!signal.aborted) {
      let wait: number;
      try {
        const sample = await sampler.sample(seq++, identity.notAfter);
        if (witness) sample.checks.push(await witness.check());
        const { body: ack } = await requestJson<HeartbeatAck>(url, {
          method: 'POST',
          body: { ...sample, sentAt: new Date().toISOString() },
          agent: tls,
          signal,
        });
        if (failures > 0) log.info('reporting again', { afterFailures: failures });
        failures = 0;
        intervalMs = Math.max(1000, ack.heartbeatIntervalSec * 1000);
        if (witness && ack.checkpoint) await witness.observe(ack.checkpoint);
        hooks.onHeartbeat?.(ack);
        wait = intervalMs * (0.9 + 0.2 * Math.random());
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        wait = Math.max(1000, backoffDelay(failures, 1000, Math.max(intervalMs * 3, 60_000)));
        if (err instanceof ServerError && err.status === 401) {
          log.error(
            'the server refuses this node identity (decommissioned, revoked or expired); enroll again with a new join token',
            {
              detail: err.message,
              retryInMs: wait,
            },
          );
        } else {
          log.warn('heartbeat failed; retrying', { error: (err as Error).message, retryInMs: wait });
        }
      }
      await sleep(wait, signal);
    }
  } finally {
    tls.destroy();
  }
}
