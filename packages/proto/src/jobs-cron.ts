/**
 * Five-field cron (minute hour day-of-month month day-of-week, UTC), as job schedules carry it.
 * Only what is needed to check a schedule now: parse, and find whether it fires before `until`.
 * Names (`mon`, `jan`) and `@daily` are not taken: one spelling per time keeps signed schedules
 * easy to read back.
 */

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Both day fields restricted: either may match (as every cron does). */
  dayEither: boolean;
}

export class CronError extends Error {}

function parseField(text: string, field: (typeof FIELDS)[number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new CronError(`${field.name} "${part}" is not a number, range, list or step`);
    const lo = m[1] === '*' ? field.min : Number(m[2]);
    const hi = m[1] === '*' ? field.max : m[3] !== undefined ? Number(m[3]) : m[4] ? field.max : lo;
    const step = m[4] ? Number(m[4]) : 1;
    if (lo < field.min || hi > field.max || lo > hi)
      throw new CronError(`${field.name} "${part}" is outside ${field.min}-${field.max}`);
    if (step < 1) throw new CronError(`${field.name} "${part}" has a step of 0`);
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5)
    throw new CronError(
      `has ${parts.length} fields; five are taken (minute hour day-of-month month day-of-week), so nothing fires more than once a minute`,
    );
  const [minutes, hours, days, months, weekdays] = parts.map((p, i) => parseField(p, FIELDS[i]!)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (weekdays.has(7)) weekdays.add(0);
  return { minutes, hours, days, months, weekdays, dayEither: parts[2] !== '*' && parts[4] !== '*' };
}

function dayMatches(cron: Cron, date: Date): boolean {
  if (!cron.months.has(date.getUTCMonth() + 1)) return false;
  const dom = cron.days.has(date.getUTCDate());
  const dow = cron.weekdays.has(date.getUTCDay());
  return cron.dayEither ? dom || dow : dom && dow;
}

/** The first time at or after `from` (ms) the expression fires, before `until`; undefined if none. */
export function nextCronTime(cron: Cron, from: number, until: number): number | undefined {
  const start = Math.ceil(from / 60_000) * 60_000;
  const firstDay = Math.floor(start / 86_400_000) * 86_400_000;
  const hours = [...cron.hours].sort((a, b) => a - b);
  const minutes = [...cron.minutes].sort((a, b) => a - b);
  // Day by day, then the day's times in order: at most 367 days, as schedules are that long.
  for (let day = firstDay; day < until; day += 86_400_000) {
    if (!dayMatches(cron, new Date(day))) continue;
    for (const h of hours)
      for (const m of minutes) {
        const t = day + h * 3_600_000 + m * 60_000;
        if (t >= start && t < until) return t;
        if (t >= until) return undefined;
      }
  }
  return undefined;
}

/** Why a schedule's cron is no good between `from` and `until`, or undefined when it fires. */
export function cronProblem(expr: string, from: number, until: number): string | undefined {
  let cron: Cron;
  try {
    cron = parseCron(expr);
  } catch (err) {
    return `"${expr}" ${(err as Error).message}`;
  }
  if (nextCronTime(cron, from, until) === undefined) return `"${expr}" never fires before until`;
  return undefined;
}
