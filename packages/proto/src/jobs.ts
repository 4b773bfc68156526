import { type KeyObject, sign } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { KeyedRecord } from './closed.js';
import {
  ACTION_NAME_PATTERN,
  ARG_NAME_PATTERN,
  COMMAND_ID_PATTERN,
  CommandTarget,
  OPERATOR_NAME_PATTERN,
} from './commands.js';
import { cronProblem } from './jobs-cron.js';
import { LABEL_KEY_PATTERN } from './names.js';
import { ed25519Verifies, parsePublicKey, signingInput } from './signatures.js';
import { Labels, NODE_STATUSES } from './wire.js';

/**
 * Jobs (CONTRACT section 9): an operator-signed request to run one policy action on nodes the
 * control plane picks. The schema is closed throughout; what a schema cannot say (weights that
 * are all zero, a schedule that never fires) is checked by `jobProblems`, each problem naming
 * its field, so the server's 400 and the CLI's exit 2 say the same thing.
 */

/** Heartbeats report bytes up to 1 EiB; a requirement above 1 PiB asks for a node no fleet has. */
export const MAX_REQUIRED_BYTES = 2 ** 50;
export const MAX_SHARDS = 10_000;
/** A scheduled job lives at most this long: bounds the occurrence search and the agent's journal. */
export const MAX_SCHEDULE_MS = 366 * 86_400_000;
/** The shortest `everySec`: a job is not a heartbeat. */
export const MIN_EVERY_SEC = 60;

const Timestamp = Type.String({ format: 'date-time', maxLength: 40 });
const Weight = Type.Number({ minimum: 0, maximum: 1000 });

export const JobStatus = Type.Union(
  NODE_STATUSES.filter((s) => s !== 'decommissioned').map((s) => Type.Literal(s)),
);

export const JobRequire = Type.Object(
  {
    /** The statuses a node may be in; `["ok"]` when absent. */
    status: Type.Optional(Type.Array(JobStatus, { minItems: 1, maxItems: 4, uniqueItems: true })),
    minFreeMemoryBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_REQUIRED_BYTES })),
    minFreeDiskBytes: Type.Optional(
      Type.Object(
        {
          mount: Type.String({ pattern: '^/', minLength: 1, maxLength: 512 }),
          bytes: Type.Integer({ minimum: 0, maximum: MAX_REQUIRED_BYTES }),
        },
        { additionalProperties: false },
      ),
    ),
    maxLoad1: Type.Optional(Type.Number({ minimum: 0, maximum: 100_000 })),
    maxCpuPct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);
export type JobRequire = Static<typeof JobRequire>;
export const REQUIREMENT_KEYS = Object.keys(JobRequire.properties) as (keyof JobRequire)[];

export const JobWeights = Type.Object(
  { fit: Weight, cost: Weight, history: Weight },
  { additionalProperties: false },
);
export type JobWeights = Static<typeof JobWeights>;
export const DEFAULT_WEIGHTS: Readonly<JobWeights> = Object.freeze({ fit: 0.5, cost: 0.2, history: 0.3 });

export const JobSchedule = Type.Object(
  {
    everySec: Type.Optional(Type.Integer({ minimum: MIN_EVERY_SEC, maximum: MAX_SCHEDULE_MS / 1000 })),
    /** Five fields, in UTC: minute hour day-of-month month day-of-week. */
    cron: Type.Optional(Type.String({ minLength: 9, maxLength: 256 })),
    until: Timestamp,
  },
  { additionalProperties: false },
);
export type JobSchedule = Static<typeof JobSchedule>;

const Args = KeyedRecord(ARG_NAME_PATTERN, Type.String({ maxLength: 4096 }), { maxProperties: 32 });

