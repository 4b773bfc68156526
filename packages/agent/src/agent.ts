import { existsSync } from 'node:fs';
import type { Log } from '@muster/host';
import type { HeartbeatAck } from '@muster/proto';
import type { AgentConfig } from './config.js';
import { AgentFatalError, assertCanEnroll, enrollWithRetry, reenroll } from './enrollment.js';
import { installGrant } from './grant.js';
import { heartbeatLoop } from './heartbeat.js';
import { identityPaths, loadIdentity, type StoredIdentity } from './identity.js';
import { lockDataDir } from './lock.js';
import { expiredMessage } from './refusals.js';
import { ServerTime } from './renewal.js';
import { assertCanRequest, enrollByRequest, type OnRequested } from './request.js';

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

export { RENEWAL_CHECK } from './renewer.js';

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
