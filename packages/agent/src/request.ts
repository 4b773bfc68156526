import { X509Certificate } from 'node:crypto';
import {
  backoffDelay,
  caPinOf,
  createCsrPem,
  type Log,
  requestJson,
  ServerError,
  sleep,
  UsageError,
} from '@muster/host';
import type { EnrollResponse, NodeRequestBody, NodeRequestState } from '@muster/proto';
import type { AgentConfig } from './config.js';
import { DialingAgent } from './dial.js';
import { AgentFatalError, pinnedFleetRoot, retryWait } from './enrollment.js';
import { type StoredIdentity, saveRenewedIdentity } from './identity.js';
import { hostFacts } from './metrics.js';
import { fetchPinnedCa, PinMismatchError } from './pinning.js';
import {
  clearRequest,
  loadRequestMemo,
  type RequestKey,
  requestKey,
  saveRequestMemo,
} from './request-key.js';
import { ServerList, serverUrls, unreachable } from './servers.js';

/** The longest wait between two polls of a pending request. */
const POLL_CAP_MS = 10_000;

/** Told once per request, so the host can show the fingerprint the operator must compare. */
export type OnRequested = (state: NodeRequestState, server: URL) => void;

/** What `--request` needs: where to ask, and the pin to trust it by. */
export function assertCanRequest(config: AgentConfig): { server: URL; caPin: string } {
  const { server, caPin } = config;
  if (server && caPin) return { server, caPin };
  const missing = [!server && '--server', !caPin && '--ca-pin'].filter(Boolean).join(' and ');
  throw new UsageError(
    `--request needs ${missing}: the agent-plane URL and the fleet CA pin (muster ca status on the server shows the pin)`,
  );
}

/** The body a request sends: the CSR of the host's key, and what it would like to be. */
export function requestBody(config: AgentConfig, key: RequestKey): NodeRequestBody {
  return {
    csr: createCsrPem(key.keys, config.name ?? 'muster-node'),
    facts: hostFacts(),
    ...(config.name ? { name: config.name } : {}),
    ...(config.profile ? { profile: config.profile } : {}),
    ...(Object.keys(config.labels).length > 0 ? { labels: { ...config.labels } } : {}),
  };
}

/**
 * Enrollment without a token: queues a request for this host's key (made here, kept in the data
 * dir) and polls it, with the shared backoff, until an operator approves it (the certificate is
 * installed as a token enrollment would) or it is rejected or expires (fatal). A restarted agent
 * polls the request it already made.
 */
export async function enrollByRequest(
  config: AgentConfig,
  log: Log,
  signal: AbortSignal,
  onRequested: OnRequested,
): Promise<StoredIdentity | undefined> {
  const { caPin } = assertCanRequest(config);
  const servers = new ServerList(serverUrls(config), log);
  const key = await requestKey(config.dataDir);
  let memo = await loadRequestMemo(config.dataDir);
  if (memo && memo.fingerprint !== key.fingerprint) memo = undefined;
  const cas = new Map<string, string>();
  const pinFailed = new Set<string>();
  let told = '';
  for (let attempt = 0; !signal.aborted; ) {
    const server = servers.current();
    try {
      const caPem = cas.get(server.href) ?? (await fetchPinnedCa(server, caPin));
      cas.set(server.href, caPem);
      const tls = new DialingAgent({ ca: caPem });
      let state: NodeRequestState;
      try {
        state = memo
          ? ((await poll(server, memo.id, tls, signal).catch((err) => {
              if (err instanceof ServerError && err.status === 404) return undefined;
              throw err;
            })) ?? (await ask(server, config, key, tls, signal)))
          : await ask(server, config, key, tls, signal);
      } finally {
        tls.destroy();
      }
      servers.succeeded(server);
      if (state.fingerprint !== key.fingerprint)
        throw new AgentFatalError(
          `the server reports the key fingerprint ${state.fingerprint}, but this host's key is ${key.fingerprint}; refusing to go on`,
        );
      if (!memo || memo.id !== state.id) {
        memo = { id: state.id, server: server.origin, name: state.name, fingerprint: state.fingerprint };
        await saveRequestMemo(config.dataDir, memo);
      }
      if (told !== state.id) {
        told = state.id;
        log.info('enrollment request queued; an operator must approve it', {
          node: state.name,
          fingerprint: state.fingerprint,
          expiresAt: state.expiresAt,
        });
        onRequested(state, server);
      }
      if (state.status === 'approved' && state.enrolled) {
        const identity = await installEnrolled(config, log, state.enrolled, key, server, caPinOf(caPem));
        log.info('enrollment request approved', { node: identity.name, nodeId: identity.nodeId });
        return identity;
      }
      if (state.status === 'rejected' || state.status === 'expired') {
        await clearRequest(config.dataDir);
        throw new AgentFatalError(
          state.status === 'rejected'
            ? `the enrollment request for ${state.name} was rejected by an operator; this host was not let in`
            : `the enrollment request for ${state.name} expired at ${state.expiresAt} before an operator approved it; start the agent with --request again to ask anew`,
        );
      }
      attempt++;
      await sleep(Math.max(250, backoffDelay(attempt, 1000, POLL_CAP_MS)), signal);
    } catch (err) {
      if (err instanceof AgentFatalError) throw err;
      if (signal.aborted) break;
      if (err instanceof PinMismatchError) {
        pinFailed.add(server.href);
        if (pinFailed.size === servers.urls.length) throw new AgentFatalError(err.message, true);
        await sleep(servers.failed(server, err, 'refusing the server that fails the --ca-pin at'), signal);
        continue;
      }
      if (err instanceof ServerError && err.status !== 429 && err.status < 500)
        throw new AgentFatalError(`enrollment request refused (${err.status}): ${err.message}`);
      if (unreachable(err)) {
        await sleep(servers.failed(server, err), signal);
        continue;
      }
      attempt++;
      const wait = retryWait(err, attempt);
      log.warn('enrollment request failed; retrying', { error: (err as Error).message, retryInMs: wait });
      await sleep(wait, signal);
    }
  }
  return undefined;
}

