import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SettingSpec } from '@muster/host';
import { ServerError, UsageError } from '@muster/host';
import {
  candidateOf,
  Job,
  type JobProblem,
  type JobRequire,
  type JobWeights,
  jobFleetProblem,
  jobProblems,
  type NodeView,
  type Placement,
  parseBytes,
  parseDuration,
  parseLabels,
  place,
  REQUIREMENT_KEYS,
} from '@muster/proto';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ADMIN_SETTINGS, adminClient } from '../client.js';
import type { Command } from '../command.js';
import { printJson, safe, table } from '../output.js';
import { parseArgs, parseTarget } from './run.js';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => Number.isFinite(Date.parse(v)));

/** Which flag set each field of a job, so a refusal names what the user typed. */
const FIELD_FLAGS: Record<string, string> = {
  select: '--select',
  count: '--count',
  require: '--require',
  spread: '--spread',
  weights: '--weights',
  shards: '--shards',
  schedule: '--every/--cron/--until',
  'schedule.everySec': '--every',
  'schedule.cron': '--cron',
  'schedule.until': '--until',
  args: 'argument',
  action: 'ACTION',
};

function flagOf(field: string): string {
  const path = field
    .replace(/^(body\.)?job\.?/, '')
    .replaceAll('/', '.')
    .replace(/^\./, '');
  const [top, sub] = path.split('.');
  return FIELD_FLAGS[`${top}.${sub}`] ?? FIELD_FLAGS[top ?? ''] ?? `job.${path}`;
}

/** A problem with a job field, said about the flag that set it: `--count: count 9 is more than…`. */
function refusal(problem: JobProblem): UsageError {
  return new UsageError(
    `${flagOf(problem.field)}: ${problem.field.replace(/^job\.?/, '') || 'job'} ${problem.message}`,
  );
}

function parseRequire(pairs: readonly string[]): JobRequire | undefined {
  if (pairs.length === 0) return undefined;
  const req: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (eq <= 0) throw new UsageError(`--require: "${pair}" is not of the form KEY=VALUE`);
    if (!(REQUIREMENT_KEYS as string[]).includes(key))
      throw new UsageError(`--require: unknown requirement "${key}" (known: ${REQUIREMENT_KEYS.join(', ')})`);
    req[key] = requirementValue(key, value);
  }
  return req as JobRequire;
}

function requirementValue(key: string, value: string): unknown {
  const bad = (what: string) => new UsageError(`--require ${key}: "${value}" is not ${what}`);
  switch (key) {
    case 'status':
      return value.split(',');
    case 'labels':
      try {
        return parseLabels(value.split(','));
      } catch (err) {
        throw new UsageError(`--require labels: ${(err as Error).message}`);
      }
    case 'minFreeMemoryBytes': {
      const bytes = parseBytes(value);
      if (bytes === undefined) throw bad('a size such as 4GiB');
      return bytes;
    }
    case 'minFreeDiskBytes': {
      const colon = value.lastIndexOf(':');
      const bytes = parseBytes(value.slice(colon + 1));
      if (colon <= 0 || bytes === undefined) throw bad('MOUNT:SIZE such as /var:10GiB');
      return { mount: value.slice(0, colon), bytes };
    }
    default: {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw bad('a number');
      return n;
    }
  }
}

function parseWeights(text: string | undefined): JobWeights | undefined {
  if (text === undefined) return undefined;
  // A part left out weighs nothing: `--weights fit=1` ranks by fit alone.
  const weights: JobWeights = { fit: 0, cost: 0, history: 0 };
  for (const pair of text.split(',')) {
    const [key, value = ''] = pair.split('=');
    if (key !== 'fit' && key !== 'cost' && key !== 'history')
      throw new UsageError(`--weights: "${pair}" is not fit=N, cost=N or history=N`);
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new UsageError(`--weights: ${key} "${value}" is not a number`);
    weights[key] = n;
  }
  return weights;
}

function parseCount(text: string | undefined): number | 'all' {
  if (text === undefined) return 1;
  if (text === 'all') return 'all';
  if (!/^-?\d+$/.test(text)) throw new UsageError(`--count: "${text}" is not a whole number or all`);
  const n = Number(text);
  if (n < 1) throw new UsageError(`--count: ${n} picks no node; give 1 or more, or all`);
  return n;
}

