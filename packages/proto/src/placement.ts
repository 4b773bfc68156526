import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { CommandTarget, ReceiptStatus } from './commands.js';
import { DEFAULT_WEIGHTS, formatBytes, type Job, type JobWeights } from './jobs.js';
import { isTargeted } from './policy.js';
import type { Facts, Heartbeat, NodeStatus, NodeView } from './wire.js';

/**
 * The placement engine (CONTRACT section 9): pure, so the server, `muster jobs plan --snapshot`
 * and (later) `jobs explain` judge alike. Hard filters drop nodes, each with the reason a person
 * can act on; the rest are scored 0–1 on fit, cost and history and chosen by score, in turn
 * across the spread label's values. Its output is what `job.placed` will ledger: the choice,
 * every other node and why, and the telemetry each was judged on.
 */

/** The label a node's price is read from: a non-negative number, cheapest scores 1. */
export const COST_LABEL = 'muster.io/cost';
/** A receipt this old counts half as much as one from now. */
export const HISTORY_HALF_LIFE_MS = 7 * 86_400_000;
/** No receipts is an even chance, and the prior weighs as much as one fresh receipt. */
export const HISTORY_PRIOR = 0.5;
/** A node with no cost label is neither cheap nor dear. */
export const COST_NEUTRAL = 0.5;

export interface PlacementCandidate {
  id: string;
  name: string;
  profile: string;
  labels: Readonly<Record<string, string>>;
  status: NodeStatus;
  facts: Pick<Facts, 'cpus' | 'memoryBytes'>;
  latest: Pick<Heartbeat, 'sentAt' | 'load' | 'cpuPct' | 'memory' | 'disks'> | null;
  /** This action's past answers on this node. */
  history: readonly { finishedAt: string; status: ReceiptStatus | 'expired' }[];
}

export const ScoreParts = Type.Object({
  fit: Type.Number(),
  cost: Type.Number(),
  history: Type.Number(),
  total: Type.Number(),
});
export type ScoreParts = Static<typeof ScoreParts>;

/** What a node was judged on, compact: the `job.placed` entry carries one per candidate. */
export const JudgedTelemetry = Type.Object({
  status: Type.String(),
  at: Type.Union([Type.String(), Type.Null()]),
  load1: Type.Optional(Type.Number()),
  cpuPct: Type.Optional(Type.Number()),
  freeMemoryBytes: Type.Optional(Type.Integer()),
  freeDiskBytes: Type.Optional(Type.Integer()),
  receipts: Type.Integer(),
});
export type JudgedTelemetry = Static<typeof JudgedTelemetry>;

export const PlacedNode = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  chosen: Type.Boolean(),
  /** Absent for a node a filter dropped. */
  score: Type.Optional(ScoreParts),
  /** Why it was not chosen: every filter it failed, or what outranked it. Empty when chosen. */
  reasons: Type.Array(Type.String()),
  spreadValue: Type.Optional(Type.String()),
  seen: JudgedTelemetry,
});
export type PlacedNode = Static<typeof PlacedNode>;

export const Placement = Type.Object({
  jobId: Type.String(),
  action: Type.String(),
  /** The weights used, normalized to sum to 1. */
  weights: Type.Object({ fit: Type.Number(), cost: Type.Number(), history: Type.Number() }),
  wanted: Type.Union([Type.Integer(), Type.Literal('all')]),
  spread: Type.Optional(Type.String()),
  chosen: Type.Array(PlacedNode),
  rejected: Type.Array(PlacedNode),
  /** How the scores were made and anything a reader should know about this choice. */
  notes: Type.Array(Type.String()),
});
export type Placement = Static<typeof Placement>;

export interface PlacementInput {
  job: Pick<Job, 'id' | 'action' | 'select' | 'count' | 'require' | 'spread' | 'weights' | 'shards'>;
  candidates: readonly PlacementCandidate[];
  now: number;
}

/** The same job and node always draw the same: ties never depend on the order rows came in. */
export function tieBreak(jobId: string, nodeId: string): string {
  return createHash('sha256').update(`${jobId}\n${nodeId}`).digest('hex');
}

