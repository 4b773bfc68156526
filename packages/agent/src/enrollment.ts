import {
  backoffDelay,
  caPinOf,
  createCsrPem,
  exportPrivateKeyPem,
  generateKeyPair,
  type Log,
  requestJson,
  ServerError,
  sleep,
  UsageError,
} from '@muster/host';
import { type EnrollRequest, type EnrollResponse, keyFingerprint } from '@muster/proto';
import type { AgentConfig } from './config.js';
import { DialingAgent } from './dial.js';
import { type StoredIdentity, saveRenewedIdentity } from './identity.js';
import { hostFacts } from './metrics.js';
import { fetchPinnedCa, PinMismatchError, pinsIn } from './pinning.js';
import { ServerList, serverUrls, unreachable } from './servers.js';
import { pinInBand } from './signing.js';

/** The agent cannot go on without an operator: a bad token, a taken name, a wrong pin. */
export class AgentFatalError extends Error {
  constructor(
    message: string,
    /** The server's chain led to no CA the agent trusts: nothing was sent to it. */
    readonly untrustedServer = false,
  ) {
    super(message);
    this.name = 'AgentFatalError';
  }
}

/**
 * Enrolls again under the stored name with a fresh key, when the server refuses the identity
 * this host holds (expired, its node decommissioned, or its CA retired by a rotation). The
 * server is trusted if its chain leads to a root the agent already holds (ca.pem, which a
 * renewal during a rotation fills with the new root) or to the --ca-pin it was given now, never
 * merely to the pin of its first enrollment. A refusal is logged and the agent carries on with
 * what it has, so it never exits or sits silent.
 */
export async function reenroll(
  identity: StoredIdentity,
  token: string,
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
): Promise<StoredIdentity | undefined> {
  const held = pinsIn(identity.caPem);
  try {
    const again = await enrollWithRetry(
      {
        ...config,
        token,
        name: identity.name,
        servers: serverUrls(config, identity.server),
        server: config.server ?? new URL(identity.server),
        caPin: config.caPin ?? held[0] ?? identity.caPin,
        ...(config.rootPin ? {} : identity.fleetRoot ? { rootPin: keyFingerprint(identity.fleetRoot) } : {}),
      },
      log,
      signal,
      held,
    );
    if (again)
      log.info('enrolled again', { node: again.name, nodeId: again.nodeId, notAfter: again.notAfter });
    return again;
  } catch (err) {
    if (!(err instanceof AgentFatalError)) throw err;
    const hint = err.untrustedServer
      ? '; if the fleet CA was rotated while this host was away, start the agent with the --ca-pin of a new join line (muster token create)'
      : '';
    log.error('enrolling again failed; carrying on with the identity held', {
      error: `${err.message}${hint}`,
    });
    return undefined;
  }
}

/** What enrolling needs from the command line; without it nothing is tried, a usage error (exit 2). */
export function assertCanEnroll(config: AgentConfig): { server: URL; token: string; caPin: string } {
  const { server, token, caPin } = config;
  if (server && token && caPin) return { server, token, caPin };
  const missing = [!server && '--server', !caPin && '--ca-pin', !token && '--token-file']
    .filter(Boolean)
    .join(', ');
  throw new UsageError(
    `this agent has no identity in ${config.dataDir} yet; to enroll it needs ${missing} (run "muster token create" on the server for the exact line)`,
  );
}

/**
 * Enrolls with the join token, trusting the server only if its chain leads to the pinned CA
 * (or one of `alsoTrusted`, the roots an enrolled agent already holds). Retries what may pass.
 */
