import { setTimeout as sleep } from 'node:timers/promises';
import type { SettingSpec } from '@muster/host';
import { UsageError } from '@muster/host';
import {
  explainPlaced,
  FINAL_SHARD_STATES,
  type JobExplanation,
  type JobList,
  type JobView,
  type PlacedEntryData,
  parseDuration,
  signJob,
} from '@muster/proto';
import { ADMIN_SETTINGS, type AdminClient, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { defaultOperatorKey, readPrivateKey } from '../keys.js';
import { printJson, safe, table } from '../output.js';
import { receiptOutput } from '../receipt-text.js';
import { operatorForKey } from '../signer.js';
import { JOB_SETTINGS, jobFromFlags, namingFlags } from './jobs.js';

const KEY_SETTINGS: readonly SettingSpec[] = [
  {
    flag: 'key',
    kind: 'string',
    value: 'FILE',
    help: 'your operator key (default ~/.config/muster/operator.key)',
  },
  {
    flag: 'operator',
    env: 'MUSTER_OPERATOR',
    kind: 'string',
    value: 'NAME',
    help: 'which operator signs, only needed when the key belongs to several',
  },
];

export const jobsRun: Command = {
  path: ['jobs', 'run'],
  args: '-- ACTION [NAME=VALUE…]',
  summary: 'sign a job with your operator key; the control plane picks the nodes and ledgers why',
  details:
    'The job is signed here, as muster run signs a command. The server places it (the same choice\n' +
    'muster jobs plan shows), records the placement in the ledger as job.placed, and sends each\n' +
    'chosen node its shard with that entry and its inclusion proof; the node checks the signature,\n' +
    'its policy, the select and the proof itself before it runs anything.\n' +
    'Prints the job id (--json: the job). --wait follows every shard to its answer and exits 0 only\n' +
    'if all succeeded. A job no node is eligible for is refused (exit 1, with the reasons).\n\n' +
    'Example:\n  muster jobs run --count 3 --spread zone --require minFreeMemoryBytes=2GiB --wait -- deploy version=1.4',
  settings: [
    ...JOB_SETTINGS,
    {
      flag: 'timeout',
      kind: 'string',
      value: 'DURATION',
      help: 'how long the job stays valid for delivery (default 10m)',
    },
    { flag: 'wait', kind: 'boolean', help: 'follow every shard to its answer; exit 0 only if all succeeded' },
    ...KEY_SETTINGS,
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals, env, signal }) {
    const now = Date.now();
    const lifetime = parseDuration((values.timeout as string | undefined) ?? '10m');
    if (lifetime === undefined || lifetime < 1000 || lifetime > 86_400_000)
      throw new UsageError(`--timeout: "${values.timeout}" is not a duration between 1s and 24h`);
    const draft = jobFromFlags(values, positionals, now);
    const keyFile = (values.key as string | undefined) ?? defaultOperatorKey(env);
    const { privateKey, publicKey } = readPrivateKey(keyFile);
    const client = adminClient(values);
    const operator = await operatorForKey(client, publicKey, keyFile, values.operator as string | undefined);
    const job = { ...draft, operator, expiresAt: new Date(now + lifetime).toISOString() };
    const view = await namingFlags(
      client.call<JobView>('POST', '/v1/jobs', { job, signature: signJob(job, privateKey) }),
    );
    if (!values.wait) {
      if (values.json) printJson(view);
      else console.log(acceptedText(view));
      return 0;
    }
    if (!values.json) console.log(acceptedText(view));
    const final = await follow(client, view.id, !values.json, signal);
    if (values.json) printJson(final);
    return final.shards.length > 0 && final.shards.every((s) => s.state === 'succeeded') ? 0 : 1;
  },
};

function acceptedText(view: JobView): string {
  if (view.state === 'awaiting_approval')
    return `job ${view.id} is awaiting approval: ${view.approvals.signers.length} of ${view.approvals.required} signature(s)`;
  return (
    `job ${view.id} placed on ${view.shards.length} node(s): ${view.shards.map((s) => safe(s.name)).join(', ')}\n` +
    `see why with: muster jobs explain ${view.id}`
  );
}

async function follow(
  client: AdminClient,
  id: string,
  print: boolean,
  signal: AbortSignal,
): Promise<JobView> {
  const seen = new Map<number, string>();
  for (;;) {
    const view = await client.call<JobView>('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    for (const s of view.shards) {
      const key = `${s.state}/${s.attempt}`;
      if (seen.get(s.shard) === key) continue;
      seen.set(s.shard, key);
      if (!print) continue;
      console.log(
        `  shard ${s.shard} ${safe(s.name).padEnd(24)} ${s.state}${s.reason ? ` (${safe(s.reason)})` : ''}`,
      );
      if (s.receipt) {
        const output = receiptOutput(s.receipt, '    ', 10);
        if (output.length > 0) console.log(output.join('\n'));
      }
    }
    const done =
      view.state !== 'awaiting_approval' && view.shards.every((s) => FINAL_SHARD_STATES.includes(s.state));
    if (done || signal.aborted) return view;
    await sleep(250, undefined, { signal }).catch(() => {});
  }
}