export function place(input: PlacementInput): Placement {
  const { job, now } = input;
  const weights = normalized(job.weights ?? DEFAULT_WEIGHTS);
  const notes: string[] = [];
  const eligible: Scored[] = [];
  const rejected: PlacedNode[] = [];
  const candidates = [...new Map(input.candidates.map((c) => [c.id, c])).values()];
  for (const node of candidates) {
    const reasons = filterReasons(job, node);
    if (reasons.length > 0) rejected.push(row(job, node, false, reasons));
    else
      eligible.push({
        node,
        hash: tieBreak(job.id, node.id),
        score: { fit: 0, cost: 0, history: 0, total: 0 },
      });
  }
  scoreAll(eligible, job, weights, now);
  const wanted = job.shards ? job.shards.length : job.count;
  const limit = wanted === 'all' ? eligible.length : Math.min(wanted, eligible.length);
  const picked = job.spread
    ? spreadPick(eligible, job.spread, limit, notes)
    : byScore(eligible).slice(0, limit);
  const chosenIds = new Set(picked.map((s) => s.node.id));
  const lowest = picked.length > 0 ? picked[picked.length - 1]!.score.total : 0;
  for (const s of byScore(eligible)) {
    if (chosenIds.has(s.node.id)) continue;
    const why = job.spread
      ? `not chosen: ${picked.length} node(s) chosen across ${job.spread} first`
      : `not chosen: ${picked.length} node(s) scored higher (lowest chosen ${lowest.toFixed(3)})`;
    rejected.push({ ...row(job, s.node, false, [why]), score: s.score });
  }
  if (wanted !== 'all' && eligible.length < wanted)
    notes.push(`only ${eligible.length} of the ${wanted} node(s) wanted are eligible`);
  notes.push(...scoreNotes(weights, job.action));
  return {
    jobId: job.id,
    action: job.action,
    weights,
    wanted,
    ...(job.spread ? { spread: job.spread } : {}),
    chosen: picked.map((s) => ({ ...row(job, s.node, true, []), score: s.score })),
    rejected: rejected.sort((a, b) => compareText(a.name, b.name) || compareText(a.nodeId, b.nodeId)),
    notes,
  };
}

interface Scored {
  node: PlacementCandidate;
  hash: string;
  score: ScoreParts;
}

