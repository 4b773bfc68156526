import { createHash } from 'node:crypto';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type CommandSignature, CommandTarget } from './commands.js';
import { canonicalJson } from './jcs.js';
import { formatBytes, type Job } from './jobs.js';
import type { PlacedNode, Placement } from './placement.js';

/**
 * What `job.placed` keeps of a placement (CONTRACT section 9), in a columnar form: one array per
 * column, one position per candidate node, short reason codes and rounded numbers. `place()`'s
 * own output repeats every key and sentence per node (2.8 MB at 10,000 nodes); this keeps the
 * same judgement at a fraction of that, and `jobs explain` turns it back into sentences.
 */

/** Why a node was not chosen, as the entry spells it; `lbl:KEY` names the label. */
export const REASON_CODES = {
  sel: 'not selected by the job',
  st: 'status',
  lbl: 'label does not match',
  hb: 'no heartbeat yet',
  mem: 'free memory below the requirement',
  nodisk: 'no disk at the required mount',
  disk: 'free disk below the requirement',
  load: 'load1 above the requirement',
  cpu: 'cpu above the requirement',
  rank: 'outranked',
  spread: 'outranked across the spread label',
} as const;

const STATUS_CODES: Record<string, string> = { ok: 'o', attention: 'a', critical: 'c', offline: 'x' };
const STATUS_NAMES = Object.fromEntries(Object.entries(STATUS_CODES).map(([k, v]) => [v, k]));

const Column = <T extends TSchema>(t: T) => Type.Array(Type.Union([t, Type.Null()]));

export const PlacedColumns = Type.Object({
  id: Type.Array(Type.String()),
  name: Type.Array(Type.String()),
  /** `''` for a chosen node; else reason codes joined by `,`. */
  why: Type.Array(Type.String()),
  /** Status: o ok, a attention, c critical, x offline. */
  st: Type.Array(Type.String()),
  /** Seconds between the node's latest heartbeat and the placement. */
  age: Column(Type.Integer()),
  l1: Column(Type.Number()),
  cpu: Column(Type.Number()),
  /** Free memory and free disk on the required mount, in MiB. */
  mem: Column(Type.Integer()),
  disk: Column(Type.Integer()),
  /** Receipts of this action the history score was made from. */
  rc: Type.Array(Type.Integer()),
  /** Score parts in thousandths; null for a node a filter dropped. */
  tot: Column(Type.Integer()),
  fit: Column(Type.Integer()),
  cost: Column(Type.Integer()),
  hist: Column(Type.Integer()),
  spv: Column(Type.String()),
});
export type PlacedColumns = Static<typeof PlacedColumns>;

/** The `data` of a `job.placed` ledger entry. */
export const PlacedEntryData = Type.Object({
  job: Type.String(),
  operator: Type.String(),
  action: Type.String(),
  /** SHA-256 of JCS(job): an agent checks the job it was sent is the one placed. */
  jobSha256: Type.String(),
  signatures: Type.Array(Type.Object({ operator: Type.String(), signature: Type.String() })),
  select: CommandTarget,
  require: Type.Optional(Type.Unknown()),
  spread: Type.Optional(Type.String()),
  weights: Type.Object({ fit: Type.Number(), cost: Type.Number(), history: Type.Number() }),
  wanted: Type.Union([Type.Integer(), Type.Literal('all')]),
  /** The chosen node of each shard, in shard order: shard i runs on shards[i]. */
  shards: Type.Array(Type.String()),
  notes: Type.Array(Type.String()),
  nodes: PlacedColumns,
});
export type PlacedEntryData = Static<typeof PlacedEntryData>;

export function jobSha256(job: Job): string {
  return createHash('sha256').update(canonicalJson(job)).digest('hex');
}

/** The reason code of one of `place()`'s sentences. */
export function reasonCode(reason: string): string {
  const label = /^label ([^=]+)=/.exec(reason);
  if (label) return `lbl:${label[1]}`;
  const prefixes: [string, string][] = [
    ['not selected', 'sel'],
    ['status ', 'st'],
    ['no heartbeat', 'hb'],
    ['free memory', 'mem'],
    ['no disk mounted', 'nodisk'],
    ['free disk', 'disk'],
    ['load1 ', 'load'],
    ['cpu ', 'cpu'],
  ];
  for (const [prefix, code] of prefixes) if (reason.startsWith(prefix)) return code;
  if (reason.startsWith('not chosen') && reason.includes(' across ')) return 'spread';
  if (reason.startsWith('not chosen')) return 'rank';
  throw new Error(`no reason code for "${reason}"`);
}

const milli = (x: number | undefined) => (x === undefined ? null : Math.round(x * 1000));
const mib = (x: number | undefined) => (x === undefined ? null : Math.round(x / 2 ** 20));
const round = (x: number | undefined, places: number) =>
  x === undefined ? null : Math.round(x * 10 ** places) / 10 ** places;