export const jobsList: Command = {
  path: ['jobs', 'ls'],
  summary: 'list recent jobs with how many shards are in each state',
  settings: [
    { flag: 'limit', kind: 'string', value: 'N', help: 'how many (default 50, at most 1000)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values }) {
    const limit = (values.limit as string | undefined) ?? '50';
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)
      throw new UsageError(`--limit: "${limit}" is not a whole number from 1 to 1000`);
    const list = await adminClient(values).call<JobList>('GET', `/v1/jobs?limit=${limit}`);
    if (values.json) printJson(list);
    else if (list.items.length === 0) console.log('no jobs yet: muster jobs run … -- ACTION');
    else
      console.log(
        table(
          ['ID', 'CREATED', 'OPERATOR', 'ACTION', 'STATE', 'SHARDS'],
          list.items.map((j) => [
            j.id,
            j.createdAt,
            safe(j.operator),
            safe(j.action),
            j.state,
            counts(j.shards),
          ]),
        ),
      );
    return 0;
  },
};

function counts(byState: Record<string, number>): string {
  return (
    Object.entries(byState)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ') || '-'
  );
}

function shardCounts(shards: JobView['shards']): string {
  const byState: Record<string, number> = {};
  for (const s of shards) byState[s.state] = (byState[s.state] ?? 0) + 1;
  return counts(byState);
}

function oneId(positionals: readonly string[], verb: string): string {
  const [id, ...rest] = positionals;
  if (!id || rest.length > 0) throw new UsageError(`give one job id: muster jobs ${verb} ID`);
  return id;
}

export const jobsShow: Command = {
  path: ['jobs', 'show'],
  args: 'ID',
  summary: "a job: its action, state, approvals and each shard's node, state and receipt",
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const id = oneId(positionals, 'show');
    const view = await adminClient(values).call<JobView>('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    if (values.json) {
      printJson(view);
      return 0;
    }
    console.log(
      [
        `job ${view.id}: ${safe(view.action)} by ${safe(view.operator)}, ${view.state} (${shardCounts(view.shards)})`,
        `approvals: ${view.approvals.signers.length} of ${view.approvals.required}`,
        `placements: ${view.placements.map((p) => `${p.kind} at ledger seq ${p.seq}`).join(', ') || 'none yet'}`,
        table(
          ['SHARD', 'NODE', 'STATE', 'ATTEMPT', 'EXIT', 'REASON'],
          view.shards.map((s) => [
            String(s.shard),
            safe(s.name),
            s.state,
            String(s.attempt),
            s.receipt?.exitCode === null || s.receipt?.exitCode === undefined
              ? '-'
              : String(s.receipt.exitCode),
            safe(s.reason ?? s.receipt?.reason ?? ''),
          ]),
        ),
      ].join('\n'),
    );
    return 0;
  },
};

export const jobsExplain: Command = {
  path: ['jobs', 'explain'],
  args: 'ID',
  summary: 'why each node was chosen or not, as the job.placed ledger entry recorded it (not recomputed)',
  details:
    'Prints each placement entry of the job from the ledger: every node, chosen (with its shard\n' +
    'and score parts) or the reason it was not, and the telemetry it was judged on.\n' +
    '--json prints the entries byte for byte as the ledger hashed them.',
  settings: [
    { flag: 'node', kind: 'string', value: 'NODE', help: 'only this node (name or id)' },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const id = oneId(positionals, 'explain');
    const found = await adminClient(values).call<JobExplanation>(
      'GET',
      `/v1/jobs/${encodeURIComponent(id)}/explain`,
    );
    if (values.json) {
      printJson(found);
      return 0;
    }
    if (found.entries.length === 0)
      console.log(`job ${found.id} has not been placed yet (it awaits approval)`);
    const only = values.node as string | undefined;
    for (const { seq, entry } of found.entries) {
      const parsed = JSON.parse(entry) as { kind: string; ts: string; data: PlacedEntryData };
      console.log(explainText(seq, parsed, only));
    }
    return 0;
  },
};

function explainText(
  seq: number,
  entry: { kind: string; ts: string; data: PlacedEntryData },
  only?: string,
): string {
  const d = entry.data;
  const nodes = explainPlaced(d).filter((n) => !only || n.name === only || n.nodeId === only);
  const score = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
  const w = d.weights;
  return [
    `${entry.kind} (ledger seq ${seq}, ${entry.ts}): ${d.shards.length} of ${d.wanted === 'all' ? 'all eligible' : d.wanted} node(s) for ${safe(d.action)}`,
    `weights: fit ${w.fit}, cost ${w.cost}, history ${w.history}${d.spread ? `; spread by ${safe(d.spread)}` : ''}`,
    table(
      ['NODE', 'CHOSEN', 'SCORE', 'FIT', 'COST', 'HISTORY', 'REASON', 'JUDGED ON'],
      nodes.map((n) => [
        safe(n.name),
        n.chosen ? `shard ${n.shard}` : '-',
        score(n.score?.total),
        score(n.score?.fit),
        score(n.score?.cost),
        score(n.score?.history),
        safe(n.reasons.join('; ')),
        safe(n.seen),
      ]),
    ),
    ...d.notes.map((n) => `note: ${safe(n)}`),
  ].join('\n');
}

export const jobsStop: Command = {
  path: ['jobs', 'stop'],
  args: 'ID',
  summary: 'stop a job: nothing new is placed or delivered; shards not yet started are stopped',
  settings: ADMIN_SETTINGS,
  async run({ values, positionals }) {
    const id = oneId(positionals, 'stop');
    const view = await adminClient(values).call<JobView>('DELETE', `/v1/jobs/${encodeURIComponent(id)}`);
    if (values.json) printJson(view);
    else console.log(`job ${view.id} stopped (${shardCounts(view.shards)})`);
    return 0;
  },
};
