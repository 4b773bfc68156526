import type { Heartbeat, NodeStatus } from '@muster/proto';
import { formatDuration } from '@muster/proto';
import { BACKDATE_MS } from '../../pki/ca.js';
import { DEFAULT_THRESHOLDS, type Thresholds } from '../../thresholds.js';

/** Kept here too for the tests and callers that read the limits beside the assessment. */
export { DEFAULT_THRESHOLDS, type Thresholds };

/** The check an agent reports while its certificate renewal fails (CONTRACT: checks[]). */
export const RENEWAL_CHECK = 'certificate renewal';

/** Heartbeats missed before a node counts as offline. */
export const OFFLINE_AFTER_INTERVALS = 3;

export interface StatusInput {
  now: number;
  heartbeatIntervalMs: number;
  enrolledAt: number;
  lastSeenAt: number | null;
  decommissionedAt: number | null;
  certNotAfter: number;
  /** When the current certificate was issued (its notBefore without the back-dating); unset: at enrollment. */
  certIssuedAt?: number;
  /** The end of a renewed certificate issued but not used yet: the renewal happened. */
  renewedNotAfter?: number | null;
  cpus: number;
  latest: Heartbeat | null;
  /** How far the node's clock may be off before it is a reason; unset: not judged. */
  clockSkewAllowanceMs?: number;
  /** The limits for this node's profile; the defaults where unset. */
  thresholds?: Thresholds;
  /** The agent's version, and the server's: an agent behind the server is a reason. */
  agentVersion?: string;
  serverVersion?: string;
}

/** True when version `a` is older than `b` (major.minor.patch; anything else is not judged). */
export function versionBehind(a: string, b: string): boolean {
  const parse = (v: string) => /^v?(\d+)\.(\d+)\.(\d+)/.exec(v)?.slice(1).map(Number);
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return false;
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
  return false;
}

export interface Assessment {
  status: NodeStatus;
  reasons: string[];
}

type Severity = 'attention' | 'critical';
const RANK: Record<NodeStatus, number> = { ok: 0, attention: 1, critical: 2, offline: 3, decommissioned: 4 };

/**
 * Decides a node's status from what it last reported, with reasons a person can act on,
 * most severe first.
 */
export function assessNode(input: StatusInput): Assessment {
  const { now } = input;
  if (input.decommissionedAt !== null) {
    return {
      status: 'decommissioned',
      reasons: [`decommissioned ${formatAgo(now - input.decommissionedAt)}`],
    };
  }
  const expected = `expected every ${formatDuration(input.heartbeatIntervalMs)}`;
  const silentFor = now - (input.lastSeenAt ?? input.enrolledAt);
  if (silentFor > OFFLINE_AFTER_INTERVALS * input.heartbeatIntervalMs) {
    const what = input.lastSeenAt === null ? 'no heartbeat since enrollment' : 'no heartbeat';
    const reasons = [`${what} for ${formatDuration(silentFor)} (${expected})`];
    // An expired certificate is why many nodes stay silent; say it, and what brings them back.
    if (input.certNotAfter <= now)
      reasons.push(
        `certificate expired ${formatAgo(now - input.certNotAfter)}; the node must enroll again with a new join token`,
      );
    return { status: 'offline', reasons };
  }
  const found: Array<[Severity, string]> = [];
  const cert = certificateReason(input);
  if (cert) found.push(cert);

  const hb = input.latest;
  if (hb === null) {
    found.push(['attention', 'waiting for the first heartbeat']);
  } else {
    const limits = input.thresholds ?? DEFAULT_THRESHOLDS;
    for (const disk of hb.disks) {
      if (disk.totalBytes <= 0) continue;
      const used = Math.round((100 * (disk.totalBytes - disk.freeBytes)) / disk.totalBytes);
      if (used >= limits.diskCriticalPct) found.push(['critical', `disk ${disk.mount} ${used}% full`]);
      else if (used >= limits.diskAttentionPct) found.push(['attention', `disk ${disk.mount} ${used}% full`]);
    }
    if (hb.memory.totalBytes > 0) {
      const used = Math.round(
        (100 * (hb.memory.totalBytes - hb.memory.availableBytes)) / hb.memory.totalBytes,
      );
      if (used >= limits.memoryCriticalPct) found.push(['critical', `memory ${used}% used`]);
      else if (used >= limits.memoryAttentionPct) found.push(['attention', `memory ${used}% used`]);
    }
    const cpus = Math.max(1, input.cpus);
    const load = hb.load[0] ?? 0;
    if (load > limits.loadCriticalPerCpu * cpus)
      found.push(['critical', `load ${load.toFixed(1)} on ${cpus} CPUs`]);
    else if (load > limits.loadAttentionPerCpu * cpus) {
      found.push(['attention', `load ${load.toFixed(1)} on ${cpus} CPUs`]);
    }
    for (const service of hb.services) {
      // Older agents send `active` alone.
      const state = service.state ?? (service.active ? 'active' : 'inactive');
      if (state === 'inactive') found.push(['critical', `service ${service.name} is not running`]);
      // The host could not tell: worth a look (the name, the service manager), not an outage.
      else if (state === 'unknown')
        found.push([
          'attention',
          `service ${service.name}: state unknown, ${service.reason ?? 'the agent could not tell'}`,
        ]);
    }
    // The heartbeat's sentAt is the node's clock; lastSeenAt is the server's, at receipt.
    const skew = Date.parse(hb.sentAt) - (input.lastSeenAt ?? now);
    if (input.clockSkewAllowanceMs !== undefined && Math.abs(skew) > input.clockSkewAllowanceMs) {
      found.push([
        'attention',
        `clock skew: the node's clock is ${formatDuration(Math.abs(skew))} ${skew > 0 ? 'ahead of' : 'behind'} the server's (allowed ${formatDuration(input.clockSkewAllowanceMs)})`,
      ]);
    }
    for (const check of hb.checks) {
      // Said with the certificate's expiry above.
      if (check.name === RENEWAL_CHECK) continue;
      if (!check.ok)
        found.push(['attention', `check ${check.name} failing${check.detail ? `: ${check.detail}` : ''}`]);
    }
  }
  if (input.agentVersion && input.serverVersion && versionBehind(input.agentVersion, input.serverVersion)) {
    found.push([
      'attention',
      `agent ${input.agentVersion} is behind the server (${input.serverVersion}); upgrade it`,
    ]);
  }
  if (found.length === 0) return { status: 'ok', reasons: [] };
  found.sort((a, b) => RANK[b[0]] - RANK[a[0]]);
  return { status: found[0]![0], reasons: found.map(([, reason]) => reason) };
}