async function ask(
  server: URL,
  config: AgentConfig,
  key: RequestKey,
  agent: DialingAgent,
  signal: AbortSignal,
): Promise<NodeRequestState> {
  const { body } = await requestJson<NodeRequestState>(new URL('/v1/enroll/requests', server), {
    method: 'POST',
    body: requestBody(config, key),
    agent,
    signal,
  });
  return body;
}

async function poll(
  server: URL,
  id: string,
  agent: DialingAgent,
  signal: AbortSignal,
): Promise<NodeRequestState> {
  const url = new URL(`/v1/enroll/requests/${encodeURIComponent(id)}`, server);
  return (await requestJson<NodeRequestState>(url, { method: 'GET', agent, signal })).body;
}

/**
 * Checks a certificate the server (or a grant) hands over before anything is kept: it must be
 * for this host's key and chain to the CA bundle that comes with it, whose root is the one
 * trusted. Then it becomes the identity, exactly as a token enrollment's would.
 */
export async function installEnrolled(
  config: AgentConfig,
  log: Log,
  enrolled: EnrollResponse,
  key: RequestKey,
  server: URL,
  trustedPin: string,
): Promise<StoredIdentity> {
  if (enrolled.trust.caPin !== trustedPin)
    throw new AgentFatalError('the server answered with a different CA than pinned');
  const cert = new X509Certificate(enrolled.certificate);
  if (!cert.checkPrivateKey(key.keys.privateKey))
    throw new AgentFatalError('the certificate is not for the key this host holds; refusing it');
  const cas = (
    enrolled.caBundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
  ).map((pem) => new X509Certificate(pem));
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey)))
    throw new AgentFatalError('the certificate does not chain to the fleet CA it came with; refusing it');
  const fleetRoot = pinnedFleetRoot(enrolled, config, log);
  const identity: StoredIdentity = {
    nodeId: enrolled.nodeId,
    name: enrolled.name,
    server: server.origin,
    caPin: trustedPin,
    keyPem: key.keyPem,
    certPem: enrolled.certificate,
    caPem: enrolled.caBundle,
    notAfter: enrolled.notAfter,
    ...(enrolled.trust.ledgerKey ? { ledgerKey: enrolled.trust.ledgerKey } : {}),
    ...(fleetRoot ? { fleetRoot } : {}),
    profile: enrolled.profile,
    labels: enrolled.labels,
  };
  await saveRenewedIdentity(config.dataDir, identity);
  await clearRequest(config.dataDir);
  return identity;
}
