import { backoffDelay, type Log, requestJson, ServerError, sleep } from '@muster/host';
import type { HeartbeatAck } from '@muster/proto';
import type { AgentHooks } from './agent.js';
import type { AgentChannel } from './channel.js';
import type { AgentConfig } from './config.js';
import { linkCommands } from './heartbeat-commands.js';
import { ledgerWitness } from './heartbeat-witness.js';
import type { StoredIdentity } from './identity.js';
import { MetricsSampler } from './metrics.js';
import { refusedMessage, untrustedMessage, untrustedServer } from './refusals.js';
import type { ServerTime } from './renewal.js';
import { channelTls, Renewer } from './renewer.js';
import { ServerList, serverUrls, unreachable } from './servers.js';
import type { Witness } from './witness.js';

const DEFAULT_INTERVAL_MS = 10_000;

/** What a failed heartbeat means for the loop: how long to wait, and whether the identity was refused. */
interface Failure {
  wait: number;
  refused: boolean;
  /** Refused, and a join token can enroll again: the loop hands the identity back. */
  giveUp: boolean;
}

/**
 * Reports heartbeats and renews the certificate on time, swapping the new identity into a
 * fresh connection without a restart. Returns the identity when the server refuses it and
 * the caller holds a join token to enroll again; otherwise runs until the signal aborts.
 */
export async function heartbeatLoop(
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
  let channel: AgentChannel | undefined;
  const renewer = new Renewer(start, config, time, log, (renewed) =>
    channel?.useIdentity(channelTls(renewed, config)),
  );
  // One channel held open in the background; heartbeats fall back to HTTP while it is down.
  let intervalMs = DEFAULT_INTERVAL_MS;
  const link = await linkCommands({
    servers,
    dataDir: config.dataDir,
    log,
    signal,
    identity: () => renewer.identity,
    tls: () => renewer.tls,
    config,
    headers: (method, url, body) => renewer.headers(method, url, body),
    onSettings: (sec) => {
      intervalMs = Math.max(1000, sec * 1000);
    },
  });
  channel = link.channel;
  const report = new Reporter({ channel: link.channel, servers, renewer, time, start, config, log, signal });
  let failures = 0;
  try {
    while (!signal.aborted) {
      let wait: number;
      let refused = false;
      const target = servers.current();
      try {
        const ack = await report.beat(target);
        if (failures > 0) log.info('reporting again', { afterFailures: failures });
        failures = 0;
        intervalMs = Math.max(1000, ack.heartbeatIntervalSec * 1000);
        await report.heard(ack);
        await link.commands.afterHeartbeat(ack);
        hooks.onHeartbeat?.(ack);
        wait = intervalMs * (0.9 + 0.2 * Math.random());
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const failure = heartbeatFailed(err, {
          failures,
          intervalMs,
          target,
          servers,
          log,
          identity: renewer.identity,
          canEnrollAgain,
        });
        if (failure.giveUp) return renewer.identity;
        ({ wait, refused } = failure);
      }
      // Renewal comes after a heartbeat, so the first answer has corrected the clock by then.
      if (!refused && renewer.due()) {
        const outcome = await renewer.renew(servers, signal, canEnrollAgain);
        if (outcome === 'aborted') break;
        if (outcome === 'give-up') return renewer.identity;
        if (outcome === 'renewed') hooks.onRenewed?.(renewer.identity);
      }
      // A renewal due sooner than the next heartbeat shortens the wait, unless the server
      // refuses this identity: then nothing can be renewed, and the backoff stands.
      await sleep(refused ? wait : Math.max(0, Math.min(wait, renewer.renewAt - time.now())), signal);
    }
  } finally {
    await link.commands.close();
    await link.channel.close();
    renewer.close();
  }
  return undefined;
}

/** One heartbeat out (over the channel, or HTTP while it is down) and what its answer asks. */
class Reporter {
  private readonly sampler: MetricsSampler;
  private readonly witness: Witness | undefined;
  private seq = 0;

  constructor(
    private readonly deps: {
      channel: AgentChannel;
      servers: ServerList;
      renewer: Renewer;
      time: ServerTime;
      start: StoredIdentity;
      config: AgentConfig;
      log: Log;
      signal: AbortSignal;
    },
  ) {
    const { renewer, servers, start, config, log, signal } = deps;
    this.sampler = new MetricsSampler(config.services);
    // Whichever identity the agent holds now: the connection is swapped at each renewal.
    this.witness = ledgerWitness(start, config.dataDir, servers, renewer, signal, log);
  }

  async beat(target: URL): Promise<HeartbeatAck> {
    const { renewer, signal, time, channel, servers } = this.deps;
    const sample = await this.sampler.sample(this.seq++, renewer.identity.notAfter);
    if (this.witness) sample.checks.push(await this.witness.check());
    // The server shows a failing renewal beside the certificate's expiry.
    const renewal = renewer.check();
    if (renewal) sample.checks.push(renewal);
    // The host's own clock goes out, so the server can see how far off it is.
    const sentAt = time.localNow();
    const body = { ...sample, sentAt: new Date(sentAt).toISOString() };
    let ack = await channel.heartbeat(body);
    if (!ack) {
      const url = new URL('/v1/agent/heartbeat', target);
      const headers = renewer.headers('POST', url, body);
      ack = (
        await requestJson<HeartbeatAck>(url, { method: 'POST', body, headers, agent: renewer.tls, signal })
      ).body;
      servers.succeeded(target);
    }
    time.observe(ack.serverTime, sentAt);
    return ack;
  }

  /** The witness checks the answer's checkpoint; the renewer takes a rekey or CA rotation. */
  async heard(ack: HeartbeatAck): Promise<void> {
    if (this.witness && ack.checkpoint) await this.witness.observe(ack.checkpoint);
    this.deps.renewer.heard(ack);
  }
}

/** Says why a heartbeat failed and decides the wait: backoff, the next server, or enrolling again. */
function heartbeatFailed(
  err: unknown,
  ctx: {
    failures: number;
    intervalMs: number;
    target: URL;
    servers: ServerList;
    log: Log;
    identity: StoredIdentity;
    canEnrollAgain: boolean;
  },
): Failure {
  const { target, servers, log, identity, canEnrollAgain } = ctx;
  let wait = backoffDelay(ctx.failures, 1000, Math.max(ctx.intervalMs * 3, 60_000));
  if (unreachable(err)) {
    // The list says which server failed and where it goes next, once per backoff step.
    wait = servers.failed(target, err);
    log.debug('heartbeat failed; trying the next server', { error: (err as Error).message });
    return { wait, refused: false, giveUp: false };
  }
  if (err instanceof ServerError && err.status === 401) {
    log.error(refusedMessage(identity, err), { detail: err.message, retryInMs: wait });
    return { wait, refused: true, giveUp: canEnrollAgain };
  }
  if (untrustedServer(err)) {
    // The server's certificate is from a root this node does not hold: after a CA rotation
    // finished while the host was away, only enrolling again (with a new pin) helps.
    log.error(untrustedMessage(identity, canEnrollAgain), {
      server: target.origin,
      error: (err as Error).message,
      ...(canEnrollAgain ? {} : { retryInMs: wait }),
    });
    if (canEnrollAgain) return { wait, refused: true, giveUp: true };
    // With several servers, the others may still hold this node's CA: try the next.
    if (servers.urls.length > 1) wait = servers.failed(target, err, 'not trusting the server at');
    return { wait, refused: true, giveUp: false };
  }
  log.warn('heartbeat failed; retrying', { error: (err as Error).message, retryInMs: wait });
  return { wait, refused: false, giveUp: false };
}