/**
 * The share of a certificate's lifetime left when its renewal counts as overdue. Agents renew
 * after two thirds of it (`--renew-fraction 0.67`, moved by up to 5 % of the lifetime), so a
 * node on schedule never gets here, whatever the lifetime: 90 s and 24 h certificates alike.
 */
export const RENEWAL_OVERDUE_LEFT = 0.25;

/** Certificates are back-dated (pki/ca.ts); their lifetime, which renewal follows, starts later. */
export function certificateIssuedAt(notBefore: number, notAfter: number): number {
  return notAfter - notBefore > BACKDATE_MS ? notBefore + BACKDATE_MS : notBefore;
}

/** When a certificate's renewal becomes overdue: a quarter of its lifetime before its end. */
export function renewalOverdueAt(issuedAt: number, notAfter: number): number {
  return notAfter - Math.max(0, notAfter - issuedAt) * RENEWAL_OVERDUE_LEFT;
}

/**
 * What the certificate's expiry says, judged against the node's own renewal schedule: nothing
 * while renewal is not due or has just happened; attention once renewal is overdue or
 * failing; critical when it is both, or the certificate has expired.
 */
function certificateReason(input: StatusInput): [Severity, string] | undefined {
  const { now } = input;
  const left = input.certNotAfter - now;
  if (left <= 0) return ['critical', `certificate expired ${formatAgo(-left)}`];
  const renewal = input.latest?.checks.find((c) => c.name === RENEWAL_CHECK && !c.ok);
  const renewed = (input.renewedNotAfter ?? 0) > input.certNotAfter;
  const issuedAt = input.certIssuedAt ?? input.enrolledAt;
  const overdue = !renewed && now >= renewalOverdueAt(issuedAt, input.certNotAfter);
  const expires = `certificate expires in ${formatDuration(left)}`;
  if (renewal) {
    const failing = ` and renewal is failing${renewal.detail ? ` (${renewal.detail})` : ''}`;
    return [overdue ? 'critical' : 'attention', `${expires}${failing}`];
  }
  if (overdue) {
    const lifetime = formatDuration(input.certNotAfter - issuedAt);
    return ['attention', `${expires} and has not been renewed (overdue for a ${lifetime} certificate)`];
  }
  return undefined;
}

function formatAgo(ms: number): string {
  return `${formatDuration(Math.max(0, ms))} ago`;
}