function readJson(flag: string, file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${flag}: ${file} is not JSON`);
  }
}

function scheduleOf(values: Record<string, unknown>, now: number): Job['schedule'] {
  const every = values.every as string | undefined;
  const cron = values.cron as string | undefined;
  const until = values.until as string | undefined;
  if (every === undefined && cron === undefined) {
    if (until !== undefined) throw new UsageError('--until: only with --every or --cron');
    return undefined;
  }
  if (until === undefined) throw new UsageError('--until is required with --every or --cron');
  const untilMs = parseDuration(until) !== undefined ? now + parseDuration(until)! : Date.parse(until);
  if (!Number.isFinite(untilMs))
    throw new UsageError(`--until: "${until}" is not an ISO 8601 time or a duration`);
  const everyMs = every === undefined ? undefined : parseDuration(every);
  if (every !== undefined && everyMs === undefined)
    throw new UsageError(`--every: "${every}" is not a duration such as 10m or 1h`);
  return {
    ...(everyMs !== undefined ? { everySec: Math.round(everyMs / 1000) } : {}),
    ...(cron !== undefined ? { cron } : {}),
    until: new Date(untilMs).toISOString(),
  };
}

/** The job the flags describe, checked as the server checks it: a refusal names the flag. */
export function jobFromFlags(
  values: Record<string, unknown>,
  positionals: readonly string[],
  now: number,
): Job {
  const [action, ...rest] = positionals;
  if (!action) throw new UsageError('name the action after --, e.g. muster jobs plan --count 2 -- uptime');
  const require = parseRequire((values.require as string[] | undefined) ?? []);
  const weights = parseWeights(values.weights as string | undefined);
  const schedule = scheduleOf(values, now);
  const shards = values.shards === undefined ? undefined : readJson('--shards', values.shards as string);
  const job = {
    v: 1,
    id: randomUUID(),
    nonce: randomBytes(18).toString('base64url'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3_600_000).toISOString(),
    // A plan is not signed, so no operator vouches for it; `jobs run` will name the signer.
    operator: 'plan',
    action,
    args: parseArgs(rest),
    select: parseTarget((values.select as string | undefined) ?? 'all'),
    count: parseCount(values.count as string | undefined),
    ...(require ? { require } : {}),
    ...(values.spread !== undefined ? { spread: values.spread } : {}),
    ...(weights ? { weights } : {}),
    ...(shards !== undefined ? { shards } : {}),
    ...(schedule ? { schedule } : {}),
  };
  const error = Value.Errors(Job, job).First();
  if (error)
    throw refusal({ field: `job${error.path.replaceAll('/', '.')}`, message: error.message.toLowerCase() });
  const problem = jobProblems(job as Job, now)[0];
  if (problem) throw refusal(problem);
  return job as Job;
}

const SCHEDULE_SETTINGS: readonly SettingSpec[] = [
  { flag: 'every', kind: 'string', value: 'DURATION', help: 'a schedule: every this long (with --until)' },
  {
    flag: 'cron',
    kind: 'string',
    value: 'EXPR',
    help: 'a schedule: five-field cron in UTC (with --until)',
  },
  {
    flag: 'until',
    kind: 'string',
    value: 'TIME',
    help: 'when a schedule ends: ISO 8601 or a duration from now',
  },
];

/** The flags that describe a job, shared by `jobs plan` and `jobs run`. */
export const JOB_SETTINGS: readonly SettingSpec[] = [
  {
    flag: 'select',
    kind: 'string',
    value: 'SELECTOR',
    help: 'which nodes may be picked, as --target (default all)',
  },
  { flag: 'count', kind: 'string', value: 'N|all', help: 'how many nodes (default 1)' },
  { flag: 'require', kind: 'list', value: 'KEY=VALUE', help: 'a hard requirement; repeatable' },
  { flag: 'spread', kind: 'string', value: 'LABEL', help: "choose across this label's values in turn" },
  {
    flag: 'weights',
    kind: 'string',
    value: 'fit=N,cost=N,history=N',
    help: 'score weights, normalized; a part left out weighs 0 (default fit=0.5,cost=0.2,history=0.3)',
  },
  {
    flag: 'shards',
    kind: 'string',
    value: 'FILE',
    help: 'a JSON array of argument objects, one node each',
  },
  ...SCHEDULE_SETTINGS,
];

export const jobsPlan: Command = {
  path: ['jobs', 'plan'],
  args: '-- ACTION [NAME=VALUE…]',
  summary: 'show which nodes a job would run on, and why every other node would not; runs nothing',
  details:
    'Every node is listed: chosen with its score (fit, cost, history), or the reason it is not.\n' +
    'Requirements (--require, repeatable): status=ok,attention  minFreeMemoryBytes=4GiB\n' +
    '  minFreeDiskBytes=/var:10GiB  maxLoad1=4  maxCpuPct=80  labels=env=prod,role=db\n' +
    'With --snapshot FILE (the output of muster nodes ls --json) it plans offline, without a server\n' +
    'and without receipt history. Exits 1 when no node is eligible.\n\n' +
    'Example:\n  muster jobs plan --count 2 --spread zone --require maxLoad1=4 -- uptime',
  settings: [
    ...JOB_SETTINGS,
    {
      flag: 'snapshot',
      kind: 'string',
      value: 'FILE',
      help: 'plan offline against muster nodes ls --json output',
    },
    ...ADMIN_SETTINGS,
  ],
  async run({ values, positionals }) {
    const now = Date.now();
    const job = jobFromFlags(values, positionals, now);
    const placement = values.snapshot
      ? planOffline(job, values.snapshot as string, now)
      : await planOnline(job, values);
    if (values.json) printJson(placement);
    else console.log(placementText(placement));
    if (placement.chosen.length > 0) return 0;
    console.error('muster: no node is eligible for this job (the reasons are above)');
    return 1;
  },
};

async function planOnline(job: Job, values: Record<string, unknown>): Promise<Placement> {
  return namingFlags(adminClient(values).call<Placement>('POST', '/v1/jobs/plan', { job }));
}

/** The server's refusal of a job field, said about the flag that set it. */
export async function namingFlags<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    // The server's words about a job field, said about the flag that set it.
    const detail = err instanceof ServerError && err.status === 400 ? err.problem?.detail : undefined;
    const match = detail ? /^body\.(job\S*) (.+)$/.exec(detail) : null;
    if (match) throw refusal({ field: match[1]!, message: match[2]! });
    throw err;
  }
}

function planOffline(job: Job, file: string, now: number): Placement {
  const nodes = readJson('--snapshot', file);
  if (
    !Array.isArray(nodes) ||
    nodes.some((n) => typeof n !== 'object' || n === null || typeof n.id !== 'string')
  )
    throw new UsageError(`--snapshot: ${file} is not a list of nodes (muster nodes ls --json)`);
  const active = (nodes as NodeView[]).filter((n) => n.status !== 'decommissioned');
  const problem = jobFleetProblem(job, active.length);
  if (problem) throw refusal(problem);
  const placement = place({ job, candidates: active.map((n) => candidateOf(n, [])), now });
  placement.notes.push('offline: planned against a snapshot, with no receipt history');
  return placement;
}

function score(n: number | undefined): string {
  return n === undefined ? '-' : n.toFixed(2);
}

export function placementText(p: Placement): string {
  const rows = [...p.chosen, ...p.rejected].map((n) => [
    safe(n.name),
    n.chosen ? 'chosen' : '-',
    score(n.score?.total),
    score(n.score?.fit),
    score(n.score?.cost),
    score(n.score?.history),
    safe(n.reasons.join('; ')),
  ]);
  const head = `${p.chosen.length} of ${p.wanted === 'all' ? 'all eligible' : p.wanted} node(s) chosen for ${safe(p.action)}`;
  return [
    head,
    table(['NODE', 'CHOSEN', 'SCORE', 'FIT', 'COST', 'HISTORY', 'REASON'], rows),
    ...p.notes.map((n) => `note: ${safe(n)}`),
  ].join('\n');
}