export const Job = Type.Object(
  {
    v: Type.Literal(1),
    id: Type.String({ pattern: COMMAND_ID_PATTERN }),
    nonce: Type.String({ pattern: '^[A-Za-z0-9+/=_-]{16,128}$' }),
    issuedAt: Timestamp,
    expiresAt: Timestamp,
    operator: Type.String({ pattern: OPERATOR_NAME_PATTERN }),
    action: Type.String({ pattern: ACTION_NAME_PATTERN }),
    args: Args,
    select: CommandTarget,
    count: Type.Union([Type.Integer({ minimum: 1, maximum: 100_000 }), Type.Literal('all')]),
    require: Type.Optional(JobRequire),
    spread: Type.Optional(Type.String({ pattern: LABEL_KEY_PATTERN })),
    weights: Type.Optional(JobWeights),
    shards: Type.Optional(Type.Array(Args, { minItems: 1, maxItems: MAX_SHARDS })),
    schedule: Type.Optional(JobSchedule),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    rescheduleAfterSec: Type.Optional(Type.Integer({ minimum: 10, maximum: 86_400 })),
  },
  { additionalProperties: false },
);
export type Job = Static<typeof Job>;

/** `POST /v1/jobs/plan`: an unsigned job, to see where it would go. Nothing is stored. */
export const JobPlanRequest = Type.Object({ job: Job }, { additionalProperties: false });
export type JobPlanRequest = Static<typeof JobPlanRequest>;

/** A bad value the schema cannot see, with the field it is in (`job.weights`). */
export interface JobProblem {
  field: string;
  message: string;
}

/**
 * What is wrong with a job that passed its schema, judged at `now`: timing, weights, schedule.
 * Empty when it is fine. Fields are named from the job (`job.schedule.until`).
 */
export function jobProblems(job: Job, now: number): JobProblem[] {
  const problems: JobProblem[] = [];
  const issued = Date.parse(job.issuedAt);
  const expires = Date.parse(job.expiresAt);
  if (!(expires > issued)) problems.push({ field: 'job.expiresAt', message: 'must be after issuedAt' });
  if (job.weights && job.weights.fit + job.weights.cost + job.weights.history <= 0)
    problems.push({ field: 'job.weights', message: 'must not all be zero: nothing would tell nodes apart' });
  if (job.schedule) problems.push(...scheduleProblems(job.schedule, issued, now));
  return problems;
}

/** A count the fleet cannot meet, with `active` nodes in it: refused rather than planned short. */
export function jobFleetProblem(job: Job, active: number): JobProblem | undefined {
  if (job.shards || job.count === 'all' || job.count <= active) return undefined;
  return {
    field: 'job.count',
    message: `${job.count} is more than the ${active} active node(s) in the fleet`,
  };
}

function scheduleProblems(schedule: JobSchedule, issued: number, now: number): JobProblem[] {
  const until = Date.parse(schedule.until);
  const at = (f: string, message: string) => ({ field: `job.schedule.${f}`, message });
  if (!(until > now)) return [at('until', `${schedule.until} is in the past`)];
  if (until - issued > MAX_SCHEDULE_MS)
    return [at('until', 'is more than 366 days after issuedAt: sign a new job for longer')];
  if ((schedule.everySec === undefined) === (schedule.cron === undefined))
    return [at('everySec', 'give exactly one of everySec and cron')];
  if (schedule.everySec !== undefined && issued + schedule.everySec * 1000 >= until)
    return [at('everySec', `every ${schedule.everySec}s from issuedAt never comes before until`)];
  if (schedule.cron !== undefined) {
    const problem = cronProblem(schedule.cron, Math.max(issued, now), until);
    if (problem) return [at('cron', problem)];
  }
  return [];
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** `4GiB`, `512MiB`, `10GB`, `1.5TiB` or plain bytes; undefined for anything else. */
export function parseBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Bytes as a person reads them: `1.2 GiB`, `4 GiB`, `512 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = unit === 0 ? String(value) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[unit]}`;
}

/** Jobs are signed exactly as commands are, under their own context line. */
export const JOB_CONTEXT = 'muster-job-v1\n';

export function signJob(job: Job, privateKey: KeyObject): string {
  return sign(null, signingInput(JOB_CONTEXT, job), privateKey).toString('base64');
}

export function jobSignatureValid(job: Job, signature: string, publicKey: string): boolean {
  try {
    return ed25519Verifies(JOB_CONTEXT, job, signature, parsePublicKey(publicKey));
  } catch {
    return false;
  }
}