/** The entry's data for a placement of `job` made at `now`; `shards` in shard order. */
export function placedEntryData(
  job: Job,
  signatures: readonly CommandSignature[],
  placement: Placement,
  now: number,
): PlacedEntryData {
  const all = [...placement.chosen, ...placement.rejected];
  const col = <T>(f: (n: PlacedNode) => T) => all.map(f);
  return {
    job: job.id,
    operator: job.operator,
    action: job.action,
    jobSha256: jobSha256(job),
    signatures: signatures.map(({ operator, signature }) => ({ operator, signature })),
    select: job.select,
    ...(job.require ? { require: job.require } : {}),
    ...(job.spread ? { spread: job.spread } : {}),
    weights: {
      fit: round(placement.weights.fit, 4)!,
      cost: round(placement.weights.cost, 4)!,
      history: round(placement.weights.history, 4)!,
    },
    wanted: placement.wanted,
    shards: placement.chosen.map((n) => n.nodeId),
    notes: placement.notes.filter((n) => n.startsWith('spread') || n.startsWith('only ')),
    nodes: {
      id: col((n) => n.nodeId),
      name: col((n) => n.name),
      why: col((n) => n.reasons.map(reasonCode).join(',')),
      st: col((n) => STATUS_CODES[n.seen.status] ?? n.seen.status),
      age: col((n) => (n.seen.at === null ? null : Math.round((now - Date.parse(n.seen.at)) / 1000))),
      l1: col((n) => round(n.seen.load1, 2)),
      cpu: col((n) => round(n.seen.cpuPct, 1)),
      mem: col((n) => mib(n.seen.freeMemoryBytes)),
      disk: col((n) => mib(n.seen.freeDiskBytes)),
      rc: col((n) => n.seen.receipts),
      tot: col((n) => milli(n.score?.total)),
      fit: col((n) => milli(n.score?.fit)),
      cost: col((n) => milli(n.score?.cost)),
      hist: col((n) => milli(n.score?.history)),
      spv: col((n) => n.spreadValue ?? null),
    },
  };
}

/** One node of a `job.placed` entry, in words: what `jobs explain` prints. */
export interface ExplainedNode {
  nodeId: string;
  name: string;
  chosen: boolean;
  /** The shard it runs, for a chosen node. */
  shard?: number;
  score?: { total: number; fit: number; cost: number; history: number };
  reasons: string[];
  seen: string;
}

/** The entry's nodes, chosen first in shard order, then the rest as they were ledgered. */
export function explainPlaced(data: PlacedEntryData): ExplainedNode[] {
  const c = data.nodes;
  const shardOf = new Map(data.shards.map((id, i) => [id, i]));
  const lowest = Math.min(
    ...data.shards.map((id) => c.tot[c.id.indexOf(id)] ?? 0).filter((x) => Number.isFinite(x)),
  );
  const out: ExplainedNode[] = c.id.map((id, i) => {
    const score =
      c.tot[i] === null
        ? undefined
        : {
            total: c.tot[i]! / 1000,
            fit: c.fit[i]! / 1000,
            cost: c.cost[i]! / 1000,
            history: c.hist[i]! / 1000,
          };
    const codes = c.why[i] === '' ? [] : c.why[i]!.split(',');
    return {
      nodeId: id,
      name: c.name[i]!,
      chosen: shardOf.has(id),
      ...(shardOf.has(id) ? { shard: shardOf.get(id)! } : {}),
      ...(score ? { score } : {}),
      reasons: codes.map((code) => reasonText(code, i, data, lowest)),
      seen: seenText(c, i),
    };
  });
  return out;
}

function reasonText(code: string, i: number, data: PlacedEntryData, lowest: number): string {
  const c = data.nodes;
  const req = (data.require ?? {}) as NonNullable<Job['require']>;
  const mibText = (m: number | null) => (m === null ? '?' : formatBytes(m * 2 ** 20));
  if (code.startsWith('lbl:')) {
    const key = code.slice(4);
    return `label ${key}=${req.labels?.[key] ?? '?'} does not match`;
  }
  switch (code) {
    case 'sel':
      return `not selected: outside select ${canonicalJson(data.select)}`;
    case 'st':
      return `status ${STATUS_NAMES[c.st[i]!] ?? c.st[i]} (required ${(req.status ?? ['ok']).join(' or ')})`;
    case 'hb':
      return 'no heartbeat yet: nothing to judge its free memory, disk or load on';
    case 'mem':
      return `free memory ${mibText(c.mem[i]!)} < required ${formatBytes(req.minFreeMemoryBytes ?? 0)}`;
    case 'nodisk':
      return `no disk mounted at ${req.minFreeDiskBytes?.mount ?? '?'}`;
    case 'disk':
      return `free disk on ${req.minFreeDiskBytes?.mount ?? '?'} ${mibText(c.disk[i]!)} < required ${formatBytes(req.minFreeDiskBytes?.bytes ?? 0)}`;
    case 'load':
      return `load1 ${c.l1[i]} > ${req.maxLoad1}`;
    case 'cpu':
      return `cpu ${c.cpu[i]}% > ${req.maxCpuPct}%`;
    case 'spread':
      return `not chosen: ${data.shards.length} node(s) chosen across ${data.spread} first`;
    case 'rank':
      return `not chosen: ${data.shards.length} node(s) scored higher (lowest chosen ${(lowest / 1000).toFixed(3)})`;
    default:
      return code;
  }
}

function seenText(c: PlacedColumns, i: number): string {
  const parts = [`status ${STATUS_NAMES[c.st[i]!] ?? c.st[i]}`];
  if (c.age[i] === null) parts.push('no heartbeat');
  else {
    parts.push(`heartbeat ${c.age[i]}s before`);
    if (c.l1[i] !== null) parts.push(`load1 ${c.l1[i]}`);
    if (c.cpu[i] !== null) parts.push(`cpu ${c.cpu[i]}%`);
    if (c.mem[i] !== null) parts.push(`free memory ${formatBytes(c.mem[i]! * 2 ** 20)}`);
    if (c.disk[i] !== null) parts.push(`free disk ${formatBytes(c.disk[i]! * 2 ** 20)}`);
  }
  parts.push(`${c.rc[i]} receipt(s)`);
  if (c.spv[i] !== null) parts.push(`spread value ${c.spv[i]}`);
  return parts.join(', ');
}