export async function enrollWithRetry(
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  alsoTrusted: readonly string[] = [],
): Promise<StoredIdentity | undefined> {
  const { token, caPin } = assertCanEnroll(config);
  const servers = new ServerList(serverUrls(config), log);
  const pinFailed = new Set<string>();
  const pins = [...new Set([caPin, ...alsoTrusted])];
  const keys = await generateKeyPair();
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  for (let attempt = 0; !signal.aborted; ) {
    // Every server is held to the same pin: the join line names the fleet, not one replica.
    const server = servers.current();
    try {
      // Behind a TLS-terminating proxy the chain is the proxy's: the pin is checked in-band below.
      const caPem = config.signedRequests ? undefined : await fetchPinnedCa(server, pins);
      const name = config.name;
      const body: EnrollRequest = {
        token,
        csr: await createCsrPem(keys, name ?? 'muster-node'),
        facts: hostFacts(),
        ...(name ? { name } : {}),
        ...(config.profile ? { profile: config.profile } : {}),
        ...(Object.keys(config.labels).length > 0 ? { labels: { ...config.labels } } : {}),
      };
      const pinned = new DialingAgent(caPem ? { ca: caPem } : config.proxyCa ? { ca: config.proxyCa } : {});
      const { body: enrolled } = await requestJson<EnrollResponse>(new URL('/v1/enroll', server), {
        method: 'POST',
        body,
        agent: pinned,
        signal,
      }).finally(() => pinned.destroy());
      const trustedPin = caPem ? caPinOf(caPem) : signedPin(enrolled, pins);
      if (enrolled.trust.caPin !== trustedPin)
        throw new AgentFatalError('the server answered with a different CA than pinned');
      const fleetRoot = pinnedFleetRoot(enrolled, config, log);
      const identity: StoredIdentity = {
        nodeId: enrolled.nodeId,
        name: enrolled.name,
        server: server.origin,
        caPin: trustedPin,
        keyPem,
        certPem: enrolled.certificate,
        caPem: enrolled.caBundle,
        notAfter: enrolled.notAfter,
        ...(enrolled.trust.ledgerKey ? { ledgerKey: enrolled.trust.ledgerKey } : {}),
        ...(fleetRoot ? { fleetRoot } : {}),
        profile: enrolled.profile,
        labels: enrolled.labels,
      };
      await saveRenewedIdentity(config.dataDir, identity);
      return identity;
    } catch (err) {
      if (err instanceof AgentFatalError) throw err;
      if (err instanceof PinMismatchError) {
        // Nothing was sent to it. One impostor among several URLs is skipped; all of them is fatal.
        pinFailed.add(server.href);
        if (pinFailed.size === servers.urls.length) throw new AgentFatalError(err.message, true);
        await sleep(servers.failed(server, err, 'refusing the server that fails the --ca-pin at'), signal);
        continue;
      }
      if (err instanceof ServerError && err.status !== 429 && err.status < 500) {
        throw new AgentFatalError(`enrollment refused (${err.status}): ${err.message}`);
      }
      if (signal.aborted) break;
      if (unreachable(err)) {
        await sleep(servers.failed(server, err), signal);
        continue;
      }
      attempt++;
      const wait = retryWait(err, attempt);
      log.warn('enrollment failed; retrying', { error: (err as Error).message, retryInMs: wait });
      await sleep(wait, signal);
    }
  }
  return undefined;
}

/** How long to wait before asking again: what the server said (429 Retry-After), else the backoff. */
export function retryWait(err: unknown, attempt: number): number {
  return err instanceof ServerError && err.retryAfterSec
    ? err.retryAfterSec * 1000
    : backoffDelay(attempt, 1000, 60_000);
}

/** The in-band --ca-pin check of a signed enrollment; a failure is fatal: the token went to that server. */
function signedPin(enrolled: EnrollResponse, pins: readonly string[]): string {
  try {
    return pinInBand(enrolled, pins);
  } catch (err) {
    throw new AgentFatalError(
      `refusing the enrollment answer from behind the proxy: ${(err as Error).message}; the join token must be considered spent`,
      true,
    );
  }
}

/**
 * The fleet root key the server named, if it is the one the join line pinned. No pin, no
 * root: the node then runs no commands rather than trust a key on first use.
 */
export function pinnedFleetRoot(enrolled: EnrollResponse, config: AgentConfig, log: Log): string | undefined {
  const offered = enrolled.trust.fleetRoot;
  if (!config.rootPin) {
    log.warn(
      'enrolled without --root-pin: this node will run no commands (the join line from "muster token create" carries the pin)',
    );
    return undefined;
  }
  if (!offered || keyFingerprint(offered) !== config.rootPin)
    throw new AgentFatalError(
      'the server named a fleet root key that does not match --root-pin; refusing to enroll',
    );
  return offered;
}