function normalized(w: JobWeights): JobWeights {
  const sum = w.fit + w.cost + w.history;
  if (!(sum > 0)) return { ...DEFAULT_WEIGHTS };
  return { fit: w.fit / sum, cost: w.cost / sum, history: w.history / sum };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Highest total first; equal totals by the stable hash. */
function byScore(list: readonly Scored[]): Scored[] {
  return [...list].sort((a, b) => b.score.total - a.score.total || compareText(a.hash, b.hash));
}

function row(
  job: PlacementInput['job'],
  node: PlacementCandidate,
  chosen: boolean,
  reasons: string[],
): PlacedNode {
  return {
    nodeId: node.id,
    name: node.name,
    chosen,
    reasons,
    ...(job.spread && Object.hasOwn(node.labels, job.spread)
      ? { spreadValue: node.labels[job.spread]! }
      : {}),
    seen: judged(job, node),
  };
}

function judged(job: PlacementInput['job'], node: PlacementCandidate): JudgedTelemetry {
  const hb = node.latest;
  const mount = job.require?.minFreeDiskBytes?.mount;
  const disk = mount ? hb?.disks.find((d) => d.mount === mount) : undefined;
  return {
    status: node.status,
    at: hb?.sentAt ?? null,
    ...(hb ? { load1: hb.load[0]!, cpuPct: hb.cpuPct, freeMemoryBytes: hb.memory.availableBytes } : {}),
    ...(disk ? { freeDiskBytes: disk.freeBytes } : {}),
    receipts: node.history.length,
  };
}

function number(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** Every hard filter the node fails, in the words an operator acts on. */
export function filterReasons(job: PlacementInput['job'], node: PlacementCandidate): string[] {
  const reasons: string[] = [];
  const outside = selectReason(job.select, node);
  if (outside) reasons.push(outside);
  const req = job.require ?? {};
  const statuses = req.status ?? ['ok'];
  if (!(statuses as string[]).includes(node.status))
    reasons.push(`status ${node.status} (required ${statuses.join(' or ')})`);
  for (const [key, value] of Object.entries(req.labels ?? {})) {
    if (node.labels[key] === value) continue;
    const has = Object.hasOwn(node.labels, key) ? `${key}=${node.labels[key]}` : `no ${key} label`;
    reasons.push(`label ${key}=${value} does not match (${has})`);
  }
  const hb = node.latest;
  if (!hb) {
    reasons.push('no heartbeat yet: nothing to judge its free memory, disk or load on');
    return reasons;
  }
  if (req.minFreeMemoryBytes !== undefined && hb.memory.availableBytes < req.minFreeMemoryBytes)
    reasons.push(
      `free memory ${formatBytes(hb.memory.availableBytes)} < required ${formatBytes(req.minFreeMemoryBytes)}`,
    );
  if (req.minFreeDiskBytes) {
    const { mount, bytes } = req.minFreeDiskBytes;
    const disk = hb.disks.find((d) => d.mount === mount);
    if (!disk) reasons.push(`no disk mounted at ${mount}`);
    else if (disk.freeBytes < bytes)
      reasons.push(`free disk on ${mount} ${formatBytes(disk.freeBytes)} < required ${formatBytes(bytes)}`);
  }
  if (req.maxLoad1 !== undefined && hb.load[0]! > req.maxLoad1)
    reasons.push(`load1 ${number(hb.load[0]!)} > ${number(req.maxLoad1)}`);
  if (req.maxCpuPct !== undefined && hb.cpuPct > req.maxCpuPct)
    reasons.push(`cpu ${number(hb.cpuPct)}% > ${number(req.maxCpuPct)}%`);
  return reasons;
}

function selectReason(select: CommandTarget, node: PlacementCandidate): string | undefined {
  if (isTargeted(select, node)) return undefined;
  if ('nodes' in select) return 'not selected: not among the nodes named in select';
  if ('profile' in select) return `not selected: profile ${node.profile} (select wants ${select.profile})`;
  if ('labels' in select) {
    const [key, value] = Object.entries(select.labels).find(([k, v]) => node.labels[k] !== v) ?? ['', ''];
    const has = Object.hasOwn(node.labels, key) ? `${key}=${node.labels[key]}` : `no ${key} label`;
    return `not selected: label ${key}=${value} does not match (${has})`;
  }
  return 'not selected';
}

const clamp01 = (x: number) => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/** Headroom left after the job: memory beyond what it requires, idle CPU, load below the cores. */
function fitScore(job: PlacementInput['job'], node: PlacementCandidate): number {
  const hb = node.latest!;
  const req = job.require ?? {};
  const parts = [
    hb.memory.totalBytes > 0
      ? clamp01((hb.memory.availableBytes - (req.minFreeMemoryBytes ?? 0)) / hb.memory.totalBytes)
      : 0,
    clamp01(1 - hb.cpuPct / 100),
    clamp01(1 - hb.load[0]! / Math.max(1, node.facts.cpus)),
  ];
  const wantDisk = req.minFreeDiskBytes;
  const disk = wantDisk ? hb.disks.find((d) => d.mount === wantDisk.mount) : undefined;
  if (wantDisk && disk)
    parts.push(disk.totalBytes > 0 ? clamp01((disk.freeBytes - wantDisk.bytes) / disk.totalBytes) : 0);
  return parts.reduce((a, b) => a + b, 0) / parts.length;
}

function costOf(node: PlacementCandidate): number | undefined {
  const text = node.labels[COST_LABEL];
  if (text === undefined || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Success rate of this action on the node, each receipt weighted by its age. */
export function historyScore(history: PlacementCandidate['history'], now: number): number {
  let weight = 1;
  let successes = HISTORY_PRIOR;
  for (const h of history) {
    const age = Math.max(0, now - Date.parse(h.finishedAt));
    const w = 0.5 ** (age / HISTORY_HALF_LIFE_MS);
    if (!Number.isFinite(w)) continue;
    weight += w;
    if (h.status === 'succeeded') successes += w;
  }
  return successes / weight;
}

function scoreAll(eligible: Scored[], job: PlacementInput['job'], w: JobWeights, now: number): void {
  const costs = eligible.map((s) => costOf(s.node)).filter((c): c is number => c !== undefined);
  const cheapest = Math.min(...costs);
  const dearest = Math.max(...costs);
  for (const s of eligible) {
    const c = costOf(s.node);
    const fit = fitScore(job, s.node);
    const cost =
      c === undefined ? COST_NEUTRAL : dearest > cheapest ? (dearest - c) / (dearest - cheapest) : 1;
    const history = historyScore(s.node.history, now);
    const round = (x: number) => Math.round(x * 1e6) / 1e6;
    s.score = {
      fit: round(fit),
      cost: round(cost),
      history: round(history),
      total: round(w.fit * fit + w.cost * cost + w.history * history),
    };
  }
}

/**
 * Across the label's values in turn: the value with fewest chosen first (a tie goes to the value
 * whose best remaining node scores higher), its best node next; nodes without the label last.
 */
function spreadPick(eligible: readonly Scored[], label: string, limit: number, notes: string[]): Scored[] {
  const groups = new Map<string, { list: Scored[]; next: number; taken: number }>();
  const unlabeled: Scored[] = [];
  for (const s of byScore(eligible)) {
    if (!Object.hasOwn(s.node.labels, label)) unlabeled.push(s);
    else {
      const value = s.node.labels[label]!;
      const group = groups.get(value);
      if (group) group.list.push(s);
      else groups.set(value, { list: [s], next: 0, taken: 0 });
    }
  }
  if (groups.size === 0)
    notes.push(`spread: no eligible node has the label ${label}, so nodes were chosen by score alone`);
  else
    notes.push(
      `spread: across ${groups.size} value(s) of ${label}, fewest chosen first; nodes without it last`,
    );
  const picked: Scored[] = [];
  while (picked.length < limit) {
    let best: { list: Scored[]; next: number; taken: number } | undefined;
    for (const group of groups.values()) {
      if (group.next >= group.list.length) continue;
      if (!best || group.taken < best.taken) best = group;
      else if (group.taken === best.taken) {
        const [a, b] = [best.list[best.next]!, group.list[group.next]!];
        if (byScore([a, b])[0] === b) best = group;
      }
    }
    if (!best) break;
    picked.push(best.list[best.next++]!);
    best.taken++;
  }
  return [...picked, ...unlabeled.slice(0, limit - picked.length)];
}

function scoreNotes(w: JobWeights, action: string): string[] {
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  return [
    `score = fit ${pct(w.fit)} + cost ${pct(w.cost)} + history ${pct(w.history)}`,
    'fit: headroom after the job from the latest heartbeat (memory beyond the requirement, idle CPU, load below the cores, disk on the required mount)',
    `cost: from the ${COST_LABEL} label, cheapest eligible node = 1, dearest = 0; no label (or not a number) = ${COST_NEUTRAL} (neutral)`,
    `history: success rate of ${action} on the node, each receipt weighted by age (half-life 7 d), from a prior of ${HISTORY_PRIOR} worth one receipt (no receipts = ${HISTORY_PRIOR})`,
  ];
}

/** A node as `GET /v1/nodes` (or a `nodes ls --json` snapshot) shows it, with its history. */
export function candidateOf(node: NodeView, history: PlacementCandidate['history']): PlacementCandidate {
  return {
    id: node.id,
    name: node.name,
    profile: node.profile,
    labels: node.labels,
    status: node.status,
    facts: node.facts,
    latest: node.latest,
    history,
  };
}
