import { UsageError } from '@muster/host';
import { NODE_STATUSES, type NodeList, type NodeView } from '@muster/proto';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { ago, printJson, safe, table } from '../output.js';

export const nodesList: Command = {
  path: ['nodes', 'ls'],
  summary: 'list nodes with their status and the first reason',
  settings: [
    {
      flag: 'status',
      kind: 'string',
      value: 'STATUS',
      help: `only nodes in this status: ${NODE_STATUSES.join(', ')}`,
    },
    { flag: 'label', kind: 'string', value: 'K=V', help: 'only nodes with this label' },
    { flag: 'profile', kind: 'string', value: 'PROFILE', help: 'only nodes of this profile' },
    { flag: 'limit', kind: 'string', value: 'N', help: 'at most N nodes (default: all)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const status = values.status as string | undefined;
    if (status !== undefined && !(NODE_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`--status: "${status}" is not one of ${NODE_STATUSES.join(', ')}`);
    }
    const limitText = values.limit as string | undefined;
    if (limitText !== undefined && (!/^\d+$/.test(limitText) || Number(limitText) < 1)) {
      throw new UsageError(`--limit: "${limitText}" is not a positive whole number`);
    }
    const limit = limitText === undefined ? Number.POSITIVE_INFINITY : Number(limitText);
    const client = adminClient(values);
    const items: NodeView[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams();
      if (status) query.set('status', status);
      if (values.label) query.set('label', values.label as string);
      if (values.profile) query.set('profile', values.profile as string);
      query.set('limit', String(Math.min(1000, limit - items.length)));
      if (cursor) query.set('cursor', cursor);
      const page: NodeList = await client.call<NodeList>('GET', `/v1/nodes?${query}`);
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor && items.length < limit);
    if (values.json) {
      printJson(items);
      return 0;
    }
    if (items.length === 0) {
      console.log(
        status || values.label || values.profile
          ? 'No nodes match.'
          : 'No nodes yet. Enroll one with: muster token create',
      );
      return 0;
    }
    console.log(
      table(
        ['NAME', 'STATUS', 'PROFILE', 'LAST SEEN', 'REASON'],
        items.map((n) => [
          safe(n.name),
          n.status,
          safe(n.profile),
          ago(n.lastSeenAt),
          safe(n.reasons[0] ?? ''),
        ]),
      ),
    );
    return 0;
  },
};

export const nodesShow: Command = {
  path: ['nodes', 'show'],
  args: 'NODE',
  summary: 'show one node: status with every reason, facts, labels, certificate, latest heartbeat, last hour',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const client = adminClient(values);
    const node = await client.call<NodeView>('GET', `/v1/nodes/${encodeURIComponent(oneNode(positionals))}`);
    if (values.json) {
      printJson(node);
      return 0;
    }
    const lines = [
      `${safe(node.name)}  (${node.id})`,
      `  status      ${node.status}`,
      ...node.reasons.map((r) => `              - ${safe(r)}`),
      `  profile     ${safe(node.profile)}`,
      `  labels      ${safe(
        Object.entries(node.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ') || '-',
      )}`,
      `  enrolled    ${node.enrolledAt}`,
      `  last seen   ${node.lastSeenAt ?? 'never'} (${ago(node.lastSeenAt)})`,
      `  host        ${safe(node.facts.hostname)}, ${safe(node.facts.os)}/${safe(node.facts.arch)}, kernel ${safe(node.facts.kernel)}`,
      `  hardware    ${node.facts.cpus} CPUs, ${gib(node.facts.memoryBytes)} memory`,
      `  agent       ${safe(node.facts.agentVersion)}`,
      `  certificate serial ${node.cert.serial}`,
      `              issued by ${safe(node.cert.issuer)}`,
      `              valid ${node.cert.notBefore} to ${node.cert.notAfter}`,
      ...(node.cert.pending
        ? [
            `              renewed: ${node.cert.pending.serial} (until ${node.cert.pending.notAfter}), not used yet`,
          ]
        : []),
      ...(node.cert.rotationRequestedAt
        ? [`              fresh key asked for at ${node.cert.rotationRequestedAt}, at its next contact`]
        : []),
    ];
    const hb = node.latest;
    if (hb) {
      lines.push(
        `  load        ${hb.load.join(' ')}   cpu ${hb.cpuPct}%`,
        `  memory      ${gib(hb.memory.totalBytes - hb.memory.availableBytes)} used of ${gib(hb.memory.totalBytes)}`,
        ...hb.disks.map(
          (d) =>
            `  disk        ${safe(d.mount)} ${pct(d.totalBytes - d.freeBytes, d.totalBytes)} of ${gib(d.totalBytes)} used`,
        ),
        ...hb.services.map(
          (s) =>
            `  service     ${safe(s.name)} ${s.state === 'unknown' ? `state unknown: ${safe(s.reason ?? 'the agent could not tell')}` : s.active ? 'running' : 'NOT RUNNING'}`,
        ),
      );
    }
    const recent = await client
      .call<{
        points: Array<{ cpuPct: number; cpuMaxPct: number; memUsedPct: number; diskUsedPct: number }>;
      }>('GET', `/v1/nodes/${encodeURIComponent(node.id)}/telemetry?step=1m`)
      .catch(() => undefined);
    if (recent && recent.points.length > 0) {
      const pts = recent.points;
      const avg = (f: (p: (typeof pts)[number]) => number) =>
        Math.round(pts.reduce((a, p) => a + f(p), 0) / pts.length);
      lines.push(
        `  last hour   cpu ${avg((p) => p.cpuPct)}% (peak ${Math.round(Math.max(...pts.map((p) => p.cpuMaxPct)))}%), ` +
          `memory ${avg((p) => p.memUsedPct)}%, fullest disk ${Math.round(Math.max(...pts.map((p) => p.diskUsedPct)))}%`,
      );
    }
    console.log(lines.join('\n'));
    return 0;
  },
};

export const nodesDecommission: Command = {
  path: ['nodes', 'decommission'],
  args: 'NODE',
  summary: "revoke a node's identity and cut its connections; it can no longer report",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const node = oneNode(positionals);
    await adminClient(values).call('DELETE', `/v1/nodes/${encodeURIComponent(node)}`);
    if (values.json) {
      printJson({ node, decommissioned: true });
      return 0;
    }
    console.log(
      `Node ${safe(node)} decommissioned: its certificate is revoked and its connections are closed.`,
    );
    return 0;
  },
};

export const nodesRotate: Command = {
  path: ['nodes', 'rotate'],
  args: 'NODE',
  summary: 'make a node move to a fresh key: it renews with a new key at its next contact',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const node = await adminClient(values).call<NodeView>(
      'POST',
      `/v1/nodes/${encodeURIComponent(oneNode(positionals))}/rotate`,
    );
    if (values.json) {
      printJson(node);
      return 0;
    }
    console.log(
      `Node ${safe(node.name)} will renew onto a fresh key at its next heartbeat; its current certificate (serial ${node.cert.serial}) works until then.`,
    );
    return 0;
  },
};

function oneNode(positionals: string[]): string {
  const [node, extra] = positionals;
  if (!node || extra !== undefined)
    throw new UsageError('expected exactly one NODE (a name, an id, or a unique prefix of an id)');
  return node;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const pct = (part: number, whole: number) => (whole > 0 ? `${Math.round((100 * part) / whole)}%` : '-');
