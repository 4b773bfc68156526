/** Times and sizes as people read them. */

export function ago(iso: string | null | undefined, now: number): string {
  if (!iso) return 'never';
  const sec = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ${sec % 60} s ago`;
  if (sec < 86_400) return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min ago`;
  return `${Math.floor(sec / 86_400)} d ago`;
}

export function until(iso: string, now: number): string {
  const sec = Math.round((Date.parse(iso) - now) / 1000);
  if (sec <= 0) return 'passed';
  if (sec < 3600) return `in ${Math.ceil(sec / 60)} min`;
  if (sec < 86_400) return `in ${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
  return `in ${Math.floor(sec / 86_400)} d`;
}

/** A moment split for display: `date` only when it is not the viewer's today. */
export interface TimeParts {
  date?: string;
  clock: string;
  zone: string;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** The browser's offset as `UTC`, `UTC+1`, `UTC-5:30`: locale-free, and the CLI's UTC reads the same. */
function zoneOf(d: Date): string {
  const east = -d.getTimezoneOffset();
  if (east === 0) return 'UTC';
  const abs = Math.abs(east);
  return `UTC${east > 0 ? '+' : '-'}${Math.floor(abs / 60)}${abs % 60 ? `:${pad(abs % 60)}` : ''}`;
}

const dayOf = (d: Date) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

/**
 * Every time the console shows goes through here: 24-hour clock in the browser's zone, the zone
 * written out, and the date (ISO order, as the CLI prints it) whenever it is not today.
 */
export function timeParts(iso: string, now: number = Date.now()): TimeParts | undefined {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return undefined;
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const date = dayOf(d);
  return date === dayOf(new Date(now)) ? { clock, zone: zoneOf(d) } : { date, clock, zone: zoneOf(d) };
}

export function time(iso: string, now: number = Date.now()): string {
  const p = timeParts(iso, now);
  if (!p) return iso;
  return `${p.date ? `${p.date} ` : ''}${p.clock} ${p.zone}`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function labelText(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}
